"""The pretraining program generator: the template programs and the ordinary-style ones (one
parameter, one or two operations, the way people write small functions), and their inputs."""

import ast
import random
import re

import pytest

from azr.base import ordinary
from azr.base.programs import ORDINARY, TEMPLATE, Program, draw_input, generate
from azr.tasks.programs import check_program, leaks_program


def _programs(seed: int, count: int) -> list[Program]:
    rng = random.Random(seed)
    return [generate(rng) for _ in range(count)]


@pytest.fixture(scope="module")
def programs() -> list[Program]:
    return _programs(11, 2000)


@pytest.fixture(scope="module")
def ordinary_programs(programs) -> list[Program]:
    return [p for p in programs if p.style == ORDINARY]


def test_programs_are_reproducible_from_the_seed():
    a, b = _programs(5, 300), _programs(5, 300)
    assert [(p.source, p.message, p.params, p.style) for p in a] == [
        (p.source, p.message, p.params, p.style) for p in b
    ]
    assert [p.source for p in _programs(6, 300)] != [p.source for p in a]
    rng_a, rng_b = random.Random(1), random.Random(1)
    for program in a[:100]:
        for kind in program.params:
            assert draw_input(kind, rng_a, program.style) == draw_input(kind, rng_b, program.style)


def test_a_good_share_is_ordinary_style(programs, ordinary_programs):
    share = len(ordinary_programs) / len(programs)
    assert 0.38 < share < 0.52
    assert {p.style for p in programs} == {ORDINARY, TEMPLATE}
    assert all(len(p.params) == 1 for p in ordinary_programs)
    one_liners = [p for p in ordinary_programs if p.source.split("\n")[1].startswith("    return ")]
    assert len(one_liners) > 0.5 * len(ordinary_programs)
    assert all(len(p.source.split("\n")) == 2 for p in one_liners)


def test_ordinary_programs_vary_their_names_and_shapes(ordinary_programs):
    names = {p.source[len("def f(") : p.source.index(")")] for p in ordinary_programs}
    for kind, pool in ordinary.PARAM_NAMES.items():
        assert len(names & set(pool)) >= 3, kind
    assert {p.params[0] for p in ordinary_programs} == {ordinary.INT, ordinary.STR, ordinary.LIST, ordinary.WORDS}
    sources = "\n".join(p.source for p in ordinary_programs)
    for construct in (
        "if ", "else", " for ", "while ", "[::-1]", ".upper()", ".split(", ".join(", "sorted(", "len(", "sum(",
        "max(", "abs(", "any(", "all(", "range(", " ** ", " // ", " % ", "f'", " in ", ".startswith(", "== ",
    ):  # fmt: skip
        assert construct in sources, construct
    locals_ = {m for p in ordinary_programs for m in re.findall(r"^    (\w+) = ", p.source, re.MULTILINE)}
    assert len(locals_) >= 6
    composed = [p for p in ordinary_programs if "; " in p.message]
    assert len(composed) > 0.2 * len(ordinary_programs)


def test_every_program_passes_the_filter_and_compiles(programs):
    for program in programs:
        assert check_program(program.source).ok, program.source
        compile(program.source, "<program>", "exec")
        tree = ast.parse(program.source)
        assert [node.name for node in tree.body if isinstance(node, ast.FunctionDef)][-1] == "f"


def test_messages_describe_without_repeating_the_code(programs):
    for program in programs:
        assert program.message
        assert program.source not in program.message
        assert not leaks_program(program.message, program.source, 6), (program.source, program.message)
        returned = program.source.rsplit("return ", 1)[1]
        if re.search(r"\W", returned):  # an expression, not a bare name
            assert returned not in program.message, (program.source, program.message)


def _plain(value) -> bool:
    if isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return False


def test_ordinary_programs_run_on_their_inputs(ordinary_programs):
    """Our own generated code, run in-process: it neither loops nor blows up, by construction."""
    rng = random.Random(0)
    runs = raised = 0
    outputs = []
    for program in ordinary_programs[:300]:
        namespace: dict = {}
        exec(program.source, namespace)
        for _ in range(4):
            args = [ast.literal_eval(draw_input(kind, rng, program.style)) for kind in program.params]
            runs += 1
            try:
                output = namespace["f"](*args)
            except Exception:
                raised += 1
                continue
            assert _plain(output), (program.source, args, output)
            outputs.append(output)
    assert raised < 0.1 * runs
    assert any(o is True for o in outputs) and any(o is False for o in outputs)
    assert {type(o) for o in outputs} >= {bool, int, str, list}


def test_inputs_are_small_and_wider_for_ordinary_programs():
    rng = random.Random(3)
    ints = [int(draw_input("int", rng)) for _ in range(2000)]
    assert min(ints) >= -100 and max(ints) <= 100 and max(ints) > 30
    assert sum(-10 <= i <= 30 for i in ints) > 0.8 * len(ints)
    texts = [ast.literal_eval(draw_input("str", rng)) for _ in range(2000)]
    assert max(len(t) for t in texts) <= 12 and min(len(t) for t in texts) >= 1
    assert "hello" in texts or "world" in texts
    assert any(" " in t for t in texts) and any(t.isdigit() for t in texts) and any(t[0].isupper() for t in texts)
    assert set("".join(texts)) > set("abcde")
    lists = [ast.literal_eval(draw_input("list", rng)) for _ in range(2000)]
    assert all(len(v) <= 7 and all(-5 <= e <= 20 for e in v) for v in lists)
    assert any(not v for v in lists)
    words = [ast.literal_eval(draw_input(ordinary.WORDS, rng)) for _ in range(200)]
    assert all(words) and all(isinstance(w, str) for v in words for w in v)


def test_template_programs_keep_their_inputs():
    rng = random.Random(4)
    assert all(-5 <= int(draw_input("int", rng, TEMPLATE)) <= 20 for _ in range(500))
    assert all(set(ast.literal_eval(draw_input("str", rng, TEMPLATE))) <= set("abcde") for _ in range(500))
