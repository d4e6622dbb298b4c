"""Ordinary-style programs: one parameter and one or two operations, the way people write small functions.

The template programs of `programs.py` read like machine output (`v0 = ...`, `v1 = ...`); the
functions the model is later tested on read like `def f(s):\n    return s.upper()[::-1]`. These
programs cover that style: a one-line `return` of one operation or two composed ones, two
statements through a local, an `if` with two returns, or a short accumulating loop, over an int, a
string, a list of ints or a list of words, with varied parameter and local names.

Each operation is typed (what it takes, what it gives) and carries flags about its value, so
compositions are valid by construction: `full` (a string or list that is not empty: indexing and
`max` need it), `small` (an int small enough for `range` and repetition) and `name` (a variable,
for operations that use their input twice or inside an f-string). Each carries a phrase too, and
a program's phrases make its induction message.
"""

from __future__ import annotations

import ast
import random
import re
import warnings
from dataclasses import dataclass

INT, STR, LIST, WORDS = "int", "str", "list", "words"
BOOL, FLOAT, TUPLE = "bool", "float", "tuple"
"""Kinds of values; the first four are parameter kinds (WORDS: a list of short strings)."""

COMMON_WORDS = (
    "hello", "world", "python", "apple", "code", "data", "banana", "cat", "dog", "house", "level",
    "radar", "test", "list", "sun", "moon", "tree", "river", "book", "green", "blue", "red", "music",
    "happy", "water", "light", "stone", "bread", "table", "mouse", "queen", "zebra", "orange", "lemon",
    "night", "paper", "pizza", "robot", "smile", "noon", "kayak", "bob", "anna", "sky", "fish",
)  # fmt: skip
"""Short words for inputs and constants; a few are palindromes."""

PARAM_NAMES = {
    INT: ("x", "n", "num", "a", "value", "k"),
    STR: ("s", "text", "word", "name", "string"),
    LIST: ("nums", "lst", "items", "arr", "numbers", "values", "xs"),
    WORDS: ("words", "names", "strs", "tokens", "items"),
}
LOCAL_NAMES = {
    INT: ("y", "result", "total", "count", "res", "value", "acc"),
    STR: ("y", "result", "out", "res", "t", "new"),
    LIST: ("y", "result", "out", "res", "values", "acc"),
    WORDS: ("y", "result", "out", "res", "parts"),
}
SUFFIXES = ("!", "?", ".", "s", "!!", "ing", "ed", "123", " ok", "-")
PREFIXES = ("#", "my ", "re", "un", "> ", "x")


@dataclass(frozen=True)
class _Op:
    takes: str
    gives: str
    code: str
    """`{a}` is the input (parenthesised only where needed); `{e}` an element variable, `{cond}` a
    condition on it, `{ex}` an expression of it; the others are constants (see `_consts`)."""
    phrase: str
    need: frozenset[str]
    keep: frozenset[str]
    add: frozenset[str]


def _o(takes: str, gives: str, code: str, phrase: str, need: str = "", keep: str = "", add: str = "") -> _Op:
    return _Op(takes, gives, code, phrase, frozenset(need.split()), frozenset(keep.split()), frozenset(add.split()))


