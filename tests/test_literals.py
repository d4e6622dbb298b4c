"""Parsing literal inputs and the canonical repr: table-driven, no processes."""

import json
import math

import pytest

from azr.executor.literals import (
    MAX_DEPTH,
    NotPlainData,
    canonical,
    is_canonical,
    parse_arguments,
    parse_value,
)

# (input text, positional args, keyword args)
ARGUMENTS = [
    ("'abc', [1, 2]", ("abc", [1, 2]), {}),
    ("nums=[1, 2], k=3", (), {"nums": [1, 2], "k": 3}),
    ("1, k=2", (1,), {"k": 2}),
    ("", (), {}),
    ("  [1,\n 2]  ", ([1, 2],), {}),
    ("[1,\r\n2]", ([1, 2],), {}),
    ("{'a': (1,), 2: {3}}", ({"a": (1,), 2: {3}},), {}),
    ("set(), frozenset(), frozenset({1, 2})", (set(), frozenset(), frozenset({1, 2})), {}),
    ("-0.0, -5, +3, 2.5e-3", (-0.0, -5, 3, 0.0025), {}),
    ("1+2j, -1j, (-0-0j)", (1 + 2j, complex(0, -1), complex(-0.0, -0.0)), {}),
    ("None, True, False, ...", (None, True, False, Ellipsis), {}),
    ("b'\\x00\\xff'", (b"\x00\xff",), {}),
    ("'\\ud800', 'é🙂'", ("\ud800", "é🙂"), {}),
    ("123456789012345678901234567890", (123456789012345678901234567890,), {}),
    ("1 # a comment", (1,), {}),
]


@pytest.mark.parametrize(("text", "args", "kwargs"), ARGUMENTS)
def test_parse_arguments(text, args, kwargs):
    parsed = parse_arguments(text)
    assert parsed.args == args
    assert parsed.kwargs == kwargs
    # == cannot see signs of zero or exact types: compare canonical forms too
    assert [canonical(a) for a in parsed.args] == [canonical(a) for a in args]


REJECTED_INPUTS = [
    "1) or (1",  # injection through the closing parenthesis
    "1), (2",
    "1)(2",
    "1) #",
    "__import__('os').system('true')",
    "f(3) + 1",
    "x",
    "[x for x in range(3)]",
    "lambda: 1",
    "1 + 1",  # operators only inside complex literals
    "-True",
    "*[1, 2]",
    "**{'a': 1}",
    "[*[1]]",
    "{**{}}",
    "a=1, a=2",
    "a=1, 2",
    "dict(a=1)",
    "set([1])",
    "frozenset(x)",
    "1e999",  # inf
    "-1e999j",
    "{[1]: 2}",
    "{[1]}",
    "'unterminated",
    "1\x00",
    "9" * 4301,  # over CPython's int digit limit
    "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2),
    "(yield)",
    "await x",
    "1; import os",
    "1\n) + (2",
]


@pytest.mark.parametrize("text", REJECTED_INPUTS)
def test_rejects_non_literal_inputs(text):
    with pytest.raises(NotPlainData):
        parse_arguments(text)


def test_input_length_limit():
    parse_arguments("'" + "a" * 98 + "'", max_chars=100)
    with pytest.raises(NotPlainData, match="longer than 100"):
        parse_arguments("'" + "a" * 99 + "'", max_chars=100)


@pytest.mark.parametrize(
    ("text", "spelled"),
    [
        ("  'a' ,[1,2],  k = {3 : 4}", "'a', [1, 2], k={3: 4}"),
        ('"x", 0x10, 1e3, -0., (1), (2,)', "'x', 16, 1000.0, -0.0, 1, (2,)"),
        # containers keep the order written: a program can observe it
        ("{'b': 1, 'a': 2}", "{'b': 1, 'a': 2}"),
        ("{8, 0}", "{8, 0}"),  # 8 and 0 share a slot: list({8, 0}) is [8, 0], list({0, 8}) is [0, 8]
        ("frozenset([2, 1]), frozenset([]), set()", "frozenset({2, 1}), frozenset(), set()"),
        ("b=1, a=2", "b=1, a=2"),
        # what Python drops is dropped: {1, 1} and {1} are one input
        ("{1, 1, True, 2}, {1: 'a', 2: 'b', 1.0: 'c'}", "{1, 2}, {1: 'c', 2: 'b'}"),
        ("frozenset([3, 3])", "frozenset({3})"),
    ],
)
def test_canonical_arguments(text, spelled):
    arguments = parse_arguments(text)
    assert arguments.canonical() == spelled
    again = parse_arguments(spelled)
    assert again.canonical() == spelled
    assert [list(a) if isinstance(a, (set, dict)) else a for a in again.args] == [
        list(a) if isinstance(a, (set, dict)) else a for a in arguments.args
    ]


