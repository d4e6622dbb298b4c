"""Random small Python programs for pretraining the embedded base model: seeded, typed, runnable.

A program is built statement by statement over a typed environment: each statement template
reads variables of known types (int, str, list of ints) and defines a new one, so every program
type-checks by construction; the last variable (or the last two, as a tuple) is returned. Templates
cover arithmetic, comparisons, string methods, slicing, comprehensions, loops, conditionals, a
dict used as a set, and small helper functions defined before `f`. Inputs are drawn to exercise them.

A share of programs (ORDINARY_SHARE) is written the way people write small functions instead: one
parameter, one or two operations in a `return`, an `if`, a short loop (`ordinary.py`). Their inputs
are drawn wider (words, capitals, digits, ints up to 100). Template programs, given their style,
keep their own inputs, strings of the letters their constants use; the wider ones suit them too.

Nothing here decides what a program returns: outputs are computed by running the programs through
the sandbox (`build.py`), which also drops any program that raises, loops or returns too much.
Each template carries a short phrase, and a program's phrases make its induction message.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from azr.base import ordinary

INT, STR, LIST = "int", "str", "list"
LETTERS = "abcde"
TEMPLATE, ORDINARY = "template", "ordinary"
ORDINARY_SHARE = 0.45
"""The share of ordinary-style programs: the model is later tested on that style."""


@dataclass(frozen=True)
class Program:
    source: str
    """Python source defining `f` (and perhaps a helper before it)."""
    params: tuple[str, ...]
    """The parameters' types, in order."""
    message: str
    """What it does, in the templates' words: an induction message that is not the code."""
    style: str = TEMPLATE
    """TEMPLATE or ORDINARY: which generator made it, and so which inputs suit it (`draw_input`)."""


@dataclass(frozen=True)
class _Template:
    needs: tuple[str, ...]
    gives: str
    code: str
    """`{out}` is the new variable, `{a}`, `{b}` the inputs, `{k}`, `{m}` small ints, `{c}`, `{d}`
    letters, `{h}` the helper; several lines for a block."""
    phrase: str


def _t(needs: str, gives: str, code: str, phrase: str) -> _Template:
    return _Template(tuple(needs.split()) if needs else (), gives, code, phrase)


