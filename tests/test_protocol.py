"""How a worker's report becomes a verdict: every branch of `interpret`, no processes."""

import json
import signal

import pytest

from azr.executor.protocol import SETUP_FAILED, ExecStatus, MalformedReport, interpret

LIMITS = {"timeout": 2.0, "max_output_chars": 50, "max_stdout_bytes": 100}


def report(frame=None, returncode=0, killed=None, stdout="", seconds=0.01, retiring=False, confined=True):
    return {
        "frame": frame,
        "confined": confined,
        "returncode": returncode,
        "killed": killed,
        "stdout": stdout,
        "seconds": seconds,
        "retiring": retiring,
    }


def message(status="ok", output="1", error=""):
    return json.dumps({"status": status, "output": output, "error": error})


def verdict(**kwargs):
    return interpret(report(**kwargs), **LIMITS)


def test_ok():
    result = verdict(frame=message(output="[1, 'a']"), stdout="hello\n")
    assert result.status is ExecStatus.OK
    assert result.output == "[1, 'a']"
    assert result.error == ""
    assert result.stdout == "hello\n"


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"killed": "timeout"}, ExecStatus.TIMEOUT, "timed out after 2 s"),
        ({"killed": "stdout"}, ExecStatus.ERROR, "printed more than 100 bytes"),
        ({"killed": "frame"}, ExecStatus.ERROR, "oversized message"),
        ({"returncode": -signal.SIGXCPU}, ExecStatus.TIMEOUT, "CPU time"),
        ({"returncode": -signal.SIGSEGV, "frame": message()}, ExecStatus.ERROR, "SIGSEGV"),
        ({"returncode": -signal.SIGKILL}, ExecStatus.ERROR, "SIGKILL"),
        ({"returncode": 3, "frame": message()}, ExecStatus.ERROR, "exited with code 3"),
        (
            {"returncode": SETUP_FAILED, "frame": "sandbox setup failed: OSError()", "confined": False},
            ExecStatus.ERROR,
            "sandbox setup failed: OSError()",
        ),
        ({"returncode": -signal.SIGKILL, "confined": False}, ExecStatus.ERROR, "died before confining itself"),
        ({"killed": "timeout", "confined": False}, ExecStatus.ERROR, "died before confining itself"),
        # the same exit code and message from a program that was confined: an ordinary exit
        (
            {"returncode": SETUP_FAILED, "frame": "sandbox setup failed: OSError()"},
            ExecStatus.ERROR,
            "exited with code 113",
        ),
        ({"frame": ""}, ExecStatus.ERROR, "exited before returning"),
        ({"frame": None}, ExecStatus.ERROR, "exited before returning"),
        # what a program writing to its result channel produces
        ({"frame": message() + message(output="2")}, ExecStatus.ERROR, "malformed"),
        ({"frame": message() + "\n" + message()}, ExecStatus.ERROR, "malformed"),
        ({"frame": "garbage"}, ExecStatus.ERROR, "malformed"),
        ({"frame": "[1]"}, ExecStatus.ERROR, "malformed"),
        ({"frame": message(status="timeout")}, ExecStatus.ERROR, "malformed"),
        ({"frame": message(output=None)}, ExecStatus.ERROR, "malformed"),
        ({"frame": message(status="error", output="1")}, ExecStatus.ERROR, "malformed"),
        ({"frame": json.dumps({"status": "ok", "output": "1", "error": "", "x": 1})}, ExecStatus.ERROR, "malformed"),
        ({"frame": message(output="(1)")}, ExecStatus.ERROR, "not a canonical"),
        ({"frame": message(output="__import__('os')")}, ExecStatus.ERROR, "not a canonical"),
        ({"frame": message(output="'" + "x" * 60 + "'")}, ExecStatus.ERROR, "not a canonical"),
        # literals that once made the caller's own check raise, losing the whole batch
        ({"frame": message(output="frozenset([[1]])")}, ExecStatus.ERROR, "not a canonical"),
        ({"frame": message(output="frozenset({[]})")}, ExecStatus.ERROR, "not a canonical"),
        ({"frame": message(output="(" + "9" * 400 + "+1j)")}, ExecStatus.ERROR, "not a canonical"),
        ({"frame": message(output="{[]: 1}")}, ExecStatus.ERROR, "not a canonical"),
        ({"frame": json.dumps({"status": [], "output": None, "error": ""})}, ExecStatus.ERROR, "malformed"),
        ({"frame": json.dumps({"status": {}, "output": "1", "error": ""})}, ExecStatus.ERROR, "malformed"),
        ({"frame": "[" * 100000}, ExecStatus.ERROR, "malformed"),
        # the child's own verdicts pass through
        ({"frame": message("error", None, "ValueError: no")}, ExecStatus.ERROR, "ValueError: no"),
        ({"frame": message("memory", None, "MemoryError")}, ExecStatus.MEMORY, "MemoryError"),
        ({"frame": message("invalid_output", None, "x")}, ExecStatus.INVALID_OUTPUT, "x"),
        # the caller checked the input before sending it: a child saying otherwise is forging
        ({"frame": message("invalid_input", None, "bad")}, ExecStatus.ERROR, "malformed"),
    ],
)
def test_failures(kwargs, status, error):
    result = verdict(**kwargs)
    assert result.status is status
    assert error in result.error
    assert result.output is None


def test_killed_wins_over_a_frame():
    assert verdict(killed="timeout", frame=message()).status is ExecStatus.TIMEOUT


def test_control_characters_are_escaped():
    result = verdict(frame=message("error", None, "\x1b[2Jfake\rline\x00"), stdout="ok\n\x1b]0;title\x07\tdone")
    assert result.error == "\\x1b[2Jfake\\rline\\x00"
    assert result.stdout == "ok\n\\x1b]0;title\\x07\tdone"


def test_text_is_made_json_safe():
    result = verdict(frame=message("error", None, "bad \ud800 surrogate"), stdout="\udcff")
    json.dumps(result.error, ensure_ascii=False).encode("utf-8")
    json.dumps(result.stdout, ensure_ascii=False).encode("utf-8")
    assert "\\ud800" in result.error


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        {"frame": None},
        {**report(), "extra": 1},
        report(returncode="0"),
        report(killed="other"),
        report(stdout=None),
        report(seconds="1"),
        report(frame=1),
        report(retiring=None),
    ],
)
def test_malformed_reports_raise(bad):
    with pytest.raises(MalformedReport):
        interpret(bad, **LIMITS)
