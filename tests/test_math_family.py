"""The `math` family: word problems grounded by a program, through the one family interface.

Proposals are validated in the sandbox like any program; answers are judged by math-verify in a
sandbox of its own. A scripted generator drives whole self-play steps with valid, invalid,
mismatched and hostile proposals, and right, wrong and malformed answers.
"""

import json
import sqlite3

import pytest

from azr.config import Config
from azr.engine.generation import Completion
from azr.prompts import get_template
from azr.selfplay.step import SelfPlay, selfplay_step
from azr.tasks import Answer, FormatError, Mistake, Rejection, Role
from azr.tasks.math import FAMILY, MathProposal, MathRejection, MathTask, reference
from azr.tasks.seeds import export_row, read_rows
from azr.tasks.store import TaskStore
from azr.tasks.validate import Validator
from azr.tasks.verify import Verifier

pytest.importorskip("math_verify")

APPLES = "Ann has 3 bags of 4 apples and eats 2. How many apples are left?"
APPLES_PROGRAM = "def f():\n    return 3 * 4 - 2"
SHARE = "Three friends share two pizzas equally. What fraction of a pizza does each get?"
SHARE_PROGRAM = "def f():\n    return '2/3'"


def validate(sandbox, *proposals):
    return Validator(sandbox).validate(list(proposals), step=1)


# -- prompts and parsing: a template frames the family's fields, knowing nothing of math ----------


def test_compact_frames_and_reads_math():
    template = get_template("compact")
    task = MathTask(APPLES, APPLES_PROGRAM, "10")
    assert template.solve_prompt(task) == f"<Q>{APPLES}<answer>"
    assert template.propose_prompt("math", [task]) == f"<R>{APPLES}<P>{APPLES_PROGRAM}<O>10<PQ>"
    assert template.parse_proposal("math", f"{APPLES}<P>{APPLES_PROGRAM}\n<E>") == MathProposal(APPLES, APPLES_PROGRAM)
    assert template.parse_answer("math", "so \\boxed{10}<E>") == Answer("math", "so \\boxed{10}")
    assert "no \\boxed" in template.parse_answer("math", "10<E>").reason
    assert "<P>" in template.parse_proposal("math", f"{APPLES}<E>").reason


def test_paper_frames_and_reads_math():
    template = get_template("azr")
    prompt = template.solve_prompt(MathTask(APPLES, APPLES_PROGRAM, "10"))
    assert APPLES in prompt and APPLES_PROGRAM not in prompt and "\\boxed{}" in prompt
    propose = template.propose_prompt("math", [MathTask(APPLES, APPLES_PROGRAM, "10")])
    assert "```problem" in propose and APPLES_PROGRAM in propose and "'3/4'" in propose
    completion = f"<think>x</think><answer>\n```problem\n{SHARE}\n```\n```python\n{SHARE_PROGRAM}\n```\n</answer>"
    assert template.parse_proposal("math", completion) == MathProposal(SHARE, SHARE_PROGRAM)
    assert template.parse_answer("math", "</think><answer>It is \\boxed{2/3}</answer>") == Answer(
        "math", "It is \\boxed{2/3}"
    )
    assert isinstance(template.parse_answer("math", "</think><answer>2/3</answer>"), FormatError)


# -- validation ------------------------------------------------------------------------------------


def test_valid_problems_become_tasks(sandbox):
    apples, share = validate(sandbox, MathProposal(APPLES, APPLES_PROGRAM), MathProposal(SHARE, SHARE_PROGRAM))
    assert apples.task == MathTask(APPLES, APPLES_PROGRAM, "10", step=1)
    assert share.task.output == "'2/3'" and reference(share.task.output) == "2/3"