TEMPLATES = [
    # int -> int
    _t("int", INT, "{out} = {a} + {k}", "add {k}"),
    _t("int", INT, "{out} = {a} - {k}", "subtract {k}"),
    _t("int", INT, "{out} = {a} * {k}", "multiply by {k}"),
    _t("int", INT, "{out} = {a} // {k}", "floor-divide by {k}"),
    _t("int", INT, "{out} = {a} % {k}", "take the remainder by {k}"),
    _t("int", INT, "{out} = abs({a})", "take the absolute value"),
    _t("int", INT, "{out} = {a} * {a}", "square it"),
    _t("int", INT, "{out} = max({a}, {k})", "clamp from below at {k}"),
    _t("int", INT, "{out} = min({a}, {k})", "clamp from above at {k}"),
    _t("int", INT, "{out} = {a} if {a} % 2 == 0 else {a} * 3 + 1", "keep even numbers and map odd ones to 3n + 1"),
    _t("int", INT, "{out} = sum(range({a} % 7))", "sum the numbers below it mod 7"),
    _t("int int", INT, "{out} = {a} + {b}", "add the two numbers"),
    _t("int int", INT, "{out} = {a} * {b} - {k}", "multiply the numbers and subtract {k}"),
    _t("int int", INT, "{out} = max({a}, {b}) - min({a}, {b})", "take the distance between the numbers"),
    _t("int int", INT, "if {a} > {b}:\n    {out} = {a} - {b}\nelse:\n    {out} = {b} * {k}", "compare the numbers"),
    # str -> int
    _t("str", INT, "{out} = len({a})", "count the characters"),
    _t("str", INT, "{out} = {a}.count('{c}')", "count the letter {c}"),
    _t("str", INT, "{out} = {a}.find('{c}')", "find where {c} first appears"),
    _t("str", INT, "{out} = sum(1 for ch in {a} if ch in 'ae')", "count the vowels a and e"),
    _t("str", INT, "{out} = len(set({a}))", "count the distinct letters"),
    # list -> int
    _t("list", INT, "{out} = len({a})", "count the items"),
    _t("list", INT, "{out} = sum({a})", "sum the list"),
    _t("list", INT, "{out} = max({a}, default={k})", "take the largest, or {k} if empty"),
    _t("list", INT, "{out} = min({a}, default={k})", "take the smallest, or {k} if empty"),
    _t("list", INT, "{out} = {a}.count({k})", "count how often {k} appears"),
    _t("list", INT, "{out} = sum(e * e for e in {a})", "sum the squares"),
    _t("list", INT, "{out} = {a}[0] if {a} else {k}", "take the first item, or {k}"),
    _t("list", INT, "{out} = {a}[-1] if {a} else {k}", "take the last item, or {k}"),
    _t("list", INT, "{out} = sum(1 for e in {a} if e > {k})", "count the items above {k}"),
    _t("list", INT, "{out} = 0\nfor e in {a}:\n    if e % 2 == 0:\n        {out} += e\n    else:\n        {out} -= 1",
       "add the even items and subtract one for each odd one"),
    _t("list int", INT, "{out} = {a}[{b} % len({a})] if {a} else {b}", "pick the item at the number's position"),
    # str -> str
    _t("str", STR, "{out} = {a}[::-1]", "reverse the string"),
    _t("str", STR, "{out} = {a}.upper()", "upper-case it"),
    _t("str", STR, "{out} = {a}[1:]", "drop the first character"),
    _t("str", STR, "{out} = {a}[:{k}]", "keep the first {k} characters"),
    _t("str", STR, "{out} = {a} + {a}", "double the string"),
    _t("str", STR, "{out} = {a}.replace('{c}', '{d}')", "replace {c} by {d}"),
    _t("str", STR, "{out} = ''.join(sorted({a}))", "sort the letters"),
    _t("str", STR, "{out} = {a}[::2]", "keep every other character"),
    _t("str", STR, "{out} = ''.join(ch for ch in {a} if ch != '{c}')", "remove the letter {c}"),
    _t("str", STR, "{out} = {a}.strip('{c}')", "strip {c} from both ends"),
    _t("str", STR, "{out} = {a}.swapcase()", "swap the case"),
    _t("str", STR,
       "{out} = ''\nfor ch in {a}:\n    if ch in 'abc':\n        {out} += ch.upper()\n"
       "    else:\n        {out} = ch + {out}",
       "upper-case a, b and c and move the other letters to the front"),
    _t("str", STR, "{out} = '{c}'.join({a}.split('{d}'))", "replace {d} by {c}"),
    # int/list -> str
    _t("int", STR, "{out} = str({a})", "write the number as text"),
    _t("int", STR, "{out} = '{c}' * ({a} % 5)", "repeat {c} as many times as the number mod 5"),
    _t("str int", STR, "{out} = {a} * ({b} % 3)", "repeat the string the number mod 3 times"),
    _t("str int", STR, "{out} = {a}[{b} % (len({a}) + 1):]", "cut the string at the number"),
    _t("list", STR, "{out} = '-'.join(str(e) for e in {a})", "join the items with dashes"),
    # list -> list
    _t("list", LIST, "{out} = sorted({a})", "sort the list"),
    _t("list", LIST, "{out} = {a}[::-1]", "reverse the list"),
    _t("list", LIST, "{out} = [e * {k} for e in {a}]", "multiply each item by {k}"),
    _t("list", LIST, "{out} = [e for e in {a} if e % 2 == 0]", "keep the even items"),
    _t("list", LIST, "{out} = [e + {k} for e in {a}]", "add {k} to each item"),
    _t("list", LIST, "{out} = {a}[1:]", "drop the first item"),
    _t("list", LIST, "{out} = {a} + [{k}]", "append {k}"),
    _t("list", LIST, "{out} = sorted({a}, reverse=True)", "sort the list in descending order"),
    _t("list", LIST, "{out} = [abs(e) for e in {a}]", "take absolute values"),
    _t("list", LIST, "{out} = list(dict.fromkeys({a}))", "drop repeated items"),
    _t("list", LIST, "{out} = [{a}[i] + {a}[i - 1] for i in range(1, len({a}))]", "add neighbours"),
    _t("list", LIST, "{out} = [e for e in {a} if e > {k}]", "keep the items above {k}"),
    _t("list", LIST, "{out} = []\nfor e in {a}:\n    if e not in {out}:\n        {out}.append(e * 2)",
       "double each new item"),
    _t("list int", LIST, "{out} = {a}[:{b} % 4]", "keep the first items, as many as the number mod 4"),
    _t("list int", LIST, "{out} = [e * {b} for e in {a}]", "scale the items by the number"),
    # str/int -> list
    _t("str", LIST, "{out} = [ord(ch) % 10 for ch in {a}]", "map each letter to its code mod 10"),
    _t("str", LIST, "{out} = [len(w) for w in {a}.split('{c}')]", "measure the pieces between {c}s"),
    _t("int", LIST, "{out} = list(range({a} % 6))", "count up to the number mod 6"),
    _t("int", LIST, "{out} = [{a}, {a} * 2, {a} * 3]", "list the first three multiples"),
]  # fmt: skip

