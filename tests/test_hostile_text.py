"""Every parser of model-written text is total and linear (issue 11).

For any string, each entry point that reads model text (or a row of a task file) in our own
process returns a value or its typed rejection (NotPlainData, False, a FormatError, a ProgramCheck
rejection, a key) and never raises; it takes time about linear in the string's length, so each
string of a hostile corpus of about 1 MB is judged within two seconds; and the CLI answers every line
made of such strings with one line, never a traceback.
"""

import ast
import contextlib
import json
import re
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azr.cli import main
from azr.eval.benchmarks import CodeProblem
from azr.eval.benchmarks.code import program_of
from azr.executor import literals, plain
from azr.executor.literals import (
    MAX_COLLISIONS,
    MAX_LITERAL_CHARS,
    NotPlainData,
    canonical,
    is_canonical,
    parse_arguments,
    parse_value,
)
from azr.prompts import get_template
from azr.prompts.paper import _blocks
from azr.tasks import Answer, FormatError, InductionProposal, Rejection, TaskType, TripletProposal
from azr.tasks.programs import (
    MAX_NORMALIZED_CHARS,
    FilterConfig,
    ProgramCheck,
    check_program,
    dedup_key,
    leaks_program,
    normalized,
)
from azr.tasks.seeds import read_rows

MB = 1_000_000
P = 2**61 - 1
"""Python hashes an int modulo P: the multiples of P all hash to 0."""

PROGRAM = "def f(x):\n    return x"
PROBLEM = CodeProblem("HumanEval/0", "def f(x):\n", "", "f")
TEMPLATES = (get_template("azr"), get_template("compact"), get_template("compact", think=True))
ALL_TYPES = tuple(TaskType)


