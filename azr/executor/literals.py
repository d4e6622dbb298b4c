"""Plain data: parsing literal inputs and writing the canonical repr of values.

Both directions are used on both sides of the sandbox. The sandboxed child parses the input it is
given and writes the canonical repr of what `f` returned; the calling process parses inputs before
anything runs (an input that is not a literal argument list is never executed) and parses every
returned repr back, checking that it is canonical, before trusting it.

Plain data is, by exact type: None, bool, int, float (finite), complex (finite), str, bytes,
Ellipsis, and list, tuple, dict, set, frozenset of plain data. Subclasses are not plain data, so no
method a program wrote is ever called while its output is written.

The canonical repr is Python's repr for the atoms, with two normalisations so that equal values
have one spelling: dict items are sorted by key, and set items are sorted. Two plain values are
structurally equal (1, 1.0 and True differ; list and tuple differ) iff their canonical reprs are
equal strings.

This module imports only the standard library: the sandbox worker imports it.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 100
"""Deepest nesting of containers accepted in inputs and outputs (CPython's parser stops near 200)."""

MAX_INT_DIGITS = 4300
"""Longest int accepted, in decimal digits: CPython's default `sys.get_int_max_str_digits()`."""

_MAX_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))


class NotPlainData(ValueError):
    """A value or a text that is not plain data; the message says what is wrong."""


# ---------------------------------------------------------------------------------------------
# value -> canonical repr


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


# ---------------------------------------------------------------------------------------------
# text -> value


@dataclass(frozen=True)
class Arguments:
    """The positional and keyword arguments of one call to `f`."""

    args: tuple
    kwargs: dict
    text: str
    """The argument list's canonical spelling (see `canonical`)."""

    def canonical(self) -> str:
        """`'a', [1, 2], k=3`: atoms spelled as in canonical reprs, containers in the order written.

        Unlike an output's canonical repr, dict and set items are *not* sorted: a program sees the
        order its arguments were built in (dict iteration, and the slots of colliding set items),
        so reordering them could change what it returns.
        """
        return self.text


def parse_arguments(text: str, max_chars: int | None = None) -> Arguments:
    """Parse an argument list written in Python literals: `'abc', [1, 2]` or `nums=[1], k=3`.

    Only literals are accepted (no names, calls, operators or unpacking; `set()` and
    `frozenset({...})` are the exceptions Python's own repr needs). Raises NotPlainData with the
    reason for anything else. Nothing is evaluated: the text is parsed and its syntax tree walked.
    """
    if type(text) is not str:
        raise NotPlainData("the input must be a string")
    if max_chars is not None and len(text) > max_chars:
        raise NotPlainData(f"input is longer than {max_chars} characters")
    # Newlines as the tokenizer counts them, so the end position below is comparable.
    source = "f(" + text.replace("\r\n", "\n").replace("\r", "\n") + "\n)"
    tree = _parse(source, "input")
    call = tree.body
    # The whole text must be the argument list of one call to f: `1) or (1` parses as a BoolOp,
    # `1)(2` as a call of a call, and `1) #` ends before the closing parenthesis.
    lines = source.split("\n")
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "f"
        and call.func.col_offset == 0
        and call.end_lineno == len(lines)
        and call.end_col_offset == len(lines[-1].encode("utf-8"))
    ):
        raise NotPlainData("input is not an argument list")
    args, spelled = [], []
    for node in call.args:
        if isinstance(node, ast.Starred):
            raise NotPlainData("input may not unpack with *")
        args.append(_value(node, 0))
        spelled.append(_spell(node))
    kwargs: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise NotPlainData("input may not unpack with **")
        if keyword.arg in kwargs:
            raise NotPlainData(f"keyword argument {keyword.arg!r} repeated")
        kwargs[keyword.arg] = _value(keyword.value, 0)
        spelled.append(f"{keyword.arg}={_spell(keyword.value)}")
    return Arguments(tuple(args), kwargs, ", ".join(spelled))


def _spell(node: ast.AST) -> str:
    """The canonical spelling of a literal `_value` accepted, in the order written, with what
    Python drops dropped: a repeated set item (the first stays) or dict key (the first key stays,
    with the last value), so `{1, 1}` and `{1}` are one input."""
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_spell(element) for element in node.elts]
        if isinstance(node, ast.List):
            return "[" + ", ".join(items) + "]"
        return "(" + items[0] + ",)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    if isinstance(node, ast.Set):
        return "{" + ", ".join(_distinct(node.elts)) + "}"
    if isinstance(node, ast.Dict):
        entries: dict[Any, list[str]] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            entry = entries.setdefault(_value(key, 0), [_spell(key), ""])  # type: ignore[arg-type]
            entry[1] = _spell(value)
        return "{" + ", ".join(f"{k}: {v}" for k, v in entries.values()) + "}"
    if isinstance(node, ast.Call):  # set() or frozenset(...)
        if not node.args or not node.args[0].elts:  # type: ignore[attr-defined]
            return f"{node.func.id}()"  # type: ignore[attr-defined]
        return "frozenset({" + ", ".join(_distinct(node.args[0].elts)) + "})"  # type: ignore[attr-defined]
    return canonical(_value(node, 0))