# A helper defined before f and used once in a statement: programs are not one function only.
HELPERS = [
    ("def helper(x):\n    return x * {k} + {m}", INT, INT, "scale by {k} and add {m}"),
    ("def helper(x):\n    return x % {k} == 0", INT, "bool", "test divisibility by {k}"),
    ("def helper(s):\n    return s[::-1] + '{c}'", STR, STR, "reverse and append {c}"),
]
HELPER_USES = {
    (INT, INT): ("int", INT, "{out} = helper({a})"),
    (INT, "bool"): ("list", LIST, "{out} = [e for e in {a} if helper(e)]"),
    (STR, STR): ("str", STR, "{out} = helper({a})"),
}


def draw_input(kind: str, rng: random.Random, style: str = ORDINARY) -> str:
    """A literal of the given type, small enough for a tiny model to read: for TEMPLATE programs
    ints in -5..20 and strings of LETTERS (which their constants use); otherwise the wider inputs of
    ordinary-style programs, which also suit the templates, and the only ones for `ordinary.WORDS`."""
    if style != TEMPLATE or kind not in (INT, STR, LIST):
        return ordinary.draw(kind, rng)
    if kind == INT:
        return str(rng.randint(-5, 20))
    if kind == STR:
        return repr("".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 7))))
    return repr([rng.randint(-3, 9) for _ in range(rng.randint(0, 6))])


def generate(rng: random.Random) -> Program:
    """One random program: ordinary-style with probability ORDINARY_SHARE, else from the templates."""
    if rng.random() < ORDINARY_SHARE:
        source, params, message = ordinary.make(rng)
        return Program(source, params, message, ORDINARY)
    return _templated(rng)


def _templated(rng: random.Random) -> Program:
    """A template program: 1-2 parameters, an optional helper, 1-4 statements, a return."""
    params = tuple(rng.choice([INT, STR, LIST]) for _ in range(rng.choice([1, 1, 2])))
    names = [["x", "y"], ["s", "t"], ["nums", "items"]]
    env: list[tuple[str, str]] = []
    for kind in params:
        pool = names[[INT, STR, LIST].index(kind)]
        env.append((next(n for n in pool if n not in [e[0] for e in env]), kind))
    lines: list[str] = []
    phrases: list[str] = []
    header = ""
    fill = {"k": rng.randint(2, 5), "m": rng.randint(1, 4), "c": rng.choice(LETTERS), "d": rng.choice(LETTERS)}
    helper = None
    if rng.random() < 0.2:
        code, arg, result, phrase = rng.choice(HELPERS)
        needs, gives, use = HELPER_USES[(arg, result)]
        if any(kind == needs for _, kind in env):
            header = code.format(**fill) + "\n\n"
            helper = _Template((needs,), gives, use, phrase)
    for index in range(rng.randint(1, 4)):
        options = [t for t in TEMPLATES if _available(t, env)]
        template = helper if helper is not None and index == 0 else rng.choice(options)
        out = f"v{index}"
        chosen = _pick(template.needs, env, rng)
        values = {**fill, "out": out, "a": chosen[0], "b": chosen[1] if len(chosen) > 1 else ""}
        fill = {**fill, "k": rng.randint(2, 5), "c": rng.choice(LETTERS), "d": rng.choice(LETTERS)}
        lines += template.code.format(**values).split("\n")
        phrases.append(template.phrase.format(**values))
        env.append((out, template.gives))
    last = env[-1][0]
    pair = rng.random() < 0.25 and len(env) > len(params) + 1
    result = f"({env[-2][0]}, {last})" if pair else last
    signature = ", ".join(name for name, _ in env[: len(params)])
    body = "\n".join("    " + line for line in lines)
    source = f"{header}def f({signature}):\n{body}\n    return {result}"
    return Program(source, params, "; ".join(phrases))


def _available(template: _Template, env: list[tuple[str, str]]) -> bool:
    kinds = [kind for _, kind in env]
    return all(kinds.count(need) >= template.needs.count(need) for need in set(template.needs))


def _pick(needs: tuple[str, ...], env: list[tuple[str, str]], rng: random.Random) -> list[str]:
    """Variables for a template, the newest more often (so statements chain)."""
    chosen: list[str] = []
    for need in needs:
        candidates = [name for name, kind in env if kind == need and name not in chosen]
        weights = [2**i for i in range(len(candidates))]
        chosen.append(rng.choices(candidates, weights=weights)[0])
    return chosen