def fill(unit: str, size: int = MB) -> str:
    return unit * (size // len(unit))


def judged(call, *args, seconds: float = 1.0):
    """call(*args), or the NotPlainData it raised; fails when it takes `seconds` or more three times
    in a row (once or twice may be other processes' fault: the machine is shared)."""
    for _ in range(3):
        started = time.perf_counter()
        try:
            result = call(*args)
        except NotPlainData as error:
            result = error
        elapsed = time.perf_counter() - started
        if elapsed < seconds:
            return result
    raise AssertionError(f"{getattr(call, '__name__', call)} took {elapsed:.2f} s (limit {seconds} s)")


def stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def near_stack_end(call, room: int):
    """call() with only about `room` frames left before Python's recursion limit."""

    def descend(levels: int):
        return descend(levels - 1) if levels > 0 else call()

    return descend(sys.getrecursionlimit() - stack_depth() - room)


# -- literals: what used to raise --------------------------------------------------------------

RAISED = [
    "frozenset([[1]])",  # TypeError: unhashable, in a frozenset
    "frozenset({frozenset(([],))})",
    "{1, frozenset([{}])}",
    "{frozenset([[1]]): 1}",
    "1" + "0" * 400 + "+1j",  # OverflowError: int too large to convert to float
    "-1" + "0" * 400 + "-2j",
    "0x" + "f" * 300 + "+1j",
]


@pytest.mark.parametrize("text", RAISED)
def test_literals_reject_what_used_to_raise(text):
    with pytest.raises(NotPlainData):
        parse_value(text)
    with pytest.raises(NotPlainData):
        parse_arguments(text)
    with pytest.raises(NotPlainData):
        parse_arguments(f"1, k={text}")
    assert is_canonical(text) is False


@pytest.mark.parametrize(
    "spell",
    [
        lambda keys: "{" + ", ".join(keys) + "}",
        lambda keys: "{" + ", ".join(f"{key}: 0" for key in keys) + "}",
        lambda keys: "frozenset([" + ", ".join(keys) + "])",
    ],
    ids=["set", "dict", "frozenset"],
)
def test_keys_crafted_to_collide_are_refused_in_linear_time(spell):
    """n distinct keys with one hash cost a set or dict n**2 comparisons: 40,000 took seconds."""
    assert "share one hash" in str(judged(parse_value, spell([str(i * P) for i in range(40_000)])))
    assert parse_value(spell([str(i * P) for i in range(MAX_COLLISIONS)]))
    assert parse_value(spell(["0"] * 10_000)) == parse_value(spell(["0"]))  # equal keys do not collide


def test_nested_sets_are_read_in_one_walk():
    """Each set's items were read twice, once for the value and once for the spelling, so 99
    nested frozensets around 100,000 items walked them 99 times."""
    text = "(" + fill("1,", 200_000) + ")"
    for _ in range(99):
        text = "frozenset({" + text + "})"
    parsed = judged(parse_arguments, text)
    assert parsed.canonical() == "frozenset({" * 99 + "(" + ", ".join(["1"] * 100_000) + ")" + "})" * 99
    assert parse_arguments(parsed.canonical()).canonical() == parsed.canonical()


@pytest.mark.parametrize(("opening", "closing"), [("f'", "'"), ('rF"', '"'), ("f'''", "'''")])
def test_fstrings_are_refused_before_parsing(opening, closing):
    """CPython 3.11 parses an f-string in time quadratic in its fields: 1 MB took minutes."""
    text = "[1, " + opening + fill("{x}") + closing + "]"
    assert "f-string" in str(judged(parse_value, text))
    assert "f-string" in str(judged(parse_arguments, text))
    assert parse_value("['f', \"of'\", 'if\"', rb'f' b'f'] # f''") == ["f", "of'", 'if"', b"ff"]


def test_length_caps_come_before_parsing():
    huge = "1" + " " * MAX_LITERAL_CHARS
    assert "longer than" in str(judged(parse_value, huge, seconds=0.1))
    assert "longer than" in str(judged(parse_arguments, huge, seconds=0.1))
    with pytest.raises(NotPlainData, match="longer than 5"):
        parse_value("[1, 2]", max_chars=5)
    assert parse_value("[1, 2]", max_chars=6) == [1, 2]
    assert parse_value("1" + " " * 20, max_chars=None) == 1


def test_an_unforeseen_exception_is_a_rejection(monkeypatch):
    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(literals, "_read", bug)
    with pytest.raises(NotPlainData, match="ZeroDivisionError"):
        parse_value("1")
    with pytest.raises(NotPlainData, match="ZeroDivisionError"):
        parse_arguments("1")
    assert is_canonical("1") is False
    monkeypatch.setattr(plain._Writer, "write", bug)
    with pytest.raises(NotPlainData, match="ZeroDivisionError"):
        canonical([1])


@pytest.mark.parametrize("room", range(10, 400, 13))
def test_literals_at_the_end_of_the_stack(room):
    """Walking a literal 100 levels deep needs a few hundred frames: where the caller has fewer
    left, the text or value is rejected, and RecursionError does not escape."""
    deep = "[" * 100 + "]" * 100
    value = parse_value(deep)
    for call in (lambda: parse_value(deep), lambda: parse_arguments(deep), lambda: canonical(value)):
        with contextlib.suppress(NotPlainData):
            near_stack_end(call, room)
    assert near_stack_end(lambda: is_canonical(deep), room) in (True, False)


# -- programs ------------------------------------------------------------------------------------

LONG_SUM = "def f(x):\n    return " + "+".join(["x"] * 1000)


def test_a_long_expression_normalises():
    """ast.dump recursed a frame or more a level: a 1000-term sum raised RecursionError when the
    task was stored."""
    assert check_program(LONG_SUM).ok
    assert normalized(LONG_SUM).startswith("Module(")
    assert normalized(LONG_SUM) == normalized(LONG_SUM.replace("+", " + ") + "  # sum")
    assert normalized(LONG_SUM) != normalized(LONG_SUM.replace("x+x", "x-x", 1))
    assert re.fullmatch("[0-9a-f]{64}", dedup_key(LONG_SUM, ["1"]))


@pytest.mark.parametrize(
    "source",
    [
        PROGRAM,
        "import re\nfrom collections import deque as d\n\nclass A:\n    x: int = 1\n\ndef f(a, /, *b, c=None, **k):\n"
        "    '''doc'''\n    global g\n    return [i async for i in a] if b else {1: u'é', **k}\n",
        "def f(x):\n    match x:\n        case {'a': [1, *r]} | A(b=2):\n            return ...\n"
        "    return b'\\x00', -1j",
        Path(__file__).read_text(),
        (Path(__file__).parents[1] / "azr" / "tasks" / "programs.py").read_text(),
    ],
)
@pytest.mark.skipif(sys.version_info >= (3, 13), reason="ast.dump leaves out empty fields from Python 3.13")
def test_normal_forms_are_ast_dump(source):
    """Byte for byte as before, so stored tasks keep their dedup keys."""
    assert normalized(source) == ast.dump(ast.parse(source))


@pytest.mark.parametrize(
    "source",
    [
        "(" * 1000 + ")" * 1000,  # too many nested parentheses
        "def f(x):\n    return " + "-" * 100_000 + "x",  # the parser's own stack
        "def f(x):\n    return " + "x." * 50_000 + "y",  # RecursionError building the tree
        "def f(:\n",
        "def f():\n    return '\ud800'",
        "def f():\x00\n    return 1",
        fill("x+", MAX_NORMALIZED_CHARS + 2) + "x",
    ],
)
def test_unparsed_sources_have_keys(source):
    assert normalized(source) == "unparsed:" + source
    assert re.fullmatch("[0-9a-f]{64}", dedup_key(source, ["1"]))
    check = check_program(source)
    assert isinstance(check, ProgramCheck) and check.rejection is not None


def test_normal_forms_near_the_end_of_the_stack():
    """Near the end of the stack ast.parse itself may raise RecursionError (Python 3.11 counts C
    frames there): the source is then its own normal form, and the check a rejection."""
    rooms = range(10, 1000, 41)
    forms = {near_stack_end(lambda: normalized(LONG_SUM), room) for room in rooms}
    assert normalized(LONG_SUM) in forms <= {normalized(LONG_SUM), "unparsed:" + LONG_SUM}
    checks = [near_stack_end(lambda: check_program(LONG_SUM), room) for room in rooms]
    assert all(check.ok or check.rejection is Rejection.SYNTAX for check in checks) and checks[-1].ok


def test_an_int_too_long_to_write_in_decimal_normalises():
    source = "def f():\n    return 0x" + "f" * 5000  # a valid task whose key raised ValueError: repr refuses it
    assert check_program(source).ok
    assert normalized(source) == normalized(source.replace("\n   ", "\n #\n   ")) != normalized(source + "f")


def test_program_imports_are_read_in_linear_time():
    imports = "import os.path as p; from math import (\n    pi,\n    tau)\n"
    source = fill(imports) + "def f():\n    return p"
    check = judged(check_program, source, FilterConfig(banned_modules=(), max_program_chars=10 * MB))
    assert check.ok and len(check.imports) == 2 * (MB // len(imports))
    assert check.imports[:2] == ("import os.path as p", "from math import (\n    pi,\n    tau)")
    crlf = "import re;  import sys\r\nfrom é import (a,\r b)\rdef f():\n    pass"
    tree = ast.parse(crlf)
    assert check_program(crlf, FilterConfig(banned_modules=())).imports == tuple(
        ast.get_source_segment(crlf, node) for node in tree.body[:3]
    )


def test_a_check_that_fails_unexpectedly_is_a_rejection(monkeypatch):
    import azr.tasks.programs

    def bug(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(azr.tasks.programs, "_banned_use", bug)
    check = check_program(PROGRAM)
    assert check.rejection is Rejection.SYNTAX and "KeyError" in check.detail


# -- templates, benchmarks and seed files ------------------------------------------------------------

OLD_BLOCK = re.compile(r"```[ \t]*(python|input|output|message)[ \t]*\n(.*?)\n?[ \t]*```", re.DOTALL)
FENCE_PIECES = ["```", "`", "\n", " ", "\t", "python", "input", "output", "message", "x", "pyth", "\r"]


def old_blocks(answer: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for label, body in OLD_BLOCK.findall(answer):
        found.setdefault(label, []).append(body.strip("\n"))
    return found


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="`\n \tpython inputx", max_size=60),
        st.lists(st.sampled_from(FENCE_PIECES), max_size=30).map("".join),
    )
)
def test_blocks_are_found_as_the_regex_found_them(answer):
    assert _blocks(answer) == old_blocks(answer)


def old_defines(text: str, name: str) -> bool:
    return re.search(rf"^\s*def {re.escape(name)}\s*\(", text, re.M) is not None


DEF_PIECES = ["def", "def f", " ", "f", "g", "(", "\n", "\t", "\r", "\x0b", "\x0c", "\u2028", "\x85", "\xa0", "x"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(DEF_PIECES), max_size=20).map("".join))
def test_program_of_decides_as_the_regex_did(completion):
    defines = old_defines(completion, "f")
    assert program_of(PROBLEM, completion) == (completion if defines else PROBLEM.prompt + completion)