def _distinct(elements: list[ast.expr]) -> list[str]:
    seen: dict[Any, str] = {}
    for element in elements:
        seen.setdefault(_value(element, 0), _spell(element))
    return list(seen.values())


def parse_value(text: str) -> Any:
    """Parse one literal value; raises NotPlainData when `text` is not a plain-data literal."""
    if type(text) is not str:
        raise NotPlainData("a literal must be a string")
    return _value(_parse(text, "literal").body, 0)


def is_canonical(text: str, max_chars: int | None = None) -> bool:
    """True iff `text` is the canonical repr of some plain value within `max_chars`."""
    if type(text) is not str or (max_chars is not None and len(text) > max_chars):
        return False
    try:
        return canonical(parse_value(text), max_chars) == text
    except NotPlainData:
        return False


def _parse(source: str, what: str) -> ast.Expression:
    try:
        return ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise NotPlainData(f"{what} is not valid Python: {error.msg}") from None
    except (ValueError, MemoryError, RecursionError, OverflowError) as error:
        # null bytes, ints over the digit limit, absurd nesting
        raise NotPlainData(f"{what} cannot be parsed: {error}") from None


_NUMBER = (int, float, complex)


def _value(node: ast.AST, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise NotPlainData(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant):
        return _checked_number(node.value) if type(node.value) in _NUMBER else node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _signed(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        return _complex(node)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                raise NotPlainData("literals may not unpack with *")
            items.append(_value(element, depth + 1))
        if isinstance(node, ast.List):
            return items
        if isinstance(node, ast.Tuple):
            return tuple(items)
        return _hashable(set, items)
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise NotPlainData("literals may not unpack with **")
        keys = [_value(key, depth + 1) for key in node.keys]  # type: ignore[arg-type]
        values = [_value(value, depth + 1) for value in node.values]
        try:
            return dict(zip(keys, values, strict=True))
        except TypeError:
            raise NotPlainData("dict keys must be hashable") from None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("set", "frozenset")
        and not node.keywords
    ):
        if not node.args:
            return set() if node.func.id == "set" else frozenset()
        if node.func.id == "frozenset" and len(node.args) == 1:
            inner = node.args[0]
            if isinstance(inner, (ast.Set, ast.List, ast.Tuple)):
                return frozenset(_value(inner, depth))
    raise NotPlainData(f"{_describe(node)} is not a literal")


def _signed(node: ast.UnaryOp) -> Any:
    if not (isinstance(node.operand, ast.Constant) and type(node.operand.value) in _NUMBER):
        raise NotPlainData("a sign may only precede a number")
    number = node.operand.value
    if isinstance(node.op, ast.UAdd):
        return _checked_number(number)
    if type(number) is complex:
        # repr(complex(0.0, -1.0)) is '-1j'; negating 1j would also flip the real zero's sign.
        return _checked_number(complex(number.real, -number.imag))
    return _checked_number(-number)


def _complex(node: ast.BinOp) -> complex:
    """`1+2j`, `(-0-1j)`: the form repr gives a complex with a real part."""
    real, imaginary = node.left, node.right
    sign = 1.0
    if isinstance(real, ast.UnaryOp) and isinstance(real.op, (ast.USub, ast.UAdd)):
        sign = -1.0 if isinstance(real.op, ast.USub) else 1.0
        real = real.operand
    if not (
        isinstance(real, ast.Constant)
        and type(real.value) in (int, float)
        and isinstance(imaginary, ast.Constant)
        and type(imaginary.value) is complex
        and not imaginary.value.real
    ):
        raise NotPlainData("operators are only allowed in complex literals such as 1+2j")
    # Built from the parts, not by arithmetic, so the signs of zeros survive: '(-0-0j)'.
    imag = imaginary.value.imag if isinstance(node.op, ast.Add) else -imaginary.value.imag
    return _checked_number(complex(sign * float(real.value), imag))


def _checked_number(number: Any) -> Any:
    if type(number) is float and not math.isfinite(number):
        raise NotPlainData(f"{number!r} is not plain data (floats must be finite)")
    if type(number) is complex and not (math.isfinite(number.real) and math.isfinite(number.imag)):
        raise NotPlainData("complex with nan or inf is not plain data")
    return number


def _hashable(kind: type, items: list) -> Any:
    try:
        return kind(items)
    except TypeError:
        raise NotPlainData("set items must be hashable") from None


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Call):
        return "a call"
    return f"a {type(node).__name__} expression"
