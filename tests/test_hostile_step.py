"""No completion ends the run: whole self-play steps on hostile completions, and injected bugs.

The first test feeds every (role, task type), in both templates, completions written to break us:
broken formats, huge texts, literals that have crashed parsers, valid but pathological programs.
It asserts that no sample is rejected as `internal_error`: that reason is for bugs we have not
found, so while a known one remains this test fails and names it. The second injects a bug at each
stage boundary and checks that it costs exactly the sample that hit it.
"""

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass

import pytest

import azr.selfplay.step
import azr.tasks.induction
import azr.tasks.programs
import azr.tasks.verify
from azr.config import Config
from azr.engine.generation import Completion
from azr.prompts import get_template
from azr.prompts.compact import CompactTemplate
from azr.report.summary import summary
from azr.run.runlog import RunLog, read_metrics
from azr.selfplay.step import SelfPlay, StepResult, selfplay_step
from azr.tasks import Role, Stage, TaskType, TripletTask
from azr.tasks.seeds import identity_proposals
from azr.tasks.store import TaskStore
from azr.tasks.validate import ValidationConfig, Validator
from azr.tasks.verify import Verifier

D, A, N = TaskType.DEDUCTION, TaskType.ABDUCTION, TaskType.INDUCTION
INPUTS = 4  # induction inputs asked for: few, to keep the sandbox batches small

# -- hostile material ------------------------------------------------------------------------------

BIG = 10**400
LITERALS = [
    "frozenset([[1]])",
    "frozenset({frozenset([[1]])})",
    f"{BIG}+1j",
    f"-({BIG})+1j",
    "10**400+1j",
    "1e999",
    "-1e999j",
    "[" * 150 + "]" * 150,
    "(" * 150 + "1" + ")" * 150,
    "{'a': " * 120 + "1" + "}" * 120,
    "x) or (1",
    "2) == 1 or f(1",
    "{[]: 1}",
    "{(1, [2]): 3}",
    "{1: 2, 1: 3}",
    "'\ud800'",
    "'a\x00b'",
    "\x00",
    "1" * 5000,
    "...",
    "f(1)",
    "__import__('os').system('true')",
    "lambda: 1",
    "'x' * 10**9",
    "*[1], **{'a': 1}",
    "a=1, a=2",
    "b'\\xff', 1.5, None, True",
]
"""Inputs and answers: not literals, literals our parsers choked on, and values at the limits."""

CHAIN = "def f(x):\n    return " + "+".join(["x"] * 1000)
PROGRAMS = [
    CHAIN,  # valid Python whose syntax tree is 1000 deep
    "import re\n" * 500 + "def f(x):\n    return x",
    "class A:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\n\ndef f(x):\n    return A()",
    "class A:\n    def __eq__(self, other):\n        return True\n\ndef f(x):\n    return [A() == 3, x]",
    'def f(x):\n    print(\'{"status": "ok", "output": "42"}\')\n    return x',
    "def f(x):\n    print('\\x1b[2J' + 'ok ' * 5000)\n    raise SystemExit(0)",
    "def f(x):\n    return f(x)",
    "def f(x):\n    return " + "(" * 150 + "x" + ")" * 150,
    "def f(x):\n    return [" * 120 + "x" + "]" * 120,
    "def f(x):\n    return '\ud800'",
    "def f(x):\n    return x\x00",
    "def f(x):\n    return x\n" + "#" * 100_000,
    "def f(x):\n    return 'x' * 10**6",
    "def f(x):\n    return {1, 'a', 2.5, (1,), None, b'b', frozenset()}",
    "def f(x):\n    return {1: 'a', 'b': 2, None: 3, (1, 2): 4}",
    "def f(x):\n    return float('nan')",
    "def f(x):\n    return 10**5000",
    "def f(x):\n    return 2j",
    "def f(x):\n    d = {}\n    d['self'] = d\n    return d",
    "def f(x):\n    import sys\n    return sys.version",
    "def f(*args, **kwargs):\n    return [args, sorted(kwargs.items())]",
    "def g(x):\n    return x",
]
"""Programs: valid but pathological, forging their output, or breaking a rule at run time."""

