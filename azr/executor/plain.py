"""Plain data, and the canonical repr of a plain value.

Plain data is, by exact type: None, bool, int, float (finite), complex (finite), str, bytes,
Ellipsis, and list, tuple, dict, set, frozenset of plain data. Subclasses are not plain data, so no
method a program wrote is ever called while its output is written.

The canonical repr is Python's repr for the atoms, with two normalisations so that equal values
have one spelling: dict items are sorted by key, and set items are sorted. Two plain values are
structurally equal (1, 1.0 and True differ; list and tuple differ) iff their canonical reprs are
equal strings.

The sandboxed child writes the canonical repr of what `f` returned; the calling process parses it
back and checks that it is canonical before trusting it (azr.executor.literals, which reads
literals into plain data).

Writing is total: any value gives a result or NotPlainData, never another exception, in time about
linear in its length (lengths and depths are capped before anything recursive or quadratic runs).

This module imports only the standard library: the sandbox worker imports it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

MAX_DEPTH = 100
"""Deepest nesting of containers accepted in inputs and outputs (CPython's parser stops near 200)."""

MAX_INT_DIGITS = 4300
"""Longest int accepted, in decimal digits: CPython's default `sys.get_int_max_str_digits()`."""

_MAX_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))


class NotPlainData(ValueError):
    """A value or a text that is not plain data; the message says what is wrong."""


_F = TypeVar("_F", bound=Callable[..., Any])


def _total(function: _F) -> _F:
    """`function`, raising no other exception than NotPlainData: whatever a case not foreseen here
    raises (a bug, or the caller's stack running out) rejects the text or value instead of escaping
    into the trainer or the sandbox worker."""

    @functools.wraps(function)
    def total(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except NotPlainData:
            raise
        except Exception as error:
            raise NotPlainData(f"not plain data ({type(error).__name__})") from None

    return total  # type: ignore[return-value]


@_total
def canonical(value: Any, max_chars: int | None = None) -> str:
    """The canonical repr of a plain value.

    Raises NotPlainData for any other value, for nesting deeper than MAX_DEPTH, for ints longer
    than MAX_INT_DIGITS, and for a repr longer than `max_chars` (work stops as soon as the limit is
    passed, so a huge or self-similar value costs little).
    """
    writer = _Writer(max_chars)
    text = writer.write(value, 0)
    if max_chars is not None and len(text) > max_chars:
        raise NotPlainData(f"repr is longer than {max_chars} characters")
    return text


class _Writer:
    def __init__(self, max_chars: int | None) -> None:
        self.budget = max_chars
        self.spent = 0

    def charge(self, chars: int) -> None:
        self.spent += chars
        if self.budget is not None and self.spent > self.budget:
            raise NotPlainData(f"repr is longer than {self.budget} characters")

    def write(self, value: Any, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise NotPlainData(f"nested deeper than {MAX_DEPTH} levels")
        kind = type(value)
        if kind is str or kind is bytes or kind is bool or value is None:
            text = repr(value)
        elif value is Ellipsis:
            text = "..."
        elif kind is int:
            if value.bit_length() > _MAX_INT_BITS:
                raise NotPlainData(f"int has more than {MAX_INT_DIGITS} digits")
            try:
                text = repr(value)
            except ValueError:  # just over the digit limit
                raise NotPlainData(f"int has more than {MAX_INT_DIGITS} digits") from None
        elif kind is float:
            if not math.isfinite(value):
                raise NotPlainData(f"{value!r} is not plain data (floats must be finite)")
            text = repr(value)
        elif kind is complex:
            if not (math.isfinite(value.real) and math.isfinite(value.imag)):
                raise NotPlainData("complex with nan or inf is not plain data")
            text = repr(value)
        elif kind is list:
            return "[" + self.items(value, depth) + "]"
        elif kind is tuple:
            inner = self.items(value, depth)
            return "(" + inner + ",)" if len(value) == 1 else "(" + inner + ")"
        elif kind is dict:
            return self.dict(value, depth)
        elif kind is set:
            return "{" + self.items(value, depth, ordered=True) + "}" if value else "set()"
        elif kind is frozenset:
            inner = self.items(value, depth, ordered=True)
            return "frozenset({" + inner + "})" if value else "frozenset()"
        else:
            raise NotPlainData(f"{_type_name(value)} is not plain data")
        self.charge(len(text))
        return text

    def items(self, values: Any, depth: int, ordered: bool = False) -> str:
        texts = []
        for item in values:
            self.charge(2)  # the separator
            texts.append(self.write(item, depth + 1))
        if ordered:
            texts = [texts[i] for i in _canonical_order(list(values), texts)]
        return ", ".join(texts)

    def dict(self, value: dict, depth: int) -> str:
        keys, key_texts, pairs = [], [], []
        for key, item in value.items():
            self.charge(4)  # ': ' and the separator
            key_text = self.write(key, depth + 1)
            keys.append(key)
            key_texts.append(key_text)
            pairs.append(key_text + ": " + self.write(item, depth + 1))
        return "{" + ", ".join(pairs[i] for i in _canonical_order(keys, key_texts)) + "}"


def _canonical_order(values: list, texts: list[str]) -> list[int]:
    """Indices of `values` in canonical order: numeric or lexical when all the values are of one
    simple kind (so {10, 2} reads {2, 10}, as Python prints it), else by canonical text."""
    kinds = {type(v) for v in values}
    if kinds and (kinds <= {int, float} or kinds == {str} or kinds == {bytes}):
        return sorted(range(len(values)), key=lambda i: (values[i], texts[i]))
    return sorted(range(len(values)), key=texts.__getitem__)


def _type_name(value: Any) -> str:
    # type.__dict__ lookup: never runs a __getattr__ or metaclass property the program defined.
    name = type.__dict__["__name__"].__get__(type(value))
    return name if type(name) is str else "object"
