"""`azr verify` and `azr tasks` end to end, as a user drives them."""

import json
import sqlite3
import subprocess
import sys

import pytest
from conftest import SHARED

SEEDS = SHARED / "data" / "azr-seeds"


def azr(*args: str, stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "azr.cli", *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def jsonl(*rows: object) -> str:
    return "\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n"


PARITY = {"program": "def f(x):\n    return x % 2", "input": "3", "output": "1"}


def test_verify_judges_each_line_in_order():
    stdin = jsonl(
        {"id": 1, "task_type": "deduction", **PARITY, "answer": "1"},
        {"id": 2, "task_type": "deduction", **PARITY, "answer": "1.0"},
        {"id": 3, "task_type": "abduction", **PARITY, "answer": "x) or (1"},
        {"id": 4, "task_type": "abduction", **PARITY, "answer": "11"},
        {"id": 5, "task_type": "induction", "pairs": [["[2, 1]", "[1, 2]"], ["[3]", "[3]"]],
         "answer": "def f(xs):\n    return sorted(xs)"},
        {"id": 6, "task_type": "induction", "pairs": [["[2, 1]", "[1, 2]"]],
         "answer": "def f(xs):\n    while True: pass"},
        "not json",
        {"id": 8, "task_type": "trivia", "answer": "1"},
        {"id": 9, "task_type": "deduction", "program": "def f(): pass", "input": "", "output": "f()", "answer": "1"},
        {"id": 10, "task_type": "deduction", **PARITY, "answer": "[" * 10_000},
        "[" * 100_000 + "]" * 100_000,  # JSON nested too deep for the json module
        {"id": 12, "task_type": "deduction", **PARITY, "answer": "1"},
    )  # fmt: skip
    completed = azr("verify", "--timeout", "2", stdin=stdin)
    assert completed.returncode == 0, completed.stderr
    results = lines(completed.stdout)
    assert [(r["id"], r["correct"], r["reason"]) for r in results] == [
        (1, True, "correct"),
        (2, False, "wrong"),
        (3, False, "not_a_literal"),
        (4, True, "correct"),
        (5, True, "correct"),
        (6, False, "timeout"),
        (None, False, "invalid_task"),
        (8, False, "invalid_task"),
        (9, False, "invalid_task"),
        (10, False, "not_a_literal"),
        (None, False, "invalid_task"),
        (12, True, "correct"),
    ]
    assert "line 7: not JSON" in results[6]["detail"]


def test_verify_python_equality_and_completions():
    stdin = jsonl({"id": "a", "task_type": "deduction", **PARITY, "answer": "True"})
    assert lines(azr("verify", stdin=stdin).stdout)[0]["correct"] is False
    assert lines(azr("verify", "--equality", "python", stdin=stdin).stdout)[0]["correct"] is True
    completion = "hmm</think><answer>\n```output\n1\n```\n</answer>"
    stdin = jsonl({"id": "c", "task_type": "deduction", **PARITY, "answer": completion})
    assert lines(azr("verify", "--template", "azr", stdin=stdin).stdout)[0]["correct"] is True
    stdin = jsonl({"id": "c", "task_type": "deduction", **PARITY, "answer": "1"})
    assert lines(azr("verify", "--template", "azr", stdin=stdin).stdout)[0]["reason"] == "format"


def test_tasks_validate_a_seed_file(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        jsonl(
            {"snippet": "def f(a):\n    return a * 2", "input": "21", "output": "42", "imports": []},
            {"snippet": "def f(a):\n    return sorted(a)", "input": "{3, 1}", "imports": []},
            {"snippet": "import random\ndef f(a):\n    return a", "input": "1"},
            {"snippet": "def f(a):\n    return a", "input": "dict(a=1)"},
            {"input": "1"},
        )
    )
    completed = azr("tasks", "validate", str(rows), "--task-type", "deduction")
    assert completed.returncode == 0, completed.stderr
    results = lines(completed.stdout)
    assert [(r["valid"], r["reason"], r["output"]) for r in results] == [
        (True, "valid", "42"),
        (True, "valid", "[1, 3]"),
        (False, "banned", None),
        (False, "invalid_input", None),
        (False, "format", None),
    ]


def test_tasks_import_export_list_show(tmp_path):
    run = tmp_path / "run"
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        jsonl({"snippet": "def f(a):\n    return a[::-1]", "input": "'abc'"}, {"snippet": "oops", "input": "1"})
    )
    completed = azr("tasks", "import", "--identity", str(rows), "--task-type", "abduction", "--run-dir", str(run))
    assert completed.returncode == 0, completed.stderr
    assert "identity: 2 tasks added" in completed.stderr
    assert "rows.jsonl: 1 tasks added, 0 duplicates, 1 rejected (no_f 1)" in completed.stderr
    again = azr("tasks", "import", str(rows), "--task-type", "abduction", "--run-dir", str(run))
    assert "0 tasks added, 1 duplicates" in again.stderr

    exported = lines(azr("tasks", "export", "--run-dir", str(run)).stdout)
    assert [(r["task_type"], r["source"], r["output"]) for r in exported] == [
        ("deduction", "identity", "'Hello world'"),
        ("abduction", "identity", "'Hello world'"),
        ("abduction", "seed:rows.jsonl", "'cba'"),
    ]
    listing = azr("tasks", "list", "--run-dir", str(run), "--task-type", "abduction").stdout
    assert "'abc' -> 'cba'" in listing and "deduction" not in listing
    shown = azr("tasks", "show", "--run-dir", str(run), "3").stdout
    assert "return a[::-1]" in shown and "seed:rows.jsonl" in shown

    # the export is re-importable, and the database is readable by hand
    export = tmp_path / "export.jsonl"
    assert (
        azr("tasks", "export", "--run-dir", str(run), "--task-type", "abduction", "--out", str(export)).returncode == 0
    )
    other = tmp_path / "other"
    assert azr("tasks", "import", str(export), "--task-type", "abduction", "--run-dir", str(other)).returncode == 0
    rows_by_hand = sqlite3.connect(other / "tasks.db").execute("SELECT input, output FROM abduction").fetchall()
    assert sorted(rows_by_hand) == [("'Hello world'", "'Hello world'"), ("'abc'", "'cba'")]