def test_whitespace_in_an_answer_is_linear():
    """The fence regex rescanned each run of blanks from every position in it: 120 KB took 8 s."""
    answer = "</think><answer>```output\n" + fill(" ") + "1\n```</answer>"
    for template_answer in (TEMPLATES[0].parse_answer, TEMPLATES[0].parse_proposal):
        assert isinstance(judged(template_answer, TaskType.DEDUCTION, answer), (Answer, FormatError))
    assert judged(TEMPLATES[0].parse_answer, TaskType.DEDUCTION, answer).text.strip() == "1"


def test_newlines_in_a_completion_are_linear():
    """`^\\s*def f` rescanned each run of newlines from every line start in it: 80 KB took 6 s."""
    assert judged(program_of, PROBLEM, fill("\n")) == PROBLEM.prompt + fill("\n")
    assert judged(program_of, PROBLEM, fill("\n") + "def f (x): pass") == fill("\n") + "def f (x): pass"


def test_seed_imports_are_matched_by_line():
    row = {"snippet": "import random\n\ndef f(x):\n    import os\n    return x", "input": "1"}
    row["imports"] = ["import re", "import random", "  import os  ", "import re", ""]
    (proposal,) = read_rows([json.dumps(row)], TaskType.DEDUCTION)
    assert proposal.program == "import re\n" + row["snippet"]  # once; "import re" is not in "import random"
    row = {"snippet": fill("x = 1\n"), "input": "1", "imports": [f"import m{i}" for i in range(100_000)]}
    (proposal,) = judged(lambda: list(read_rows([json.dumps(row)], TaskType.DEDUCTION)))
    assert proposal.program.startswith("import m0\nimport m1\n")


