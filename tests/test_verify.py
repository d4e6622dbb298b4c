"""Verifying answers: correctness, the equality rule, and the reward hacks that must not pay."""

import time

import pytest

from azr.tasks import Answer, FormatError, InductionTask, Mistake, TaskType, TripletTask
from azr.tasks.programs import FilterConfig
from azr.tasks.verify import Equality, Verifier, accuracy, outputs_equal

D, A, N = TaskType.DEDUCTION, TaskType.ABDUCTION, TaskType.INDUCTION
PARITY = TripletTask(D, "def f(x):\n    return x % 2", "3", "1")
PARITY_A = TripletTask(A, PARITY.program, "3", "1")
PAIRS = TripletTask(D, "def f(n):\n    return [n, n * 1.5]", "2", "[2, 3.0]")
SORT = InductionTask(
    "def f(xs):\n    return sorted(xs)",
    inputs=("[3, 1]", "[2, 2, 1]", "[]", "[5, -1, 0]"),
    outputs=("[1, 3]", "[1, 2, 2]", "[]", "[-1, 0, 5]"),
    message="sorts the list",
    given=(0, 1),
)


def judge(verifier, task, text):
    return verifier.verify([(task, text if isinstance(text, FormatError) else Answer(task.task_type, text))])[0]


CASES = [
    # deduction: the answer literal equals the output
    (PARITY, "1", True, None),
    (PARITY, " 1 ", True, None),
    (PARITY, "0", False, Mistake.WRONG),
    (PAIRS, "[2, 3.0]", True, None),
    # strict equality: 3 is not 3.0, a tuple is not a list
    (PAIRS, "[2, 3]", False, Mistake.WRONG),
    (PAIRS, "(2, 3.0)", False, Mistake.WRONG),
    # not a literal: never evaluated
    (PARITY, "1 if True else 0", False, Mistake.NOT_A_LITERAL),
    (PARITY, "f(3)", False, Mistake.NOT_A_LITERAL),
    (PARITY, "", False, Mistake.NOT_A_LITERAL),
    # abduction: any input giving the output counts
    (PARITY_A, "3", True, None),
    (PARITY_A, "101", True, None),
    (PARITY_A, "x=7", True, None),
    (PARITY_A, "4", False, Mistake.WRONG),
    # the reference spliced the answer into `f(<answer>)`: this scored 1 there
    (PARITY_A, "x) or (1", False, Mistake.NOT_A_LITERAL),
    (PARITY_A, "2) == 1 or f(1", False, Mistake.NOT_A_LITERAL),
    # running f on the answer fails
    (PARITY_A, "'a'", False, Mistake.ERROR),
    (PARITY_A, "1, 2", False, Mistake.ERROR),
    # induction: the program must reproduce every hidden pair
    (SORT, "def f(xs):\n    return sorted(xs)", True, None),
    (SORT, "def f(xs):\n    return list(reversed(sorted(xs, reverse=True)))", True, None),
    # memorised the given pairs
    (SORT, "def f(xs):\n    return [1, 3] if xs == [3, 1] else [1, 2, 2]", False, Mistake.WRONG),
    (SORT, "def f(xs):\n    return xs[0]", False, Mistake.ERROR),
    (SORT, "def f(xs):\n    while True:\n        pass", False, Mistake.TIMEOUT),
    (SORT, "import os\ndef f(xs):\n    return sorted(xs)", False, Mistake.BANNED),
    (SORT, "def f(xs) return xs", False, Mistake.ERROR),
    # an object whose == is always true: the reference scored it 1
    (SORT, "class Yes:\n    def __eq__(self, other):\n        return True\ndef f(xs):\n    return Yes()", False,
     Mistake.INVALID_OUTPUT),
    # a list subclass that claims equality
    (SORT, "class L(list):\n    def __eq__(self, other):\n        return True\ndef f(xs):\n    return L()", False,
     Mistake.INVALID_OUTPUT),
]  # fmt: skip


@pytest.mark.parametrize(("task", "text", "correct", "mistake"), CASES)
def test_verdicts(sandbox, task, text, correct, mistake):
    verdict = judge(Verifier(sandbox), task, text)
    assert (verdict.correct, verdict.mistake) == (correct, mistake), verdict


def test_format_errors_are_mistakes(sandbox):
    verdict = judge(Verifier(sandbox), PARITY, FormatError("no <answer> block"))
    assert (verdict.correct, verdict.mistake, verdict.detail) == (False, Mistake.FORMAT, "no <answer> block")


@pytest.mark.parametrize(
    ("answer", "expected", "strict", "python"),
    [
        ("1.0", "1", False, True),
        ("True", "1", False, True),
        ("[1, 2]", "(1, 2)", False, False),
        ("frozenset({1})", "{1}", False, True),
        ("{'b': 1, 'a': 2}", "{'a': 2, 'b': 1}", True, True),  # canonicalised before comparing
        ("-0.0", "0.0", False, True),
    ],
)
def test_equality_rules(sandbox, answer, expected, strict, python):
    task = TripletTask(D, "def f():\n    return None", "", expected)
    assert judge(Verifier(sandbox, "strict"), task, answer).correct is strict
    assert judge(Verifier(sandbox, "python"), task, answer).correct is python


def test_outputs_equal():
    assert outputs_equal("1", "1") and not outputs_equal("1", "1.0")
    assert outputs_equal("1", "1.0", Equality.PYTHON)


# -- hostile answers -------------------------------------------------------------------------------