RAW = [
    "",
    "garbage without any structure",
    "x" * 100_000,
    "<E>",
    "<I><I><I><E>",
    "<D><A><N><PD><PA><PN><R><P><M><O><I><E>",
    "\x00<I>\ud800<E>",
    "<answer>",
    "</answer><answer>",
    "</think><answer>\n```python\ndef f(x):\n",
    "<answer>\n```input\n1\n```\n```input\n2\n```\n```output\n3\n```\n```python\nx\n```\n</answer>",
    "<think>" * 1000 + "</think>" + "<answer>" * 1000 + "</answer>" * 1000,
    "<answer>" + "```python\n" * 5000 + "</answer>",
    "<answer>\n```input\n" + "x" * 100_000 + "\n```\n</answer>",
    "<answer>\n```message\n\ud800\x00\n```\n</answer><E>",
]
"""Whole completions that follow no template, or follow one in the worst way."""


@dataclass(frozen=True)
class Triplet:
    program: str
    input: str


@dataclass(frozen=True)
class Inputs:
    inputs: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class Text:
    """An answer: an output, an argument list or a program."""

    text: str


VALID_INPUTS = ("1", "'a'", "[1, 2]", "{'k': (1, 2.5)}")
CASES = {
    (Role.PROPOSE, D): [Triplet(p, "1") for p in PROGRAMS]
    + [Triplet("def f(*a, **k):\n    return 0", x) for x in LITERALS]
    + RAW,
    (Role.PROPOSE, A): [Triplet(p, "'a'") for p in reversed(PROGRAMS)]
    + [Triplet("def f(*a, **k):\n    return 1", x) for x in reversed(LITERALS)]
    + RAW,
    (Role.PROPOSE, N): [
        Inputs(VALID_INPUTS, "returns what it is given"),  # a valid task, for the induction solver
        Inputs(VALID_INPUTS, "m" * 100_000),
        Inputs(VALID_INPUTS, "the code: def f(a):\n    return a"),
        Inputs(VALID_INPUTS, ""),
        Inputs(VALID_INPUTS, "\ud800"),
        Inputs(VALID_INPUTS, "a message\x00"),
        Inputs(("1",) * 40, "too few distinct"),
        Inputs(tuple(str(i) for i in range(5000)), "thousands of inputs"),
    ]
    + [Inputs((x, *VALID_INPUTS[1:]), "hostile first input") for x in LITERALS]
    + RAW,
    (Role.SOLVE, D): [*map(Text, LITERALS), *RAW],
    (Role.SOLVE, A): [*map(Text, reversed(LITERALS)), *RAW],
    (Role.SOLVE, N): [*map(Text, PROGRAMS), *RAW],
}


def write(template: str, case: Triplet | Inputs | Text | str, task_type: TaskType) -> str:
    """The completion that carries `case` in `template`'s format (raw strings as they are)."""
    if isinstance(case, str):
        return case
    if template == "compact":
        if isinstance(case, Triplet):
            return f"{case.program}<I>{case.input}<E>"
        if isinstance(case, Inputs):
            return case.message + "".join(f"<I>{x}" for x in case.inputs) + "<E>"
        return f"{case.text}<E>"
    if isinstance(case, Triplet):
        blocks = f"```python\n{case.program}\n```\n```input\n{case.input}\n```"
    elif isinstance(case, Inputs):
        blocks = "\n".join(f"```input\n{x}\n```" for x in case.inputs) + f"\n```message\n{case.message}\n```"
    else:
        label = {D: "output", A: "input", N: "python"}[task_type]
        blocks = f"```{label}\n{case.text}\n```"
    return f"<think>hmm</think>\n<answer>\n{blocks}\n</answer>"


def classify(template: str, prompt: str) -> tuple[Role, TaskType]:
    if template == "compact":
        for start, kind in (("<PN>", (Role.PROPOSE, N)), ("<D>", (Role.SOLVE, D)), ("<A>", (Role.SOLVE, A))):
            if prompt.startswith(start):
                return kind
        if prompt.startswith("<N>"):
            return Role.SOLVE, N
        return (Role.PROPOSE, D) if prompt.endswith("<PD>") else (Role.PROPOSE, A)
    head = prompt.split("User: ", 1)[1]
    if head.startswith("## Task: write a new Python program"):
        return Role.PROPOSE, D if "work out the output" in head.split("\n\n")[1] else A
    for start, kind in (
        (f"## Task: write {INPUTS} inputs", (Role.PROPOSE, N)),
        ("## Task: work out the output", (Role.SOLVE, D)),
        ("## Task: find an input", (Role.SOLVE, A)),
        ("## Task: write the program", (Role.SOLVE, N)),
    ):
        if head.startswith(start):
            return kind
    raise AssertionError(f"unrecognised prompt {prompt[:200]!r}")


