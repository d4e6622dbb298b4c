"""Parsing literals: argument lists and values written in Python literals, read as plain data.

Parsing is used on both sides of the sandbox. The sandboxed child parses the input it is given;
the calling process parses inputs before anything runs (an input that is not a literal argument
list is never executed) and parses every returned repr back, checking that it is canonical, before
trusting it. What plain data is, and its canonical repr, are in azr.executor.plain.

Reading is total: any text gives a result or NotPlainData, never another exception, in time about
linear in its length (lengths, depths and hash collisions are capped before anything recursive or
quadratic runs).

This module imports only the standard library and this package's stdlib-only azr.executor.plain:
the sandbox worker imports it.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any

from azr.executor.plain import MAX_DEPTH, NotPlainData, _total, canonical

MAX_LITERAL_CHARS = 10_000_000
"""Longest text parsed when the caller sets no limit: ast.parse needs about 1 KB per item of a
literal, so a 100 MB text is refused before it is parsed."""

MAX_COLLISIONS = 32
"""Most distinct set items or dict keys of one container accepted with one hash."""


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


@_total
def parse_arguments(text: str, max_chars: int | None = MAX_LITERAL_CHARS) -> Arguments:
    """Parse an argument list written in Python literals: `'abc', [1, 2]` or `nums=[1], k=3`.

    Only literals are accepted (no names, calls, operators or unpacking; `set()` and
    `frozenset({...})` are the exceptions Python's own repr needs). Raises NotPlainData with the
    reason for anything else, and for a text longer than `max_chars` (None: no limit). Nothing is
    evaluated: the text is parsed and its syntax tree walked.
    """
    if type(text) is not str:
        raise NotPlainData("the input must be a string")
    if max_chars is not None and len(text) > max_chars:
        raise NotPlainData(f"input is longer than {max_chars} characters")
    # Newlines as the tokenizer counts them, so the end position below is comparable.
    source = "f(" + text.replace("\r\n", "\n").replace("\r", "\n") + "\n)"
    call = _parse(source, "input").body
    # The whole text must be the argument list of one call to f: `1) or (1` parses as a BoolOp,
    # `1)(2` as a call of a call, and `1) #` ends before the closing parenthesis.
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "f"
        and call.func.col_offset == 0
        and call.end_lineno == source.count("\n") + 1
        and call.end_col_offset == len(source[source.rfind("\n") + 1 :].encode("utf-8"))
    ):
        raise NotPlainData("input is not an argument list")
    args, spelled = [], []
    for node in call.args:
        if isinstance(node, ast.Starred):
            raise NotPlainData("input may not unpack with *")
        value, spelling = _read(node, 0, spell=True)
        args.append(value)
        spelled.append(spelling)
    kwargs: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise NotPlainData("input may not unpack with **")
        if keyword.arg in kwargs:
            raise NotPlainData(f"keyword argument {keyword.arg!r} repeated")
        value, spelling = _read(keyword.value, 0, spell=True)
        kwargs[keyword.arg] = value
        spelled.append(f"{keyword.arg}={spelling}")
    return Arguments(tuple(args), kwargs, ", ".join(spelled))


@_total
def parse_value(text: str, max_chars: int | None = MAX_LITERAL_CHARS) -> Any:
    """Parse one literal value; raises NotPlainData when `text` is not a plain-data literal, or is
    longer than `max_chars` (None: no limit)."""
    if type(text) is not str:
        raise NotPlainData("a literal must be a string")
    if max_chars is not None and len(text) > max_chars:
        raise NotPlainData(f"literal is longer than {max_chars} characters")
    return _read(_parse(text, "literal").body, 0, spell=False)[0]


def is_canonical(text: str, max_chars: int | None = None) -> bool:
    """True iff `text` is the canonical repr of some plain value within `max_chars`."""
    if type(text) is not str or (max_chars is not None and len(text) > max_chars):
        return False
    try:
        value = parse_value(text, MAX_LITERAL_CHARS if max_chars is None else max_chars)
        return canonical(value, max_chars) == text
    except Exception:  # NotPlainData, or whatever a bug lets through: not canonical either way
        return False


def _parse(source: str, what: str) -> ast.Expression:
    if _has_fstring(source):
        raise NotPlainData(f"{what} holds an f-string, which is not a literal")
    try:
        return ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise NotPlainData(f"{what} is not valid Python: {error.msg}") from None
    except (ValueError, MemoryError, RecursionError, OverflowError) as error:
        # null bytes, surrogates, ints over the digit limit, absurd nesting
        raise NotPlainData(f"{what} cannot be parsed: {error}") from None


_STRING_OR_COMMENT = re.compile(r"#[^\r\n]*|(?P<prefix>(?<!\w)[A-Za-z]{1,2})?(?P<quote>'''|\"\"\"|'|\")")
_STRING_REST = {
    quote: re.compile(rest, re.DOTALL)
    for quote, rest in [
        ("'", r"[^'\\\r\n]*(?:\\(?:\r\n|.)[^'\\\r\n]*)*'"),
        ('"', r'[^"\\\r\n]*(?:\\(?:\r\n|.)[^"\\\r\n]*)*"'),
        ("'''", r"[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"),
        ('"""', r'[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""'),
    ]
}
"""The rest of a string literal after its opening quote, as the tokenize module matches it (in
linear time: each character can be read one way only)."""