OPS = [
    # int -> int
    _o(INT, INT, "{a} + {k}", "add {k}", keep="small"),
    _o(INT, INT, "{a} - {k}", "subtract {k}", keep="small"),
    _o(INT, INT, "{a} * {m}", "multiply by {m}"),
    _o(INT, INT, "{a} * 2", "double it"),
    _o(INT, INT, "{a} // {d}", "floor-divide by {d}", keep="small"),
    _o(INT, INT, "{a} // 2", "halve it, rounding down", keep="small"),
    _o(INT, INT, "{a} % {d}", "take the remainder after dividing by {d}", add="small"),
    _o(INT, INT, "{a} ** {p}", "raise it to the power {p}"),
    _o(INT, INT, "{a} * {a}", "square it", need="name"),
    _o(INT, INT, "-{a}", "negate it", keep="small"),
    _o(INT, INT, "abs({a})", "take the absolute value", keep="small"),
    _o(INT, INT, "{k} - {a}", "subtract it from {k}", keep="small"),
    _o(INT, INT, "max({a}, {k})", "raise it to at least {k}", keep="small"),
    _o(INT, INT, "min({a}, {k})", "cap it at {k}", add="small"),
    _o(INT, INT, "{a} * {m} + {k}", "multiply by {m} and add {k}"),
    _o(INT, INT, "{a} % 10", "take the last digit", add="small"),
    _o(INT, INT, "{a} // 10", "drop the last digit", keep="small"),
    _o(INT, INT, "len(str(abs({a})))", "count the digits", add="small"),
    _o(INT, INT, "sum(int(d) for d in str(abs({a})))", "add up the digits", add="small"),
    _o(INT, INT, "int(str(abs({a}))[::-1])", "reverse the digits", keep="small"),
    _o(INT, INT, "{a} if {a} > 0 else 0", "replace a negative number with zero", need="name", keep="small"),
    _o(INT, INT, "{a} // 2 if {a} % 2 == 0 else 3 * {a} + 1", "halve it if even, else triple it and add one",
       need="name"),
    _o(INT, INT, "sum(range({a}))", "sum the numbers below it", need="small"),
    _o(INT, INT, "sum(range(1, {a} + 1))", "sum the numbers from 1 up to it", need="small"),
    _o(INT, INT, "{a} * ({a} + 1) // 2", "take the triangular number", need="name"),
    _o(INT, INT, "round({a} / {d})", "divide by {d} and round"),
    _o(INT, INT, "{a} - {a} % {d}", "round down to a multiple of {d}", need="name"),
    # int -> other
    _o(INT, BOOL, "{a} % 2 == 0", "it is even"),
    _o(INT, BOOL, "{a} % 2 == 1", "it is odd"),
    _o(INT, BOOL, "{a} % 2 != 0", "it is odd"),
    _o(INT, BOOL, "{a} > {k}", "it is greater than {k}"),
    _o(INT, BOOL, "{a} < {k}", "it is less than {k}"),
    _o(INT, BOOL, "{a} >= {k}", "it is at least {k}"),
    _o(INT, BOOL, "{a} <= {k}", "it is at most {k}"),
    _o(INT, BOOL, "{a} == {k}", "it equals {k}"),
    _o(INT, BOOL, "{a} != {k}", "it differs from {k}"),
    _o(INT, BOOL, "{a} > 0", "it is positive"),
    _o(INT, BOOL, "{a} < 0", "it is negative"),
    _o(INT, BOOL, "{a} == 0", "it is zero"),
    _o(INT, BOOL, "{a} % {d} == 0", "it is divisible by {d}"),
    _o(INT, BOOL, "{lo} <= {a} <= {hi}", "it lies between {lo} and {hi}"),
    _o(INT, BOOL, "str({a}) == str({a})[::-1]", "its digits read the same backwards", need="name"),
    _o(INT, STR, "str({a})", "write it as text", add="full"),
    _o(INT, STR, "str({a}) + '{sfx}'", "write it as text and append '{sfx}'", add="full"),
    _o(INT, STR, "f'{{{a}}}{sfx}'", "write it followed by '{sfx}'", need="name", add="full"),
    _o(INT, STR, "'*' * {a}", "make a row of that many stars", need="small"),
    _o(INT, STR, "str({a}) * {r}", "write it out {r} times in a row", add="full"),
    _o(INT, STR, "str({a})[::-1]", "write it backwards", add="full"),
    _o(INT, STR, "bin({a})", "write it in binary", add="full"),
    _o(INT, STR, "str({a}).zfill({z})", "pad it with zeros to {z} digits", add="full"),
    _o(INT, STR, "'even' if {a} % 2 == 0 else 'odd'", "say whether it is even or odd", need="name", add="full"),
    _o(INT, STR, "'big' if {a} > {k} else 'small'", "call it big above {k}, small otherwise", need="name",
       add="full"),
    _o(INT, STR, "chr(ord('a') + {a} % 26)", "map it to a letter of the alphabet", add="full"),
    _o(INT, LIST, "list(range({a}))", "list the numbers below it", need="small"),
    _o(INT, LIST, "list(range(1, {a} + 1))", "list the numbers from 1 up to it", need="small"),
    _o(INT, LIST, "[{a}] * {r}", "repeat it {r} times in a list", add="full"),
    _o(INT, LIST, "[{a} * i for i in range(1, 4)]", "list its first three multiples", add="full"),
    _o(INT, LIST, "[int(d) for d in str(abs({a}))]", "list its digits", add="full"),
    _o(INT, LIST, "list(range({a}, {a} + {r}))", "list it and the numbers after it, {r} in all", need="name",
       add="full"),
    _o(INT, LIST, "[i * i for i in range({a})]", "list the squares of the numbers below it", need="small"),
    _o(INT, LIST, "[i for i in range({a}) if i % 2 == 0]", "list the even numbers below it", need="small"),
    _o(INT, TUPLE, "divmod({a}, {d})", "divide by {d}, giving the quotient and the remainder"),
    _o(INT, FLOAT, "{a} / {h}", "divide by {h}"),
    # str -> str
    _o(STR, STR, "{a}.upper()", "upper-case it", keep="full"),
    _o(STR, STR, "{a}.lower()", "lower-case it", keep="full"),
    _o(STR, STR, "{a}.title()", "capitalize each word", keep="full"),
    _o(STR, STR, "{a}.capitalize()", "capitalize the first letter", keep="full"),
    _o(STR, STR, "{a}.swapcase()", "swap the case", keep="full"),
    _o(STR, STR, "{a}.strip()", "strip the surrounding spaces", keep="full"),
    _o(STR, STR, "{a}[::-1]", "reverse it", keep="full"),
    _o(STR, STR, "{a}[1:]", "drop the first character"),
    _o(STR, STR, "{a}[:-1]", "drop the last character"),
    _o(STR, STR, "{a}[:{i}]", "keep the first {i} characters", keep="full"),
    _o(STR, STR, "{a}[-{i}:]", "keep the last {i} characters", keep="full"),
    _o(STR, STR, "{a}[{i}:]", "drop the first {i} characters"),
    _o(STR, STR, "{a}[::2]", "keep every other character", keep="full"),
    _o(STR, STR, "{a}[1:-1]", "drop the first and the last character"),
    _o(STR, STR, "{a}.replace('{c}', '{c2}')", "replace '{c}' with '{c2}'", keep="full"),
    _o(STR, STR, "{a}.replace('{c}', '')", "remove every '{c}'"),
    _o(STR, STR, "{a}.replace(' ', '')", "remove the spaces"),
    _o(STR, STR, "{a}.replace(' ', '_')", "replace spaces with underscores", keep="full"),
    _o(STR, STR, "{a} + '{sfx}'", "append '{sfx}'", add="full"),
    _o(STR, STR, "'{pre}' + {a}", "prepend '{pre}'", add="full"),
    _o(STR, STR, "{a} * {r}", "repeat it {r} times", keep="full"),
    _o(STR, STR, "{a} + {a}", "double it", need="name", keep="full"),
    _o(STR, STR, "{a} + {a}[::-1]", "append its reverse", need="name", keep="full"),
    _o(STR, STR, "'-'.join({a})", "put dashes between the characters", keep="full"),
    _o(STR, STR, "' '.join({a})", "put spaces between the characters", keep="full"),
    _o(STR, STR, "''.join(sorted({a}))", "sort the characters", keep="full"),
    _o(STR, STR, "{a}[0]", "take the first character", need="full", add="full"),
    _o(STR, STR, "{a}[-1]", "take the last character", need="full", add="full"),
    _o(STR, STR, "{a}[0].upper() + {a}[1:]", "upper-case the first character", need="name full", keep="full"),
    _o(STR, STR, "{a}.split()[0]", "take the first word", need="full", add="full"),
    _o(STR, STR, "{a}.split()[-1]", "take the last word", need="full", add="full"),
    _o(STR, STR, "' '.join({a}.split()[::-1])", "reverse the order of the words"),
    _o(STR, STR, "'(' + {a} + ')'", "wrap it in parentheses", add="full"),
    _o(STR, STR, "{a}.strip('{c}')", "strip '{c}' from both ends"),
    _o(STR, STR, "''.join(c * 2 for c in {a})", "double each character", keep="full"),
    _o(STR, STR, "{a}.upper() if len({a}) > {i} else {a}", "upper-case it if it is longer than {i} characters",
       need="name", keep="full"),
    _o(STR, STR, "f'{{{a}}}{sfx}'", "add '{sfx}' at the end", need="name", add="full"),
    _o(STR, STR, "f'Hello, {{{a}}}!'", "greet it", need="name", add="full"),
    # str -> other
    _o(STR, INT, "len({a})", "count the characters", add="small"),
    _o(STR, INT, "{a}.count('{c}')", "count how many times '{c}' appears", add="small"),
    _o(STR, INT, "{a}.find('{c}')", "find where '{c}' first appears, or -1", add="small"),
    _o(STR, INT, "{a}.rfind('{c}')", "find where '{c}' last appears, or -1", add="small"),
    _o(STR, INT, "len({a}.split())", "count the words", add="small"),
    _o(STR, INT, "len(set({a}))", "count the distinct characters", add="small"),
    _o(STR, INT, "ord({a}[0])", "take the code of the first character", need="full"),
    _o(STR, INT, "int({a}) if {a}.isdigit() else 0", "read it as a number, or 0 if it is not one", need="name"),
    _o(STR, BOOL, "{a}.startswith('{c}')", "it starts with '{c}'"),
    _o(STR, BOOL, "{a}.endswith('{c}')", "it ends with '{c}'"),
    _o(STR, BOOL, "{a}.isdigit()", "it is all digits"),
    _o(STR, BOOL, "{a}.isalpha()", "it is all letters"),
    _o(STR, BOOL, "{a}.isupper()", "it is upper-case"),
    _o(STR, BOOL, "{a}.islower()", "it is lower-case"),
    _o(STR, BOOL, "'{c}' in {a}", "it contains '{c}'"),
    _o(STR, BOOL, "'{c}' not in {a}", "it has no '{c}'"),
    _o(STR, BOOL, "{a} == {a}[::-1]", "it is a palindrome", need="name"),
    _o(STR, BOOL, "len({a}) > {i}", "it is longer than {i} characters"),
    _o(STR, BOOL, "' ' in {a}", "it contains a space"),
    _o(STR, BOOL, "{a} == ''", "it is empty"),
    _o(STR, BOOL, "{a}[0] == {a}[-1]", "it starts and ends with the same character", need="name full"),
    _o(STR, WORDS, "{a}.split()", "split it into words", keep="full"),
    _o(STR, WORDS, "list({a})", "split it into characters", keep="full"),
    _o(STR, WORDS, "sorted({a})", "list the characters in sorted order", keep="full"),
    _o(STR, WORDS, "{a}.split('{c}')", "split it at each '{c}'", add="full"),
    _o(STR, LIST, "[ord(c) for c in {a}]", "list the character codes", keep="full"),
    _o(STR, LIST, "[len(w) for w in {a}.split()]", "list the lengths of the words", keep="full"),
    _o(STR, LIST, "[i for i, c in enumerate({a}) if c == '{c}']", "list the positions of '{c}'"),
    # list -> int
    _o(LIST, INT, "len({a})", "count the items", add="small"),
    _o(LIST, INT, "sum({a})", "add up the items"),
    _o(LIST, INT, "max({a})", "take the largest item", need="full"),
    _o(LIST, INT, "min({a})", "take the smallest item", need="full"),
    _o(LIST, INT, "{a}[0]", "take the first item", need="full"),
    _o(LIST, INT, "{a}[-1]", "take the last item", need="full"),
    _o(LIST, INT, "max({a}) - min({a})", "take the gap between the largest and the smallest item",
       need="name full"),
    _o(LIST, INT, "sum({a}) // len({a})", "take the average, rounded down", need="name full"),
    _o(LIST, INT, "{a}.count({v})", "count how many times {v} appears", add="small"),
    _o(LIST, INT, "len(set({a}))", "count the distinct items", add="small"),
    _o(LIST, INT, "sum(v * v for v in {a})", "add up the squares of the items"),
    _o(LIST, INT, "{a}.index(max({a}))", "find the position of the largest item", need="name full", add="small"),
    _o(LIST, INT, "sum({a}[::2])", "add up every other item"),
    _o(LIST, INT, "sorted({a})[len({a}) // 2]", "take the middle item after sorting", need="name full"),
    _o(LIST, INT, "sum({e} for {e} in {a} if {cond})", "add up the {cp}"),
    # list -> other
    _o(LIST, LIST, "sorted({a})", "sort it", keep="full"),
    _o(LIST, LIST, "sorted({a}, reverse=True)", "sort it from largest to smallest", keep="full"),
    _o(LIST, LIST, "{a}[::-1]", "reverse it", keep="full"),
    _o(LIST, LIST, "list(reversed({a}))", "reverse it", keep="full"),
    _o(LIST, LIST, "{a}[1:]", "drop the first item"),
    _o(LIST, LIST, "{a}[:-1]", "drop the last item"),
    _o(LIST, LIST, "{a}[:{i}]", "keep the first {i} items", keep="full"),
    _o(LIST, LIST, "{a}[-{i}:]", "keep the last {i} items", keep="full"),
    _o(LIST, LIST, "{a}[::2]", "keep every other item", keep="full"),
    _o(LIST, LIST, "{a} + [{k}]", "append {k}", add="full"),
    _o(LIST, LIST, "[{k}] + {a}", "put {k} in front", add="full"),
    _o(LIST, LIST, "{a} * 2", "repeat it twice", keep="full"),
    _o(LIST, LIST, "sorted(set({a}))", "sort the distinct items", keep="full"),
    _o(LIST, LIST, "{a} + {a}[::-1]", "append its reverse", need="name", keep="full"),
    _o(LIST, LIST, "{a}[1:] + {a}[:1]", "move the first item to the end", need="name", keep="full"),
    _o(LIST, LIST, "[sum({a}[:i + 1]) for i in range(len({a}))]", "list the running totals", need="name",
       keep="full"),
    _o(LIST, LIST, "[{a}[i] + {a}[i + 1] for i in range(len({a}) - 1)]", "add up neighbouring items",
       need="name"),
    _o(LIST, LIST, "[i for i, {e} in enumerate({a}) if {cond}]", "list the positions of the {cp}"),
    _o(LIST, BOOL, "{v} in {a}", "it contains {v}"),
    _o(LIST, BOOL, "{v} not in {a}", "it does not contain {v}"),
    _o(LIST, BOOL, "{a} == sorted({a})", "it is sorted", need="name"),
    _o(LIST, BOOL, "len({a}) > {i}", "it has more than {i} items"),
    _o(LIST, BOOL, "len({a}) == 0", "it is empty"),
    _o(LIST, BOOL, "sum({a}) > {k}", "its items add up to more than {k}"),
    _o(LIST, BOOL, "len({a}) == len(set({a}))", "its items are all different", need="name"),
    _o(LIST, BOOL, "{a}[0] == {a}[-1]", "its first and last items are equal", need="name full"),
    _o(LIST, STR, "' '.join(str({e}) for {e} in {a})", "join the items with spaces"),
    _o(LIST, STR, "','.join(map(str, {a}))", "join the items with commas"),
    _o(LIST, STR, "''.join(str({e}) for {e} in {a})", "write the items one after another"),
    _o(LIST, WORDS, "[str({e}) for {e} in {a}]", "turn each item into text", keep="full"),
    _o(LIST, TUPLE, "(min({a}), max({a}))", "take the smallest and the largest item", need="name full"),
    _o(LIST, TUPLE, "(len({a}), sum({a}))", "take the number of items and their total", need="name"),
    _o(LIST, FLOAT, "sum({a}) / len({a})", "take the average", need="name full"),
    # words -> any
    _o(WORDS, INT, "len({a})", "count them", add="small"),
    _o(WORDS, INT, "sum(len({e}) for {e} in {a})", "count the letters in all of them", add="small"),
    _o(WORDS, STR, "' '.join({a})", "join them with spaces", keep="full"),
    _o(WORDS, STR, "''.join({a})", "glue them together"),
    _o(WORDS, STR, "', '.join({a})", "join them with commas"),
    _o(WORDS, STR, "'-'.join({a})", "join them with dashes"),
    _o(WORDS, STR, "max({a}, key=len)", "take the longest", need="full"),
    _o(WORDS, STR, "min({a}, key=len)", "take the shortest", need="full"),
    _o(WORDS, STR, "{a}[0]", "take the first", need="full"),
    _o(WORDS, STR, "{a}[-1]", "take the last", need="full"),
    _o(WORDS, STR, "''.join({e}[:1] for {e} in {a})", "take the initials"),
    _o(WORDS, WORDS, "sorted({a})", "sort them", keep="full"),
    _o(WORDS, WORDS, "sorted({a}, key=len)", "sort them by length", keep="full"),
    _o(WORDS, WORDS, "{a}[::-1]", "reverse their order", keep="full"),
    _o(WORDS, WORDS, "{a} + ['{w}']", "append '{w}'", add="full"),
    _o(WORDS, LIST, "[len({e}) for {e} in {a}]", "measure each of them", keep="full"),
    _o(WORDS, BOOL, "'{w}' in {a}", "it contains '{w}'"),
    _o(WORDS, BOOL, "len({a}) > {i}", "it has more than {i} words"),
]  # fmt: skip