# -- fuzzing every entry point -------------------------------------------------------------------

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)
ATOMS = st.sampled_from(
    ["0", "-1", "+2", "--3", "1.5", "-0.0", "1e308", "1e999", "-1e999j", "2j", "-0j", "(1-2j)", "1+2j", "(-0-0j)",
     "1" + "0" * 400 + "+1j", "9" * 4301, "0x" + "f" * 5000, "True", "-True", "None", "...", "''", "'é🙂'",
     "'\\ud800'", "'\\x00'", "b'\\xff'", "u'x'", "f'{1}'", "'''a'''", "x", "set", "frozenset", "[]", "{}", "()",
     "set()", "frozenset()", "2**3", "not 1", "*x", "**x", "lambda: 1"]
)  # fmt: skip


def containers(children):
    items = st.lists(children, max_size=4).map(", ".join)
    return st.one_of(
        items.map("[{}]".format),
        items.map("({})".format),
        children.map("({},)".format),
        items.map("{{{}}}".format),
        st.lists(st.tuples(children, children), max_size=3).map(lambda kv: "{" + ", ".join(map(": ".join, kv)) + "}"),
        items.map("frozenset([{}])".format),
        items.map("frozenset({{{}}})".format),
        items.map("set(({}))".format),
        items.map("f({})".format),
        children.map("-{}".format),
        st.tuples(children, children).map(" + ".join),
        children.map("k={}".format),
    )