@pytest.mark.parametrize(
    ("program", "rejection"),
    [
        ("def f():\n    return [1, 2]", MathRejection.NOT_A_NUMBER),
        ("def f():\n    return True", MathRejection.NOT_A_NUMBER),
        ("def f():\n    return 'ten'", MathRejection.NOT_A_NUMBER),
        ("def f():\n    return '1/0'", MathRejection.NOT_A_NUMBER),
        ("def f():\n    return float('nan')", Rejection.INVALID_OUTPUT),  # the sandbox's plain data is finite
        ("def f(x):\n    return x", Rejection.ERROR),  # f() takes no arguments
        ("import random\ndef f():\n    return random.randint(1, 6)", Rejection.BANNED),
        ("def f():\n    return hash('a') % 7", Rejection.NONDETERMINISTIC),
        ("def f():\n    while True:\n        pass", Rejection.TIMEOUT),
        ("def f():\n    return open('/etc/passwd').read()", Rejection.BANNED),
        ("def g():\n    return 1", Rejection.NO_F),
    ],
)
def test_invalid_and_hostile_programs_are_rejected(sandbox, program, rejection):
    [result] = validate(sandbox, MathProposal(APPLES, program))
    assert result.rejection is rejection, result.detail


def test_a_problem_must_be_there_and_short(sandbox):
    empty, long = validate(sandbox, MathProposal(" \n", APPLES_PROGRAM), MathProposal("x" * 5000, APPLES_PROGRAM))
    assert empty.rejection is long.rejection is MathRejection.EMPTY_PROBLEM


# -- judging: math-verify in its own sandbox --------------------------------------------------------


@pytest.fixture(scope="module")
def verifier(sandbox):
    verifier = Verifier(sandbox)
    yield verifier
    verifier.close()


def test_answers_are_judged_by_math_verify(verifier):
    apples, share = MathTask(APPLES, APPLES_PROGRAM, "10"), MathTask(SHARE, SHARE_PROGRAM, "'2/3'")
    verdicts = verifier.verify(
        [
            (apples, Answer("math", "12 - 2 = \\boxed{10}")),
            (apples, Answer("math", "\\boxed{10.0}")),
            (share, Answer("math", "\\boxed{\\frac{2}{3}}")),
            (apples, Answer("math", "\\boxed{11}")),
            (apples, Answer("math", "first \\boxed{10}, no: \\boxed{12}")),  # the last \boxed counts
            (apples, FormatError("no \\boxed{} in the answer")),
            (share, Answer("math", "0.6666666666666666")),  # a bare answer (azr verify without a template)
            (share, Answer("math", "0.5")),
        ]
    )
    assert [v.correct for v in verdicts] == [True, True, True, False, False, False, True, False]
    assert [v.mistake for v in verdicts[3:6]] == [Mistake.WRONG, Mistake.WRONG, Mistake.FORMAT]


def test_hostile_answers_reach_sympy_only_in_the_sandbox(verifier, tmp_path):
    marker = tmp_path / "pwned"
    hostile = [
        f"\\boxed{{__import__('os').system('touch {marker}')}}",
        "\\boxed{" + "(" * 5000 + "}",
        "\\boxed{" + "9" * 900 + "^" + "9" * 90 + "}",
    ]
    task = MathTask(APPLES, APPLES_PROGRAM, "10")
    verdicts = verifier.verify([(task, Answer("math", text)) for text in hostile])
    assert not any(v.correct for v in verdicts)
    assert not marker.exists()


# -- the store, seed files and azr verify lines ------------------------------------------------------


def test_store_round_trip_and_view(tmp_path):
    task = MathTask(APPLES, APPLES_PROGRAM, "10", ("import math",), step=3, source="proposed")
    with TaskStore(tmp_path / "tasks.db") as store:
        assert store.add([task, task]) == [True, False]
        assert store.tasks("math") == [task] and store.count("deduction") == 0
    view = sqlite3.connect(tmp_path / "tasks.db").execute("SELECT step, problem, program, output FROM math")
    assert view.fetchall() == [(3, APPLES, APPLES_PROGRAM, "10")]


def test_seed_rows_round_trip(sandbox):
    row = export_row(MathTask(APPLES, APPLES_PROGRAM, "10", step=2))
    assert row["problem"] == APPLES and row["output"] == "10" and row["task_type"] == "math"
    [proposal] = read_rows([json.dumps(row)], "math")
    assert proposal == MathProposal(APPLES, APPLES_PROGRAM)
    [bad] = read_rows([json.dumps({"snippet": APPLES_PROGRAM})], "math")
    assert '"problem"' in bad.reason