for _kind, _joined in ((LIST, LIST), (STR, WORDS), (WORDS, WORDS)):
    OPS += [
        _o(_kind, _joined, "[{ex} for {e} in {a}]", "{xp}", keep="full"),
        _o(_kind, INT, "sum(1 for {e} in {a} if {cond})", "count the {cp}", add="small"),
        _o(_kind, INT, "len([{e} for {e} in {a} if {cond}])", "count the {cp}", add="small"),
        _o(_kind, BOOL, "any({cond} for {e} in {a})", "there are {cp}"),
        _o(_kind, BOOL, "all({cond} for {e} in {a})", "all the {items} {adj}"),
    ]
    if _kind == STR:
        OPS += [
            _o(STR, STR, "''.join({e} for {e} in {a} if {cond})", "keep the {cp}"),
            _o(STR, STR, "''.join({ex} for {e} in {a})", "{xp}", keep="full"),
            _o(STR, STR, "''.join({ex} for {e} in {a} if {cond})", "keep the {cp}, each {xs}"),
        ]
    else:
        OPS += [
            _o(_kind, _kind, "[{e} for {e} in {a} if {cond}]", "keep the {cp}"),
            _o(_kind, _kind, "[{ex} for {e} in {a} if {cond}]", "keep the {cp}, each {xs}"),
        ]