NEAR_LITERALS = st.recursive(ATOMS, containers, max_leaves=16)
ARGUMENT_LISTS = st.lists(NEAR_LITERALS, max_size=4).map(", ".join)
COMPLETION_PIECES = st.sampled_from(
    ["<think>", "</think>", "<answer>", "</answer>", "```", "```python\n", "```input\n", "```output\n",
     "```message\n", " ```\n", "\n", " ", "\t", "<I>", "<O>", "<E>", "<P>", "<M>", PROGRAM, "def f (", "\x00", "\ud800"]
)  # fmt: skip
COMPLETIONS = st.lists(st.one_of(COMPLETION_PIECES, NEAR_LITERALS, ANY_TEXT), max_size=12).map("".join)
TEXTS = st.one_of(ANY_TEXT, NEAR_LITERALS, ARGUMENT_LISTS, COMPLETIONS)


def assert_literals_total(text: str) -> None:
    try:
        value = parse_value(text)
    except NotPlainData:
        pass
    else:
        try:
            spelled = canonical(value)
        except NotPlainData:  # an int past the digit limit, written in hex
            pass
        else:
            assert canonical(parse_value(spelled)) == spelled and is_canonical(spelled)
    try:
        arguments = parse_arguments(text)
    except NotPlainData:
        pass
    else:
        again = parse_arguments(arguments.canonical())
        assert again.canonical() == arguments.canonical()
        assert [canonical(a) for a in again.args] == [canonical(a) for a in arguments.args]
    assert is_canonical(text) in (True, False)


def assert_programs_total(text: str) -> None:
    check = check_program(text)
    assert check.ok or check.rejection in (Rejection.SYNTAX, Rejection.NO_F, Rejection.BANNED)
    assert isinstance(normalized(text), str)
    assert re.fullmatch("[0-9a-f]{64}", dedup_key(text, [text]))
    assert leaks_program(text, text, 6) in (True, False)
    assert leaks_program(text, PROGRAM, 6) in (True, False)


def assert_templates_total(text: str) -> None:
    for template in TEMPLATES:
        for task_type in ALL_TYPES:
            proposal = template.parse_proposal(task_type, text, PROGRAM)
            assert isinstance(proposal, (TripletProposal, InductionProposal, FormatError))
            assert isinstance(template.parse_answer(task_type, text), (Answer, FormatError))
        assert isinstance(template.parse_code("def f(x):\n", text), (str, FormatError))
        assert isinstance(template.parse_math(text), (str, FormatError))
    assert isinstance(program_of(PROBLEM, text), str)


def assert_seed_rows_total(text: str) -> None:
    rows = [text, json.dumps(text), json.dumps({"snippet": text, "input": text, "imports": [text, text[:5]]})]
    rows.append(json.dumps({"snippet": text, "inputs": [text], "message": text, "imports": text.split()}))
    for task_type in ALL_TYPES:
        for row in read_rows(rows, task_type):
            assert isinstance(row, (TripletProposal, InductionProposal, FormatError))


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_literals_are_total(text):
    assert_literals_total(text)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_programs_are_total(text):
    assert_programs_total(text)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_templates_and_rows_are_total(text):
    assert_templates_total(text)
    assert_seed_rows_total(text)


# -- the hostile corpus, about 1 MB each ---------------------------------------------------------

