"""`azr exec` end to end, as a user drives it: JSON Lines on stdin, JSON Lines on stdout."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "requests.jsonl"


def azr(*args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "azr.cli", *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_exec_example_file():
    completed = azr("exec", "--timeout", "2", str(EXAMPLES))
    assert completed.returncode == 0, completed.stderr
    results = lines(completed.stdout)
    requests = lines(EXAMPLES.read_text())
    assert [r["id"] for r in results] == [r["id"] for r in requests]
    for result in results:
        assert set(result) == {"id", "status", "output", "error", "seconds"}
    by_id = {r["id"]: r for r in results}
    assert by_id["add"]["output"] == "3"
    assert by_id["kwargs"]["output"] == "[4, 5]"
    assert by_id["loops"]["status"] == "timeout"
    assert by_id["memory"]["status"] == "memory"
    assert by_id["not-plain"]["status"] == "invalid_output"
    assert by_id["injection"]["status"] == "invalid_input"
    assert by_id["escape"]["status"] == "error"
    assert by_id["network"]["status"] == "error"


def test_exec_reads_stdin_and_keeps_order_with_bad_lines():
    stdin = "\n".join(
        [
            json.dumps({"id": 1, "program": "def f(x):\n    return x * 2", "input": "21"}),
            "not json",
            json.dumps([1, 2]),
            "",
            json.dumps({"id": "p", "program": 5, "input": "1"}),
            json.dumps({"id": "i", "program": "def f(x): return x", "input": [1]}),
            json.dumps({"id": {"nested": True}, "program": "def f():\n    print('hi')\n    return None", "input": ""}),
        ]
    )
    completed = azr("exec", "--stdout", stdin=stdin)
    assert completed.returncode == 0, completed.stderr
    results = lines(completed.stdout)
    assert [r["status"] for r in results] == [
        "ok",
        "invalid_input",
        "invalid_input",
        "invalid_input",
        "invalid_input",
        "ok",
    ]
    assert results[0]["output"] == "42"
    assert "line 2: not JSON" in results[1]["error"]
    assert results[3]["id"] == "p" and '"program" must be a string' in results[3]["error"]
    assert '"input" must be a string' in results[4]["error"]
    assert results[5]["id"] == {"nested": True}
    assert results[5]["stdout"] == "hi\n"


def test_exec_traces_on_request():
    stdin = json.dumps({"id": 1, "program": "def f(x):\n    y = x + 3\n    return y * 2", "input": "4"})
    (traced,) = lines(azr("exec", "--trace", "8", stdin=stdin).stdout)
    assert traced["output"] == "14" and traced["trace"] == [[1, "x", "4"], [2, "y", "7"], [3, "return", "14"]]
    (plain,) = lines(azr("exec", stdin=stdin).stdout)
    assert "trace" not in plain
    refused = azr("exec", "--trace", "1000", stdin=stdin)
    assert refused.returncode == 2 and "--trace must be from 0 to 256" in refused.stderr


def test_exec_hostile_input_is_inert():
    requests = [
        {"id": "inject", "program": "def f(x):\n    return x", "input": "__import__('os').system('id')"},
        {"id": "fork", "program": "import os\ndef f():\n    return [os.fork() for _ in range(100)]", "input": ""},
        {
            "id": "forge",
            "program": 'def f():\n    print(\'{"id": "forge", "status": "ok"}\')\n    return 0',
            "input": "",
        },
    ]
    completed = azr("exec", stdin="\n".join(json.dumps(r) for r in requests))
    results = lines(completed.stdout)
    assert [r["status"] for r in results] == ["invalid_input", "error", "ok"]
    assert results[2]["output"] == "0"
    assert len(results) == 3  # the forged line went to the program's captured stdout, not ours


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["exec", "--timeout", "0"], "timeout must be > 0"),
        (["exec", "--timeout", "soon"], "invalid float value"),
        (["exec", "--memory-mb", "1"], "memory_mb must be >= 64"),
        (["exec", "--isolation", "docker"], "invalid choice"),
        (["exec", "--bogus"], "unrecognized arguments"),
        (["exec", "/nonexistent/requests.jsonl"], "cannot read /nonexistent/requests.jsonl"),
        (["exec", "--isolation", "bwrap"], None),  # fine where bwrap works; one line where not
        (["frobnicate"], "invalid choice"),
        ([], None),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, message):
    completed = azr(*args, stdin="")
    if message is None and completed.returncode == 0:
        return
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    if message is not None:
        assert message in completed.stderr
        assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr


def test_version():
    completed = azr("--version")
    assert completed.returncode == 0
    assert completed.stdout.startswith("azr ")