@pytest.mark.skipif(not SEEDS.exists(), reason="the AZR seed files are not here")
def test_import_the_authors_seed_files(tmp_path):
    run = tmp_path / "run"
    for name, task_type in (("7b_coder_seed_io.jsonl", "deduction"), ("7b_coder_code_f_seed_io.jsonl", "induction")):
        completed = azr("tasks", "import", str(SEEDS / name), "--task-type", task_type, "--run-dir", str(run))
        assert completed.returncode == 0, completed.stderr
    counts = dict(sqlite3.connect(run / "tasks.db").execute("SELECT task_type, COUNT(*) FROM tasks GROUP BY 1"))
    assert counts["deduction"] >= 240 and counts["induction"] >= 190, counts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tasks", "import", "--run-dir", "/tmp/x"], "give a FILE to import, or --identity"),
        (["tasks", "import", "f.jsonl", "--run-dir", "/tmp/x"], "--task-type is required"),
        (["tasks", "list", "--run-dir", "/nonexistent/run"], "no task store at /nonexistent/run/tasks.db"),
        (["tasks", "show", "--run-dir", "/nonexistent/run", "1"], "no task store"),
        (["tasks", "validate", "/nonexistent.jsonl", "--task-type", "deduction"], "cannot read /nonexistent.jsonl"),
        (["tasks", "validate", "x.jsonl"], "the following arguments are required: --task-type"),
        (["verify", "--equality", "loose"], "invalid choice"),
        (["tasks", "frob"], "invalid choice"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, message):
    completed = azr(*args)
    assert completed.returncode == 2, completed
    assert message in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr


def test_tasks_without_action_prints_help():
    completed = azr("tasks")
    assert completed.returncode == 2
    assert "ACTION" in completed.stderr and "Traceback" not in completed.stderr
