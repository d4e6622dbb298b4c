"""`azr compare`: McNemar's exact p and the paired bootstrap by hand, and the command on results in
the format `azr eval --out` writes (made by the harness's own `report`)."""

import json
import subprocess
import sys

import pytest

from azr.eval.benchmarks import Benchmark, ReasoningProblem
from azr.eval.compare import bootstrap_interval, compare, mcnemar
from azr.eval.harness import report
from azr.tasks import Mistake, TaskType, TripletTask, Verdict


@pytest.mark.parametrize(
    ("up", "down", "p"),
    [
        (0, 0, 1.0),  # nothing flipped: no evidence
        (5, 0, 2 / 32),  # 2 x P(X <= 0), X ~ Bin(5, 1/2) = 2 x 1/32
        (10, 2, 2 * (1 + 12 + 66) / 4096),  # 2 x [C(12,0) + C(12,1) + C(12,2)] / 2^12 = 0.0386
        (2, 10, 2 * (1 + 12 + 66) / 4096),  # two-sided: the same either way
        (3, 3, 1.0),  # 2 x 42/64 > 1: capped
        (1, 2, 1.0),  # 2 x (1 + 3)/8 = 1
    ],
)
def test_mcnemar_exact_p_by_hand(up, down, p):
    assert mcnemar(up, down) == pytest.approx(p, abs=1e-12)


def test_the_bootstrap_interval_of_a_constant_difference_is_that_constant():
    assert bootstrap_interval([0.5] * 40) == (0.5, 0.5)
    assert bootstrap_interval([]) == (0.0, 0.0)


def test_the_bootstrap_interval_matches_the_normal_one_and_is_reproducible():
    """200 tasks, 60 up by one and 20 down by one (mean +0.2, sd 0.51): the 95% interval is about
    mean +- 1.96 sd / sqrt(n) = 0.2 +- 0.071; the same seed gives the same interval."""
    differences = [1.0] * 60 + [-1.0] * 20 + [0.0] * 120
    low, high = bootstrap_interval(differences, seed=3)
    mean = sum(differences) / 200
    sd = (sum((d - mean) ** 2 for d in differences) / 199) ** 0.5
    half = 1.96 * sd / 200**0.5
    assert low == pytest.approx(mean - half, abs=0.01) and high == pytest.approx(mean + half, abs=0.01)
    assert bootstrap_interval(differences, seed=3) == (low, high)


def _result(outcomes: dict[str, list[bool]]) -> dict:
    """An `azr eval --out` file's content: one deduction task per entry, its samples' verdicts."""
    problems = [
        ReasoningProblem(task_id, TripletTask(TaskType.DEDUCTION, f"def f(x):\n    return x + {i}", "1", str(1 + i)))
        for i, task_id in enumerate(outcomes)
    ]
    benchmark = Benchmark("heldout", "reasoning", "heldout.jsonl", problems)
    verdicts = [[Verdict(c, None if c else Mistake.WRONG) for c in outcomes[p.task_id]] for p in problems]
    completions = [["3"] * len(v) for v in verdicts]
    scored = report(benchmark, completions, completions, verdicts, [1])
    return {"sampling": {"k": [1]}, "benchmarks": {"heldout": scored}}


def test_compare_pairs_tasks_by_id_and_counts_flips():
    """Base: a b right; after: a c d right (e in the base only). Over the four shared tasks: 0.5 ->
    0.75, +0.25; c and d flipped to solved, b to unsolved: McNemar(2, 1) = 1."""
    base = _result({"a": [True], "b": [True], "c": [False], "d": [False], "e": [True]})
    after = _result({"d": [True], "c": [True], "b": [False], "a": [True]})
    (found,) = compare(base, after, resamples=500)
    assert (found.benchmark, found.group, found.tasks, found.only_one_file) == ("heldout", "deduction", 4, 1)
    assert (found.base, found.after, found.difference) == (0.5, 0.75, 0.25)
    assert found.solved_now == ["c", "d"] and found.lost == ["b"] and found.p_mcnemar == 1.0
    assert found.low <= 0.25 <= found.high


def test_with_several_samples_pass_at_1_is_the_fraction_and_solved_is_a_majority():
    """Two samples a task: a 1/2 -> 2/2 (solved now: half is not a majority), b 2/2 -> 1/2 (lost)."""
    base = _result({"a": [True, False], "b": [True, True]})
    after = _result({"a": [True, True], "b": [False, True]})
    (found,) = compare(base, after, resamples=500)
    assert (found.base, found.after, found.difference) == (0.75, 0.75, 0.0)
    assert found.solved_now == ["a"] and found.lost == ["b"]


def _azr(*args):
    return subprocess.run([sys.executable, "-m", "azr.cli", *args], capture_output=True, text=True, timeout=120)


def test_the_command_prints_the_table_and_writes_every_number(tmp_path):
    base, after = tmp_path / "base.json", tmp_path / "after.json"
    base.write_text(json.dumps(_result({f"t{i}": [i % 3 == 0] for i in range(30)})))
    after.write_text(json.dumps(_result({f"t{i}": [i % 3 != 1] for i in range(30)})))
    done = _azr("compare", str(base), str(after), "--out", str(tmp_path / "c.json"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:6] == ["benchmark", "group", "tasks", "base", "after", "diff"]
    assert lines[1].split()[:6] == ["heldout", "deduction", "30", "33.3", "66.7", "+33.3"]
    written = json.loads((tmp_path / "c.json").read_text())["comparisons"][0]
    assert len(written["solved_now"]) == 10 and written["lost"] == [] and written["p_mcnemar"] == 2 / 2**10


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no file"),
        ("{not json", "is not JSON"),
        ('{"benchmarks": {"heldout": {"results": {}}}}', "without its per-task results"),
        ('["a list"]', "holds no benchmarks"),
    ],
)
def test_bad_files_are_one_line_and_exit_2(tmp_path, content, message):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_result({"a": [True]})))
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    done = _azr("compare", str(good), str(bad))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