def _has_fstring(source: str) -> bool:
    """Whether the source holds an f-string before any unterminated string. No literal does, and
    CPython 3.11 parses one in time quadratic in its fields (for each, it counts the newlines from
    the string's start): 100 KB of `f'{x}{x}...'` takes a second, 1 MB over a minute."""
    at = 0
    while (start := _STRING_OR_COMMENT.search(source, at)) is not None:
        quote = start.group("quote")
        if quote and "f" in (start.group("prefix") or "").lower():
            return True
        end = _STRING_REST[quote].match(source, start.end()) if quote else start
        if end is None:  # ast.parse stops at an unterminated string
            return False
        at = end.end()
    return False


_NUMBER = (int, float, complex)


def _read(node: ast.AST, depth: int, spell: bool) -> tuple[Any, str]:
    """A literal's value and, if `spell`, its spelling, in one walk of its syntax tree.

    The spelling is canonical, in the order written, with what Python drops dropped: a repeated set
    item (the first stays) or dict key (the first key stays, with the last value), so `{1, 1}` and
    `{1}` are one input.
    """
    if depth > MAX_DEPTH:
        raise NotPlainData(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, (ast.List, ast.Tuple)):
        values, texts = _read_items(node.elts, depth, spell)
        if isinstance(node, ast.List):
            return values, "[" + ", ".join(texts) + "]"
        return tuple(values), "(" + texts[0] + ",)" if len(texts) == 1 else "(" + ", ".join(texts) + ")"
    if isinstance(node, ast.Set):
        values, texts = _read_items(node.elts, depth, spell)
        value = _hashed(set, values)
        return value, "{" + ", ".join(_first_spellings(values, texts)) + "}" if spell else ""
    if isinstance(node, ast.Dict):
        return _read_dict(node, depth, spell)
    if isinstance(node, ast.Call):
        return _read_call(node, depth, spell)
    value = _atom(node)
    return value, canonical(value) if spell else ""


def _read_items(elements: list[ast.expr], depth: int, spell: bool) -> tuple[list, list[str]]:
    values, texts = [], []
    for element in elements:
        if isinstance(element, ast.Starred):
            raise NotPlainData("literals may not unpack with *")
        value, text = _read(element, depth + 1, spell)
        values.append(value)
        texts.append(text)
    return values, texts