# (value, canonical repr)
CANONICAL = [
    (None, "None"),
    (True, "True"),
    (1, "1"),
    (1.0, "1.0"),
    (-0.0, "-0.0"),
    (0.1 + 0.2, "0.30000000000000004"),
    (10**50, "1" + "0" * 50),
    (-(10**50), "-1" + "0" * 50),
    (1e300, "1e+300"),
    (2j, "2j"),
    (complex(1, -2), "(1-2j)"),
    (complex(-0.0, 1), "(-0+1j)"),
    (complex(0.0, -1.0), "-1j"),
    (complex(-0.0, -0.0), "(-0-0j)"),
    ("it's", '"it\'s"'),
    ("é🙂", "'é🙂'"),
    ("\ud800", "'\\ud800'"),  # a lone surrogate is escaped, so results stay valid JSON
    ("\n\t\x00", "'\\n\\t\\x00'"),
    (b"\x00a", "b'\\x00a'"),
    (Ellipsis, "..."),
    ([], "[]"),
    ((), "()"),
    ((1,), "(1,)"),
    ([1, (2, [3])], "[1, (2, [3])]"),
    ({}, "{}"),
    ({"b": 1, "a": 2}, "{'a': 2, 'b': 1}"),  # dict items in key order: equal dicts, one spelling
    ({2: "x", 10: "y", -1: "z"}, "{-1: 'z', 2: 'x', 10: 'y'}"),
    ({1: "i", "1": "s"}, "{'1': 's', 1: 'i'}"),  # mixed kinds: by canonical text
    (set(), "set()"),
    ({10, 2, 33}, "{2, 10, 33}"),
    ({"b", "a", "c"}, "{'a', 'b', 'c'}"),
    ({2.5, 1, -3}, "{-3, 1, 2.5}"),
    ({(1, "a"), (0, "b")}, "{(0, 'b'), (1, 'a')}"),
    ({1, "1", None}, "{'1', 1, None}"),
    (frozenset(), "frozenset()"),
    (frozenset({3, 1}), "frozenset({1, 3})"),
    ({frozenset({2}), frozenset({1})}, "{frozenset({1}), frozenset({2})}"),
]


@pytest.mark.parametrize(("value", "text"), CANONICAL)
def test_canonical(value, text):
    assert canonical(value) == text
    assert is_canonical(text)
    assert canonical(parse_value(text)) == text  # round trip
    json.loads(json.dumps(text, ensure_ascii=False).encode("utf-8"))  # strict UTF-8 JSON


def test_canonical_distinguishes_types():
    reprs = {canonical(v) for v in (1, 1.0, True, [1], (1,), {1}, frozenset({1}), "1", b"1")}
    assert len(reprs) == 9


def test_canonical_is_independent_of_insertion_and_hash_order():
    assert canonical({"x": 1, "y": 2}) == canonical({"y": 2, "x": 1})
    words = [f"w{i}" for i in range(50)]
    assert canonical(set(words)) == canonical(set(reversed(words)))


class IntSub(int):
    pass


class ListSub(list):
    pass


class Sneaky:
    def __eq__(self, other):
        return True

    def __repr__(self):
        return "1"


NOT_PLAIN = [
    IntSub(1),
    ListSub([1]),
    Sneaky(),
    [Sneaky()],
    {"k": Sneaky()},
    math.nan,
    math.inf,
    -math.inf,
    complex(math.nan, 0),
    (x for x in []),
    len,
    object,
    bytearray(b"a"),
    range(3),
    {1: [IntSub(2)]},
]


@pytest.mark.parametrize("value", NOT_PLAIN, ids=lambda v: type(v).__name__)
def test_not_plain(value):
    with pytest.raises(NotPlainData):
        canonical(value)


def test_depth_limit():
    nested: list = []
    for _ in range(MAX_DEPTH):
        nested = [nested]
    canonical(nested)
    with pytest.raises(NotPlainData, match="nested deeper"):
        canonical([nested])


def test_cycle_is_rejected():
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(NotPlainData):
        canonical(cycle)


def test_size_limit_stops_early():
    assert canonical("a" * 8, max_chars=10) == "'aaaaaaaa'"
    with pytest.raises(NotPlainData, match="longer than 10"):
        canonical("a" * 9, max_chars=10)
    # A value whose repr would be astronomically long is refused after a few thousand items.
    shared = [0] * 100
    huge = [shared] * 100
    for _ in range(20):
        huge = [huge] * 100
    with pytest.raises(NotPlainData, match="longer than 10000"):
        canonical(huge, max_chars=10_000)


def test_big_ints():
    canonical(10 ** (4300 - 1))
    with pytest.raises(NotPlainData, match="digits"):
        canonical(10**4300)
    with pytest.raises(NotPlainData, match="digits"):
        canonical(10**100_000)


@pytest.mark.parametrize(
    "text",
    ["(1)", "{'b': 1, 'a': 2}", "{3, 1}", "[1,2]", "1.", "0x10", "'a' 'b'", '"x"', "1e3", "(1, )", "-0", "+1"],
)
def test_non_canonical_texts(text):
    parse_value(text)  # a literal ...
    assert not is_canonical(text)  # ... but not in its canonical spelling


@pytest.mark.parametrize("text", ["", "x", "1) + (2", "print(1)", None, 1, "[" * 300])
def test_is_canonical_rejects_garbage(text):
    assert not is_canonical(text)