@dataclass(frozen=True)
class _Elements:
    """How to go through a value of a kind: element names, and conditions and expressions on one
    element (`{e}`), each with the phrases that describe it."""

    names: tuple[str, ...]
    items: str
    conds: tuple[tuple[str, str, str], ...]
    """(code, noun phrase for the elements that pass, what they all do when they all pass)."""
    exes: tuple[tuple[str, str, str], ...]
    """(code, verb phrase about `{it}`, short phrase after 'each')."""


ELEMENTS = {
    LIST: _Elements(
        ("v", "x", "n", "num", "item", "e"), "items",
        (("{e} % 2 == 0", "even {items}", "are even"), ("{e} % 2 == 1", "odd {items}", "are odd"),
         ("{e} > {k}", "{items} greater than {k}", "are greater than {k}"),
         ("{e} < {k}", "{items} less than {k}", "are less than {k}"),
         ("{e} >= {k}", "{items} of at least {k}", "are at least {k}"), ("{e} > 0", "positive {items}", "are positive"),
         ("{e} < 0", "negative {items}", "are negative"), ("{e} != {v}", "{items} other than {v}", "differ from {v}"),
         ("{e} % {d} == 0", "{items} divisible by {d}", "are divisible by {d}")),
        (("{e} * {m}", "multiply {it} by {m}", "times {m}"), ("{e} + {k}", "add {k} to {it}", "plus {k}"),
         ("{e} - {k}", "subtract {k} from {it}", "minus {k}"), ("{e} * {e}", "square {it}", "squared"),
         ("{e} ** 2", "square {it}", "squared"), ("abs({e})", "take the absolute value of {it}", "made positive"),
         ("-{e}", "negate {it}", "negated"), ("{e} % {d}", "take {it} modulo {d}", "modulo {d}"),
         ("{e} // {d}", "floor-divide {it} by {d}", "floor-divided by {d}"), ("{e} * 2", "double {it}", "doubled"),
         ("max({e}, 0)", "replace each negative item with zero", "at least zero")),
    ),
    STR: _Elements(
        ("c", "ch", "char", "letter"), "characters",
        (("{e} in 'aeiou'", "vowels", "are vowels"),
         ("{e} not in 'aeiou'", "characters that are not vowels", "are not vowels"),
         ("{e}.isalpha()", "letters", "are letters"), ("{e}.isdigit()", "digits", "are digits"),
         ("{e}.isupper()", "capital letters", "are capital letters"),
         ("{e} != ' '", "characters other than spaces", "are not spaces"),
         ("{e} != '{c}'", "characters other than '{c}'", "differ from '{c}'")),
        (("{e}.upper()", "upper-case {it}", "upper-cased"), ("{e} * 2", "double {it}", "doubled"),
         ("{e} + '{sfx}'", "follow {it} by '{sfx}'", "followed by '{sfx}'"),
         ("{e}.swapcase()", "swap the case of {it}", "with its case swapped")),
    ),
    WORDS: _Elements(
        ("w", "word", "s", "item"), "words",
        (("len({e}) > {i}", "words longer than {i} letters", "are longer than {i} letters"),
         ("{e}.startswith('{c}')", "words starting with '{c}'", "start with '{c}'"),
         ("'{c}' in {e}", "words containing '{c}'", "contain '{c}'"),
         ("{e} != '{w}'", "words other than '{w}'", "differ from '{w}'")),
        (("{e}.upper()", "upper-case {it}", "upper-cased"), ("{e}[::-1]", "reverse {it}", "reversed"),
         ("{e}.capitalize()", "capitalize {it}", "capitalized"),
         ("{e}[:1]", "keep the first letter of {it}", "cut to its first letter"),
         ("{e} + 's'", "add an 's' to {it}", "with an 's' added")),
    ),
}  # fmt: skip
_SINGULAR = {"items": "item", "characters": "character", "words": "word"}