def test_verify_item():
    assert FAMILY.verify_item({"output": "3/4", "answer": "x"}) == MathTask("", "", "'3/4'")
    assert FAMILY.verify_item({"output": "10"}).output == "10"
    assert "output" in FAMILY.verify_item({"answer": "x"})


# -- whole self-play steps with math among the task types -------------------------------------------

MISMATCHED = "Ann has 2 apples and gets 2 more. How many apples has she?"


def respond(prompt: str, k: int) -> str:
    """Proposals: a matched problem, one whose program does not answer it, an invalid one and a
    hostile one; answers: right, wrong, right, malformed (no \\boxed)."""
    if prompt.endswith("<PQ>"):
        return [
            f"{APPLES}<P>{APPLES_PROGRAM}<E>",
            f"{MISMATCHED}<P>def f():\n    return 5<E>",  # the problem's answer is 4
            f"{SHARE}<P>def f():\n    return [2, 3]<E>",
            f"{SHARE}<P>import os\ndef f():\n    return os.getpid()<E>",
        ][k % 4]
    if prompt.startswith("<Q>"):
        if MISMATCHED in prompt:
            return "\\boxed{4}<E>"  # always the problem's true answer: never the program's
        return ["\\boxed{10}<E>", "\\boxed{9}<E>", "10 = \\boxed{10}<E>", "10<E>"][k % 4]
    return "x<E>"


class Scripted:
    def __init__(self):
        self.proposals = 0

    def generate(self, prompts, n, sampling, seed):
        out = []
        for prompt in prompts:
            if prompt.endswith("<PQ>"):
                texts = [respond(prompt, self.proposals)]
                self.proposals += 1
            else:
                texts = [respond(prompt, k) for k in range(n)]
            out.append([Completion((1,), (1, 2), text, True) for text in texts])
        return out


def test_a_step_with_math(tmp_path, sandbox):
    config = Config()
    config.selfplay.task_types = ["math"]
    config.selfplay.batch_size = 4
    config.selfplay.n_mc = 4
    store = TaskStore(tmp_path / "tasks.db")
    verifier = Verifier(sandbox)
    play = SelfPlay(config, Scripted(), get_template("compact"), store, Validator(sandbox), verifier, updater=None)
    try:
        result = selfplay_step(play, step=1)
    finally:
        verifier.close()
    m = result.metrics
    assert m["propose/math/valid_rate"] == 0.5  # matched and mismatched; the list and the pid are not
    assert m["propose/math/rejected/not_a_number"] == m["propose/math/rejected/banned"] == 0.25
    proposers = [s.reward for s in result.trained if s.role is Role.PROPOSE]
    # matched: rollouts right, wrong, right, malformed -> solve rate 1/2, learnability 1/2;
    # mismatched: never solved (the solver answers the problem, 4, not the program's 5): learnability
    # 0, shaped to -0.5 (Eq. 6) as for a task always solved; rejected proposals -1
    assert proposers == [0.5, -0.5, -1.0, -1.0]
    assert m["solve/math/accuracy"] == 0.5  # the batch: the two new tasks, newest first, then repeats
    assert store.count("math") == 2 and result.internal_errors == []


def test_azr_verify_judges_math_lines(tmp_path, capsys):
    from azr.cli import main

    lines = [
        {"id": 1, "task_type": "math", "output": "10", "answer": "12 - 2 = \\boxed{10}"},
        {"id": 2, "task_type": "math", "output": "3/4", "answer": "\\boxed{0.75}"},
        {"id": 3, "task_type": "math", "output": "3/4", "answer": "0.7"},
        {"id": 4, "task_type": "math", "answer": "\\boxed{1}"},
    ]
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["verify", str(path)]) == 0
    verdicts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(v["correct"], v["reason"]) for v in verdicts] == [
        (True, "correct"),
        (True, "correct"),
        (False, "wrong"),
        (False, "invalid_task"),
    ]