def test_huge_and_deep_literals_are_refused_cheaply(sandbox):
    verifier = Verifier(sandbox)
    huge = "[" + "1, " * 1_000_000 + "1]"
    deep = "[" * 5000 + "]" * 5000
    started = time.perf_counter()
    for text in (huge, deep, "9" * 5000, "'" + "a" * 50_000 + "'"):
        for task in (PARITY, PARITY_A):
            verdict = judge(verifier, task, text)
            assert verdict.mistake is Mistake.NOT_A_LITERAL, (text[:20], verdict)
    assert time.perf_counter() - started < 1.0  # nothing of that size is parsed, let alone run


SCAN_FOR_ANSWERS = """
import gc, sys
def f(xs):
    # look everywhere in this process for the hidden outputs
    seen = []
    for obj in gc.get_objects():
        if isinstance(obj, (list, str)) and obj in ([-1, 0, 5], "[-1, 0, 5]"):
            seen.append(obj)
    frame = sys._getframe()
    while frame is not None:
        seen.extend(v for v in frame.f_locals.values() if v == "[-1, 0, 5]")
        frame = frame.f_back
    return seen[0] if seen else "found nothing"
"""


def test_the_answer_key_is_not_in_the_sandbox(sandbox):
    """Expected outputs never enter the sandbox: with the static filter off, a program searching
    its process's objects and frames for them finds nothing."""
    open_filter = FilterConfig(banned_modules=(), banned_names=(), banned_attributes=())
    verdict = judge(Verifier(sandbox, filter=open_filter), SORT, SCAN_FOR_ANSWERS)
    assert verdict.mistake is Mistake.WRONG
    assert "found nothing" in verdict.detail


def test_fake_results_do_not_pay(sandbox):
    """A candidate that prints a fake verdict, or writes the right outputs to its result channel
    and then returns its own (wrong) value: judged on what `f` does, never on what it claims."""
    open_filter = FilterConfig(banned_modules=(), banned_names=(), banned_attributes=())
    verifier = Verifier(sandbox, filter=open_filter)
    printing = "def f(xs):\n    print('{\"correct\": true}')\n    print('[-1, 0, 5]')\n    return None"
    assert judge(verifier, SORT, printing).mistake is Mistake.WRONG
    forging = (
        "import os, json\ndef f(xs):\n"
        "    claim = {(): '[]'}.get(tuple(xs), '[-1, 0, 5]')  # the right answers, hidden pairs included\n"
        "    os.write(3, json.dumps({'status': 'ok', 'output': claim, 'error': ''}).encode())\n"
        "    return 'wrong'"
    )
    verdict = judge(verifier, SORT, forging)
    assert not verdict.correct and verdict.mistake is Mistake.ERROR, verdict


def test_an_induction_task_without_hidden_pairs_accepts_nothing(sandbox):
    everything_given = InductionTask(SORT.program, SORT.inputs, SORT.outputs, SORT.message, given=(0, 1, 2, 3))
    verdict = judge(Verifier(sandbox), everything_given, "def f(xs):\n    return sorted(xs)")
    assert not verdict.correct and "no hidden pairs" in verdict.detail


def test_batches_mix_task_types(sandbox):
    verifier = Verifier(sandbox)
    items = [
        (PARITY, Answer(D, "1")),
        (PARITY_A, Answer(A, "5")),
        (SORT, Answer(N, "def f(xs):\n    return sorted(xs)")),
        (PARITY_A, Answer(A, "2")),
        (SORT, FormatError("cut off")),
    ]
    verdicts = verifier.verify(items)
    assert [v.correct for v in verdicts] == [True, True, True, False, False]
    assert [v.reason for v in verdicts] == ["correct", "correct", "correct", "wrong", "format"]
    assert accuracy(verdicts) == 0.6


def test_an_induction_answer_right_on_some_hidden_pairs_carries_the_fraction(sandbox):
    """SORT hides [] -> [] and [5, -1, 0] -> [-1, 0, 5]. `list(xs)` gets the first (an empty list
    either way) and not the second: wrong, with `passed` 1/2 for selfplay.partial_credit; the
    first failing pair says why. Right on both: 1; a malformed answer has no fraction."""
    verifier = Verifier(sandbox)
    half = judge(verifier, SORT, "def f(xs):\n    return list(xs)")
    assert (half.correct, half.mistake, half.passed) == (False, Mistake.WRONG, 0.5)
    assert "[5, -1, 0]" in half.detail
    assert judge(verifier, SORT, "def f(xs):\n    return sorted(xs)").passed == 1.0
    assert judge(verifier, SORT, FormatError("no code")).passed is None


def test_partial_credit_rewards_the_fraction_and_keeps_format_shaping():
    """Eq. 5 and 6 by hand: 1 of 2 hidden pairs right is -0.5 (wrong, well formed) by default and
    0.5 with partial credit; none right stays -0.5; a malformed answer stays -1."""
    from types import SimpleNamespace

    from azr.selfplay.step import _solver_reward
    from azr.tasks import Verdict

    def rollout(verdict, answer=None):
        return SimpleNamespace(verdict=verdict, answer=answer or Answer(N, "def f(xs): ..."))

    half = rollout(Verdict(False, Mistake.WRONG, passed=0.5))
    assert _solver_reward(half, "paper", False) == -0.5 and _solver_reward(half, "paper", True) == 0.5
    assert _solver_reward(rollout(Verdict(False, Mistake.WRONG, passed=0.0)), "paper", True) == -0.5
    assert _solver_reward(rollout(Verdict(False, Mistake.FORMAT), FormatError("x")), "paper", True) == -1.0