@dataclass(frozen=True)
class _Expr:
    code: str
    kind: str
    flags: frozenset[str]
    phrases: tuple[str, ...]
    predicate: str = ""
    """For a bool: what it says, to follow 'if' or 'check whether'."""


def make(rng: random.Random) -> tuple[str, tuple[str, ...], str]:
    """One ordinary-style program: (source, parameter kinds, message)."""
    kind = rng.choices([INT, STR, LIST, WORDS], weights=[32, 34, 26, 8])[0]
    param = rng.choice(PARAM_NAMES[kind])
    start = _Expr(param, kind, frozenset({"name", "full", "small"}), ())
    form = rng.choices(["one", "two", "local", "if", "loop"], weights=[34, 27, 13, 14, 12])[0]
    if form == "if":
        body, phrases = _if_body(start, rng)
    elif form == "loop":
        body, phrases = _loop_body(start, rng)
    else:
        op = rng.choice(_options(start))
        first = _apply(op, start, rng)
        if form == "one" or not _options(first):
            body, phrases = f"return {first.code}", first.phrases
        elif form == "two":
            last = _apply(rng.choice([o for o in _options(first) if o is not op]), first, rng)
            body, phrases = f"return {last.code}", last.phrases
        else:
            local = rng.choice([n for n in LOCAL_NAMES[first.kind] if n != param])
            named = _Expr(local, first.kind, first.flags | {"name"}, first.phrases)
            last = _apply(rng.choice([o for o in _options(named) if o is not op]), named, rng)
            body, phrases = f"{local} = {first.code}\nreturn {last.code}", last.phrases
    source = f"def f({param}):\n" + "\n".join("    " + line for line in body.split("\n"))
    return source, (kind,), "; ".join(phrases)