def _read_dict(node: ast.Dict, depth: int, spell: bool) -> tuple[dict, str]:
    if any(key is None for key in node.keys):
        raise NotPlainData("literals may not unpack with **")
    keys, key_texts = _read_items(node.keys, depth, spell)  # type: ignore[arg-type]
    values, value_texts = _read_items(node.values, depth, spell)
    try:
        _refuse_collisions(keys)
        value = dict(zip(keys, values, strict=True))
    except TypeError:
        raise NotPlainData("dict keys must be hashable") from None
    if not spell:
        return value, ""
    entries: dict[Any, list[str]] = {}
    for key, key_text, value_text in zip(keys, key_texts, value_texts, strict=True):
        entries.setdefault(key, [key_text, ""])[1] = value_text
    return value, "{" + ", ".join(f"{k}: {v}" for k, v in entries.values()) + "}"


def _read_call(node: ast.Call, depth: int, spell: bool) -> tuple[Any, str]:
    """`set()`, `frozenset()` and `frozenset({...})` (or of a list or tuple): the calls repr writes."""
    name = node.func.id if isinstance(node.func, ast.Name) else ""
    if name in ("set", "frozenset") and not node.keywords:
        if not node.args:
            return (set() if name == "set" else frozenset()), f"{name}()"
        inner = node.args[0]
        if name == "frozenset" and len(node.args) == 1 and isinstance(inner, (ast.Set, ast.List, ast.Tuple)):
            values, texts = _read_items(inner.elts, depth, spell)
            value = _hashed(frozenset, values)
            if not spell or not inner.elts:
                return value, "frozenset()" if spell else ""
            return value, "frozenset({" + ", ".join(_first_spellings(values, texts)) + "})"
    raise NotPlainData(f"{_describe(node)} is not a literal")


def _first_spellings(values: list, texts: list[str]) -> list[str]:
    """The spelling of each distinct set item where it first appears (the values are hashable)."""
    seen: dict[Any, str] = {}
    for value, text in zip(values, texts, strict=True):
        seen.setdefault(value, text)
    return list(seen.values())


def _atom(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return _checked_number(node.value) if type(node.value) in _NUMBER else node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _signed(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        return _complex(node)
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
    try:
        real_part = sign * float(real.value)
    except OverflowError:  # an int real part past the largest float: no complex has it
        raise NotPlainData("the real part of the complex literal is out of range") from None
    # Built from the parts, not by arithmetic, so the signs of zeros survive: '(-0-0j)'.
    imag = imaginary.value.imag if isinstance(node.op, ast.Add) else -imaginary.value.imag
    return _checked_number(complex(real_part, imag))


def _checked_number(number: Any) -> Any:
    if type(number) is float and not math.isfinite(number):
        raise NotPlainData(f"{number!r} is not plain data (floats must be finite)")
    if type(number) is complex and not (math.isfinite(number.real) and math.isfinite(number.imag)):
        raise NotPlainData("complex with nan or inf is not plain data")
    return number


def _hashed(kind: type, items: list) -> Any:
    try:
        _refuse_collisions(items)
        return kind(items)
    except TypeError:
        raise NotPlainData("set items must be hashable") from None


def _refuse_collisions(keys: list) -> None:
    """Refuse keys crafted to share a hash: a set or dict compares colliding keys one by one, so n
    distinct ones (0, 2**61 - 1, 2 * (2**61 - 1)... for ints) would cost n**2 comparisons.
    Raises TypeError for an unhashable key."""
    buckets: dict[int, list] = {}
    for key in keys:
        code = hash(key)
        bucket = buckets.get(code)
        if bucket is None:
            buckets[code] = [key]
        elif key not in bucket:
            if len(bucket) >= MAX_COLLISIONS:
                raise NotPlainData(f"more than {MAX_COLLISIONS} distinct set items or dict keys share one hash")
            bucket.append(key)


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Call):
        return "a call"
    return f"a {type(node).__name__} expression"