CORPUS = {
    "spaces": fill(" "),
    "newlines": fill("\n"),
    "blank lines": fill(" \t\r\n"),
    "fence then blanks": "```python\n" + fill(" \t"),
    "fence then newlines": "```output\n" + fill("\n"),
    "answer of blanks": "</think><answer>```input\n" + fill(" \t") + "\n```</answer>",
    "fences": fill("```"),
    "opening fences": fill("```python\n"),
    "fences and blanks": fill("```  python  x\n "),
    "answer tags": fill("<answer>"),
    "think and answer": fill("</think><answer>"),
    "markers": fill("<E><I><O><P><M>"),
    "brackets": fill("(["),
    "plus chain": "1" + fill("+1"),
    "signs": fill("-") + "1",
    "calls": "f" + fill("()"),
    "long ints": fill("9" * 5000 + ","),
    "hex int": "0x" + fill("f"),
    "huge complex": fill("1" + "0" * 400 + "+1j,"),
    "colliding ints": "{" + ", ".join(str(i * P) for i in range(MB // 24)) + "}",
    "imports": fill("import os\n"),
    "long sum program": "def f(x):\n    return " + fill("x+") + "x",
    "nested defs": "".join(f"{' ' * i}def f():\n" for i in range(1400)),
    "def then newlines": "def f" + fill("\n"),
    "quotes": fill("\"'''"),
    "backslashes": fill("\\"),
    "null bytes": fill("\x00"),
    "surrogates": fill("\ud800"),
    "unicode": fill("é🙂"),
    "f-string": "f'" + fill("{x}") + "'",
    # ast.parse alone takes 1 to 3 µs a character of dense literals and calls here: a fifth of the size
    "nested lists": fill("[" * 99 + "]" * 99 + ",", MB // 5),
    "nested frozensets": fill("frozenset({" * 60 + "1" + "})" * 60 + ",", MB // 5),
    "int list": "[" + fill("0,", MB // 5) + "]",
    "keywords": fill("k=1, ", MB // 5),
    "dict": "{" + fill("1: [2], ", MB // 5) + "}",
}


def entry_points(text: str):
    yield parse_arguments, (text,)
    yield parse_value, (text,)
    yield is_canonical, (text,)
    yield check_program, (text,)
    yield normalized, (text,)
    yield dedup_key, (text, [text])
    yield leaks_program, (text, text, 6)
    for template in TEMPLATES:
        for task_type in ALL_TYPES:
            yield template.parse_proposal, (task_type, text, PROGRAM)
            yield template.parse_answer, (task_type, text)
        yield template.parse_code, ("def f(x):\n", text)
        yield template.parse_math, (text,)
    yield program_of, (PROBLEM, text)
    row = json.dumps({"snippet": text, "input": text, "inputs": [text], "message": text, "imports": [text]})
    for task_type in (TaskType.DEDUCTION, TaskType.INDUCTION):
        yield lambda task_type=task_type: list(read_rows([row, text], task_type)), ()


CORPUS_SECONDS = 2.0
"""Two seconds, not one: CPython's own parser takes 0.46-0.57 s over the 200 KB of `nested lists`
on a 2-core AMD EPYC VM, and is_canonical (parse, read, write back) 0.97 s under pytest there. Work
that grew with the square of these lengths would take minutes."""


@pytest.mark.parametrize("name", list(CORPUS))
def test_the_hostile_corpus_is_judged_within_two_seconds(name):
    text = CORPUS[name]
    for call, args in entry_points(text):
        judged(call, *args, seconds=CORPUS_SECONDS)
    if "import" in name or "program" in name or "def" in name:  # past the filter's length cap, too
        judged(check_program, text, FilterConfig(max_program_chars=10 * MB), seconds=CORPUS_SECONDS)


# -- the CLI, in process ---------------------------------------------------------------------------

SANDBOX = ["--timeout", "5", "--workers", "2"]
HOSTILE = [
    CORPUS["answer of blanks"],
    CORPUS["fences and blanks"],
    CORPUS["newlines"],
    CORPUS["nested lists"],
    CORPUS["plus chain"],
    "frozenset([[1]])",
    "1" + "0" * 400 + "+1j",
    "{" + ", ".join(str(i * P) for i in range(300)) + "}",
    "\ud800\x00",
]


def run_cli(capsys, tmp_path, args: list[str], rows: list) -> tuple[int, list[dict], str]:
    path = tmp_path / "in.jsonl"
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows), "utf-8")
    code = main([*args, str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err[-3000:]
    return code, [json.loads(line) for line in out.splitlines()], err


@pytest.mark.parametrize("template", [None, "azr", "compact"])
def test_verify_answers_every_hostile_line(capsys, tmp_path, template):
    triplet = {"program": "def f(x):\n    return x", "input": "1", "output": "1"}
    rows = [{"id": 0, "task_type": "deduction", **triplet, "answer": "1" if template is None else "1<E>"}]
    for i, answer in enumerate(HOSTILE, 1):
        task_type = ALL_TYPES[i % 3]
        task = {"pairs": [["1", "1"]]} if task_type is TaskType.INDUCTION else triplet
        rows.append({"id": i, "task_type": task_type.value, **task, "answer": answer})
    for field in ("program", "input", "output"):  # the task's own fields
        rows.append({"id": field, "task_type": "abduction", **triplet, field: "frozenset([[1]])", "answer": "1"})
    rows.append({"id": "pairs", "task_type": "induction", "pairs": [["1" + "0" * 400 + "+1j", "1"]], "answer": "1"})
    rows.append({"id": "type", "task_type": [[]], "answer": "1"})
    options = [] if template is None else ["--template", template]
    code, lines, _ = run_cli(capsys, tmp_path, ["verify", *options, *SANDBOX], rows)
    assert code == 0 and [line["id"] for line in lines] == [row["id"] for row in rows]
    assert lines[0]["correct"] is (template != "azr")
    assert all(line["correct"] is False for line in lines[1:])
    assert {line["reason"] for line in lines[-4:]} == {"invalid_task"}  # all but the program, which runs


def test_tasks_validate_answers_every_hostile_row(capsys, tmp_path):
    rows = [{"snippet": PROGRAM, "input": "1"}]
    rows += [{"snippet": text, "input": "1"} for text in HOSTILE]
    rows += [{"snippet": PROGRAM, "input": text, "imports": [text]} for text in HOSTILE]
    rows += [json.dumps(text) for text in HOSTILE[:2]]
    code, lines, _ = run_cli(capsys, tmp_path, ["tasks", "validate", "--task-type", "deduction", *SANDBOX], rows)
    assert code == 0 and len(lines) == len(rows)
    assert lines[0]["valid"] is True and not any(line["valid"] for line in lines[1:])


def test_tasks_import_answers_every_hostile_row(capsys, tmp_path):
    rows = [{"snippet": LONG_SUM, "inputs": [str(i) for i in range(10)], "message": "sums"}]
    rows += [{"snippet": PROGRAM, "inputs": [text, "1"], "message": text} for text in HOSTILE]
    args = ["tasks", "import", "--run-dir", str(tmp_path / "run"), "--task-type", "induction", *SANDBOX]
    code, _, err = run_cli(capsys, tmp_path, args, rows)
    assert code == 0 and f"1 tasks added, 0 duplicates, {len(HOSTILE)} rejected" in err


def test_exec_answers_every_hostile_input(capsys, tmp_path):
    rows = [{"id": i, "program": "def f(*a, **k):\n    return 1", "input": text} for i, text in enumerate(HOSTILE)]
    rows += [{"id": "program", "program": LONG_SUM, "input": "1"}, {"id": "ok", "program": PROGRAM, "input": "[2]"}]
    code, lines, _ = run_cli(capsys, tmp_path, ["exec", *SANDBOX], rows)
    assert code == 0 and [line["id"] for line in lines] == [row["id"] for row in rows]
    assert {line["status"] for line in lines[: len(HOSTILE)]} == {"invalid_input"}
    assert lines[-1]["status"] == "ok" and lines[-1]["output"] == "[2]"


def test_eval_scores_every_hostile_completion(capsys, tmp_path):
    texts = [CORPUS["def then newlines"], fill("\n", 80_000) + "    return 1\n", *HOSTILE[:4]]
    rows = [{"task_id": "HumanEval/0", "completion": text} for text in texts]
    out = tmp_path / "result.json"
    args = ["eval", "--bench", "humaneval", "--limit", "1", "--out", str(out), *SANDBOX, "--completions"]
    code, _, _ = run_cli(capsys, tmp_path, args, rows)
    assert code == 0
    (task,) = json.loads(out.read_text())["benchmarks"]["humaneval"]["tasks"]
    assert task["correct"] == [False] * len(texts)


@pytest.mark.parametrize("args", [["exec"], ["verify"], ["tasks", "validate", "--task-type", "deduction"]])
def test_a_file_that_is_not_utf8_is_one_line(capsys, tmp_path, args):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": 1, "program": "def f(x):\\n    return x", "input": "1"}\n{"id": "\xff"}\n')
    assert main([*args, *SANDBOX, str(path)]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