def _options(expr: _Expr) -> list[_Op]:
    return [op for op in OPS if op.takes == expr.kind and op.need <= expr.flags]


def _apply(op: _Op, expr: _Expr, rng: random.Random) -> _Expr:
    """`op` on `expr`: its code, kind, flags and the phrases so far."""
    fill = _consts(rng)
    said = dict(fill)
    if "{e}" in op.code:
        elements = ELEMENTS[op.takes]
        taken = set(re.findall(r"[A-Za-z_]\w*", expr.code))
        e = rng.choice([name for name in elements.names if name not in taken])
        cond, noun, adj = rng.choice(elements.conds)
        ex, verb, after = rng.choice(elements.exes)
        inner, outer = _consts(rng), _consts(rng)
        fill.update(e=e, cond=cond.format(e=e, **inner), ex=ex.format(e=e, **outer))
        items = elements.items
        said.update(
            cp=noun.format(items=items, **inner), adj=adj.format(**inner), items=items,
            xp=verb.format(it=f"each {_SINGULAR[items]}", **outer), xs=after.format(**outer),
        )  # fmt: skip
    code = _render(op.code, {"a": expr.code}, fill)
    phrase = op.phrase.format(**said)
    predicate = phrase if op.gives == BOOL else ""
    phrase = f"check whether {phrase}" if predicate else phrase
    return _Expr(code, op.gives, (expr.flags & op.keep) | op.add, (*expr.phrases, phrase), predicate)