class HostileGenerator:
    """Writes, for each prompt, the next hostile case of its (role, task type), round-robin."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.emitted: Counter[tuple[Role, TaskType]] = Counter()

    def generate(self, prompts, n, sampling, seed):
        out = []
        for prompt in prompts:
            kind = classify(self.template, prompt)
            group = []
            for _ in range(n):
                cases = CASES[kind]
                text = write(self.template, cases[self.emitted[kind] % len(cases)], kind[1])
                self.emitted[kind] += 1
                group.append(Completion((1, 2), tuple(range(1 + len(text) % 7)), text, True))
            out.append(group)
        return out

    def covered(self) -> bool:
        return all(self.emitted[kind] >= len(cases) for kind, cases in CASES.items())


def make_play(tmp_path, sandbox, template: str, generator, batch_size: int, n_mc: int) -> SelfPlay:
    config = Config()
    config.selfplay.batch_size = batch_size
    config.selfplay.n_mc = n_mc
    config.selfplay.references = 2
    config.selfplay.induction_inputs = INPUTS
    config.selfplay.reuse_rollouts = True
    config.train.log_samples = 1000  # every sample has a row: the injected test compares them
    store = TaskStore(tmp_path / "tasks.db")
    validator = Validator(sandbox, ValidationConfig(induction_inputs=INPUTS))
    store.add([v.task for v in validator.validate(identity_proposals(), step=0, source="identity")])
    return SelfPlay(config, generator, get_template(template, n_inputs=INPUTS), store, validator, Verifier(sandbox),
                    updater=None)  # fmt: skip


def finite(metrics: dict[str, float]) -> list[str]:
    return [k for k, v in metrics.items() if not (isinstance(v, (int, float)) and math.isfinite(v))]


def described(result: StepResult) -> list[str]:
    return [f"{e.role.value} {e.task_type} [{e.error.stage.value}] {e.error.detail} <- {shortened(e.completion)}"
            for e in result.internal_errors]  # fmt: skip


def shortened(text: str) -> str:
    return repr(text) if len(text) <= 120 else f"{text[:40]!r}...{text[-80:]!r}"


# -- every hostile case, through whole steps -------------------------------------------------------


@pytest.mark.parametrize("template", ["compact", "azr"])
def test_hostile_completions_never_stop_a_step_nor_hit_a_bug(tmp_path, sandbox, template):
    generator = HostileGenerator(template)
    play = make_play(tmp_path, sandbox, template, generator, batch_size=24, n_mc=2)
    runlog = RunLog(tmp_path, 0, tensorboard=False, wandb_project="", config={})
    raised: list[str] = []
    step = 0
    while not generator.covered():
        step += 1
        assert step <= 8, f"the cases were not all emitted in 8 steps: {generator.emitted}"
        result = selfplay_step(play, step)
        assert not finite(result.metrics), finite(result.metrics)
        assert result.metrics["errors/internal"] == len(result.internal_errors)
        runlog.step(step, result.metrics, result.samples)  # the run's logs take hostile text too
        raised += described(result)
    runlog.close()
    assert len(read_metrics(tmp_path)) == step
    assert all(json.loads(line) for line in (tmp_path / "samples.jsonl").read_text("utf-8").splitlines())
    assert not raised, "internal errors (bugs in azr):\n" + "\n".join(dict.fromkeys(raised))


# -- an injected bug costs the sample that hit it, and only that one -------------------------------

PLUS_ONE = "def f(x):\n    return x + 1"
TIMES_TWO = "def f(x):\n    return x * 2"
DIVIDES = "def f(x):\n    return x / 0"
PROPOSALS = {  # what the first and the second proposer prompt of each type get
    "<PD>": [PLUS_ONE + "<I>2<E>", "garbage without an end marker"],
    "<PA>": [TIMES_TWO + "<I>5<E>", DIVIDES + "<I>1<E>"],
    "<PN>": ["returns its argument<I>1<I>2<I>3<I>4<E>", "x<I>1<I>1<E>"],
}


def respond(prompt: str, index: int, k: int) -> str:
    """A small scripted model in the compact template (as tests/test_selfplay.py's): one valid and
    one invalid proposal per type; the identity tasks from the seeding get one answer each (the
    solver batch), the new tasks several (the batch and the learnability rollouts)."""
    for marker, texts in PROPOSALS.items():
        if prompt.endswith(marker) or prompt.startswith(marker):
            return texts[index]
    if prompt.startswith("<D>"):
        return "'hello'<E>" if "Hello world" in prompt else ["3<E>", "4<E>"][k % 2]
    if prompt.startswith("<A>"):
        return "'Hello world'<E>" if "Hello world" in prompt else ["5<E>", "4<E>"][k % 2]
    return "def f(a):\n    return a<E>"


class ScriptedGenerator:
    def generate(self, prompts, n, sampling, seed):
        seen: Counter[str] = Counter()
        out = []
        for prompt in prompts:
            kind = prompt[:4] if prompt.startswith("<PN>") else prompt[-4:]
            out.append([Completion((1,), (1, 2, 3), respond(prompt, seen[kind], k), True) for k in range(n)])
            seen[kind] += 1
        return out


def raising(original, hit):
    """`original`, with a bug: it raises when `hit(*args)` is true."""

    def wrapper(*args, **kwargs):
        if hit(*args, **kwargs):
            raise ValueError("injected bug")
        return original(*args, **kwargs)

    return wrapper


INJECTIONS = {  # stage: (object, attribute, which call raises, the sample that hits it)
    Stage.PARSE_PROPOSAL: (CompactTemplate, "parse_proposal", lambda self, t, text, *_, **__: DIVIDES in text,
                           ("propose", "abduction")),
    Stage.STATIC_CHECKS: (Validator, "_static", lambda self, i, p, *_: getattr(p, "program", "") == DIVIDES,
                          ("propose", "abduction")),
    Stage.SANDBOX_RESULTS: (Validator, "_check_runs", lambda self, item, *_: item.proposal.program == DIVIDES,
                            ("propose", "abduction")),
    Stage.STORE: (azr.tasks.programs, "normalized", lambda source: source == TIMES_TWO, ("propose", "abduction")),
    Stage.BUILD_TASK: (azr.tasks.induction, "split", lambda *_: True, ("propose", "induction")),
    Stage.PARSE_ANSWER: (CompactTemplate, "parse_answer", lambda self, t, text: text == "'hello'<E>",
                         ("solve", "deduction")),
    Stage.PREPARE_ANSWER: (Verifier, "_prepare",
                           lambda self, i, task, answer, *_: getattr(answer, "text", "") == "'hello'",
                           ("solve", "deduction")),
    Stage.COMPARE: (azr.tasks.verify, "outputs_equal", lambda answer, expected, *_: answer == "'Hello world'",
                    ("solve", "abduction")),
    Stage.METRICS: (azr.selfplay.step, "normalized", lambda source: source == PLUS_ONE, ("propose", "deduction")),
}  # fmt: skip


def outcomes(result: StepResult) -> list[tuple]:
    return [(r["role"], r["task_type"], r["completion"], r["outcome"]) for r in result.samples]


@pytest.mark.parametrize("stage", list(INJECTIONS), ids=lambda stage: stage.value)
def test_an_injected_bug_costs_only_its_sample(tmp_path, sandbox, monkeypatch, caplog, stage):
    owner, name, hit, (role, task_type) = INJECTIONS[stage]
    (tmp_path / "clean").mkdir()
    clean = make_play(tmp_path / "clean", sandbox, "compact", ScriptedGenerator(), batch_size=2, n_mc=3)
    baseline = selfplay_step(clean, 1)
    assert baseline.internal_errors == [] and baseline.metrics["errors/internal"] == 0
    monkeypatch.setattr(owner, name, raising(getattr(owner, name), hit))
    play = make_play(tmp_path, sandbox, "compact", ScriptedGenerator(), batch_size=2, n_mc=3)
    with caplog.at_level(logging.ERROR, logger="azr.selfplay.step"):
        result = selfplay_step(play, 1)

    # the sample that hit the bug, and no other, is an internal error, which says what and where
    [error] = result.internal_errors
    assert (error.role.value, error.task_type, error.error.stage) == (role, task_type, stage)
    assert error.error.detail.startswith("ValueError: injected bug (tests/test_hostile_step.py:")
    assert result.metrics["errors/internal"] == 1
    assert not finite(result.metrics)
    if stage is not Stage.METRICS:  # the metrics' own failure keeps the (valid) proposal valid
        share = "rejected/internal_error" if role == "propose" else "internal_error"
        assert result.metrics[f"{role}/{task_type}/{share}"] > 0
    assert "1 samples hit internal errors (bug in azr): see samples.jsonl" in caplog.text

    # it has its row in samples.jsonl, with its completion, stage and detail
    (tmp_path / "run").mkdir()
    runlog = RunLog(tmp_path / "run", 0, tensorboard=False, wandb_project="", config={})
    runlog.step(1, result.metrics, result.samples)
    runlog.close()
    rows = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    [row] = [r for r in rows if r["outcome"] == "internal_error"]
    assert (row["role"], row["task_type"], row["stage"], row["detail"]) == (role, task_type, stage.value,
                                                                            error.error.detail)  # fmt: skip
    assert row["completion"] == error.completion and row["completion"]
    assert "1 samples hit internal errors (bugs in azr) in 1 steps" in summary(read_metrics(tmp_path / "run"))

    # the others are as without the bug (a task the bug kept out of the store changes the solver's batch)
    hit_row = (role, task_type, error.completion, "internal_error")
    others, before = [o for o in outcomes(result) if o != hit_row], outcomes(baseline)
    if stage in (Stage.STORE, Stage.BUILD_TASK):
        others = [o for o in others if o[0] == "propose"]
        before = [o for o in before if o[0] == "propose"]
    new_tasks = [Counter((t.task_type, t.program) for t in p.store.tasks() if t.step == 1) for p in (clean, play)]
    assert (new_tasks[0] - new_tasks[1]).total() == (stage in (Stage.STORE, Stage.BUILD_TASK))
    missing = Counter(before) - Counter(others)
    assert sum(missing.values()) == (stage is not Stage.METRICS), missing
    assert not Counter(others) - Counter(before)


def test_internal_errors_are_logged_whatever_train_log_samples(tmp_path, sandbox, monkeypatch):
    owner, name, hit, _ = INJECTIONS[Stage.PARSE_ANSWER]
    monkeypatch.setattr(owner, name, raising(getattr(owner, name), hit))
    play = make_play(tmp_path, sandbox, "compact", ScriptedGenerator(), batch_size=2, n_mc=3)
    play.config.train.log_samples = 0
    result = selfplay_step(play, 1)
    assert [(r["outcome"], r["stage"], r["completion"]) for r in result.samples] == [
        ("internal_error", "parse_answer", "'hello'<E>")
    ]


def test_a_task_the_store_cannot_key_does_not_cost_the_others(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(
        azr.tasks.programs, "normalized", raising(azr.tasks.programs.normalized, lambda s: s == TIMES_TWO)
    )
    tasks = [
        TripletTask(D, PLUS_ONE, "1", "2"),
        TripletTask(D, TIMES_TWO, "1", "2"),
        TripletTask(D, DIVIDES, "'\ud800'", "1"),
    ]
    with TaskStore(tmp_path / "tasks.db") as store, caplog.at_level(logging.ERROR, logger="azr.tasks.store"):
        outcomes = store.try_add(tasks)
        assert outcomes[0] is True and [o.stage for o in outcomes[1:]] == [Stage.STORE, Stage.STORE]
        assert outcomes[2].detail.startswith("UnicodeEncodeError: 'utf-8' codec can't encode character '\\ud800'")
        assert store.add(tasks) == [False, False, False]  # a duplicate, and two that cannot be stored, logged
        assert [t.program for t in store.tasks()] == [PLUS_ONE]
    assert caplog.text.count("a task was not stored (bug in azr): store: ") == 2