def _render(template: str, slots: dict[str, str], fill: dict) -> str:
    """The template with each slot's code, in parentheses only where the meaning needs them."""
    chosen = {key: f"({code})" for key, code in slots.items()}
    target = _tree(template.format(**chosen, **fill))
    for key, code in slots.items():
        trial = {**chosen, key: code}
        tree = _tree(template.format(**trial, **fill))
        if tree is not None and tree == target:
            chosen = trial
    return template.format(**chosen, **fill)


def _tree(code: str) -> str | None:
    """The expression's syntax tree as text, or None if it does not parse without a warning (a bare
    `3` before `.count()` makes `3.count()`, an invalid literal)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return ast.dump(ast.parse(code, mode="eval"))
        except SyntaxError:
            return None


def _consts(rng: random.Random) -> dict:
    """Constants for one operation: `k` mostly 1-10, sometimes up to 100; the others sized for
    their use (a divisor, an exponent, an index, a repeat count, letters and words that occur)."""
    k = rng.randint(1, 10) if rng.random() < 0.75 else rng.randint(11, 100)
    lo = rng.randint(0, 10)
    word = rng.choice(COMMON_WORDS)
    c, c2 = rng.choice(word), rng.choice("aeiouxyz_")
    return {
        "k": k, "m": rng.choice([2, 2, 3, 3, 4, 5, 10]), "d": rng.choice([2, 2, 3, 3, 4, 5, 7, 10]),
        "p": rng.choice([2, 2, 3]), "i": rng.randint(1, 4), "r": rng.randint(2, 3), "z": rng.randint(3, 5),
        "v": rng.randint(0, 10), "lo": lo, "hi": lo + rng.randint(3, 20), "h": rng.choice([2, 4, 5, 10]),
        "c": c, "c2": c2 if c2 != c else "*", "w": rng.choice(COMMON_WORDS),
        "sfx": rng.choice(SUFFIXES), "pre": rng.choice(PREFIXES),
    }  # fmt: skip


def _if_body(start: _Expr, rng: random.Random) -> tuple[str, tuple[str, ...]]:
    """`if <test>: return A` then `return B` (or `else:`), or `return A if <test> else B`."""
    tests = [op for op in _options(start) if op.gives == BOOL]
    test = _apply(rng.choice(tests), start, rng)
    predicate = test.predicate
    if rng.random() < 0.12:
        return f"if {test.code}:\n    return True\nreturn False", (f"check whether {predicate}",)
    ops = _options(start)
    branches = [op for op in ops if op.gives in (INT, STR, LIST) and sum(o.gives == op.gives for o in ops) > 1]
    chosen = rng.choice(branches)
    yes = _apply(chosen, start, rng)
    others = [op for op in ops if op.gives == yes.kind and op is not chosen]
    if yes.kind == start.kind and rng.random() < 0.35:
        no = _Expr(start.code, start.kind, start.flags, ("leave it as it is",))
    else:
        no = _apply(rng.choice(others), start, rng)
    phrase = f"if {predicate}, {yes.phrases[-1]}; otherwise {no.phrases[-1]}"
    shape = rng.random()
    inline = _render("{y} if {t} else {n}", {"y": yes.code, "t": test.code, "n": no.code}, {})
    if shape < 0.3 and len(inline) <= 60:
        body = f"return {inline}"
    elif shape < 0.65:
        body = f"if {test.code}:\n    return {yes.code}\nreturn {no.code}"
    else:
        body = f"if {test.code}:\n    return {yes.code}\nelse:\n    return {no.code}"
    return body, (phrase,)


def _loop_body(start: _Expr, rng: random.Random) -> tuple[str, tuple[str, ...]]:
    """A short loop that accumulates: a count, a sum, a product, a running best, a built list or
    string; over the elements, perhaps only those passing a condition, perhaps transformed."""
    name, kind = start.code, start.kind
    if kind == INT:
        return _int_loop(name, rng)
    elements = ELEMENTS[kind]
    e = rng.choice([n for n in elements.names if n != name])
    inner, outer = _consts(rng), _consts(rng)
    cond, noun, _ = rng.choice(elements.conds)
    cond, noun = cond.format(e=e, **inner), noun.format(items=elements.items, **inner)
    ex, verb, after = rng.choice(elements.exes)
    ex, verb, after = (
        ex.format(e=e, **outer),
        verb.format(it=f"each {_SINGULAR[elements.items]}", **outer),
        after.format(**outer),
    )
    filtered = rng.random() < 0.6
    mapped = not filtered or rng.random() < 0.4
    value = ex if mapped else e
    guard = f"    if {cond}:\n    " if filtered else ""
    what = f"the {noun}" if filtered else f"the {elements.items}"
    each = f", each {after}" if mapped else ""
    shape = rng.choice({LIST: ["count", "build", "sum", "product", "best"], STR: ["count", "build", "reverse"],
                        WORDS: ["count", "build", "letters"]}[kind])  # fmt: skip
    if shape == "count":
        acc = rng.choice([n for n in ("count", "n", "total", "c") if n not in (name, e)])
        return f"{acc} = 0\nfor {e} in {name}:\n    if {cond}:\n        {acc} += 1\nreturn {acc}", (
            f"count the {noun}",
        )
    if shape in ("sum", "letters"):
        acc = rng.choice(["total", "acc", "result", "s" if kind == LIST else "n"])
        step, phrase = (value, f"sum {what}{each}") if shape == "sum" else (f"len({e})", f"count the letters in {what}")
        return f"{acc} = 0\nfor {e} in {name}:\n{guard}    {acc} += {step}\nreturn {acc}", (phrase,)
    if shape == "product":
        acc = rng.choice(["result", "product", "prod", "acc"])
        return f"{acc} = 1\nfor {e} in {name}:\n    {acc} *= {e}\nreturn {acc}", ("multiply the items together",)
    if shape == "best":
        acc = rng.choice(["best", "biggest", "top", "result"])
        sign, word = rng.choice([(">", "largest"), ("<", "smallest")])
        loop = f"for {e} in {name}:\n    if {e} {sign} {acc}:\n        {acc} = {e}"
        return f"{acc} = {name}[0]\n{loop}\nreturn {acc}", (f"find the {word} item",)
    acc = rng.choice([n for n in ("out", "result", "res", "new") if n != name])
    if shape == "reverse":
        return f"{acc} = ''\nfor {e} in {name}:\n    {acc} = {e} + {acc}\nreturn {acc}", ("reverse it",)
    empty, step = ("''", f"{acc} += {value}") if kind == STR else ("[]", f"{acc}.append({value})")
    phrase = f"keep {what}{each}" if filtered else verb
    return f"{acc} = {empty}\nfor {e} in {name}:\n{guard}    {step}\nreturn {acc}", (phrase,)


def _int_loop(name: str, rng: random.Random) -> tuple[str, tuple[str, ...]]:
    """Loops over the numbers below an int, or over its digits."""
    acc = rng.choice([n for n in ("total", "result", "acc", "s") if n != name])
    shape = rng.choice(["sum", "sum", "factorial", "digits", "count_digits"])
    if shape == "factorial":
        return (
            f"{acc} = 1\nfor i in range(1, {name} + 1):\n    {acc} *= i\nreturn {acc}",
            ("multiply the numbers from 1 up to it",),
        )
    if shape == "digits":
        return (
            f"{acc} = 0\nwhile {name} > 0:\n    {acc} += {name} % 10\n    {name} //= 10\nreturn {acc}",
            ("add up its digits, or give 0 if it is not positive",),
        )
    if shape == "count_digits":
        return (
            f"{acc} = 0\nwhile {name} > 0:\n    {name} //= 10\n    {acc} += 1\nreturn {acc}",
            ("count its digits, or give 0 if it is not positive",),
        )
    elements, fill = ELEMENTS[LIST], _consts(rng)
    cond, noun, _ = rng.choice(elements.conds)
    ex, _, after = rng.choice(elements.exes)
    body, phrase = f"    {acc} += i\n", "sum the numbers below it"
    if rng.random() < 0.5:
        body = f"    if {cond.format(e='i', **fill)}:\n        {acc} += i\n"
        phrase = f"sum the {noun.format(items='numbers', **fill)} below it"
    elif rng.random() < 0.5:
        outer = _consts(rng)
        body = f"    {acc} += {ex.format(e='i', **outer)}\n"
        phrase = f"sum the numbers below it, each {after.format(**outer)}"
    return f"{acc} = 0\nfor i in range({name}):\n{body}return {acc}", (phrase,)


def draw(kind: str, rng: random.Random) -> str:
    """A literal for an ordinary-style program: small ints with a few up to 100, words and short
    strings of a wider alphabet (at most 12 characters), short lists."""
    if kind == INT:
        roll = rng.random()
        return str(rng.randint(0, 12) if roll < 0.45 else rng.randint(-10, 30) if roll < 0.9 else rng.randint(31, 100))
    if kind == STR:
        return repr(_text(rng))
    if kind == WORDS:
        return repr([rng.choice(COMMON_WORDS) for _ in range(rng.randint(1, 4))])
    length = 0 if rng.random() < 0.05 else rng.randint(1, 7)
    low, high = (0, 10) if rng.random() < 0.6 else (-5, 20)
    return repr([rng.randint(low, high) for _ in range(length)])


def _text(rng: random.Random) -> str:
    roll = rng.random()
    word = rng.choice(COMMON_WORDS)
    if roll < 0.4:
        return word
    if roll < 0.5:
        return word.capitalize()
    if roll < 0.62:
        second = rng.choice([w for w in COMMON_WORDS if len(word) + len(w) < 12])
        return f"{word} {second}"
    if roll < 0.77:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 8)))
    if roll < 0.87:
        return "".join(rng.choice("abcde") for _ in range(rng.randint(1, 7)))
    if roll < 0.94:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 4)))
    return word.upper() if rng.random() < 0.5 else word + str(rng.randint(1, 99))
