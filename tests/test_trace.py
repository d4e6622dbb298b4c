"""Trace mode (azr.executor.trace): the values a program's variables take, recorded in the sandbox."""

import json

import pytest
from test_protocol import LIMITS, report

from azr.executor import ExecRequest, ExecStatus, Policy, TraceEvent
from azr.executor.protocol import interpret
from azr.executor.trace import MAX_EVENTS, VALUE_CHARS


def traced(sandbox, program, input, cap=32, policy=None):
    result = sandbox.run_batch([ExecRequest(program, input, policy=policy, trace=cap)])[0]
    return result, [(e.line, e.name, e.value) for e in result.trace]


def test_each_line_shows_what_it_changed(sandbox):
    program = "def f(x):\n    y = x + 3\n    y = y * 2\n    return y - 1"
    result, events = traced(sandbox, program, "4", policy=Policy())
    assert result.output == "13"
    assert events == [(1, "x", "4"), (2, "y", "7"), (3, "y", "14"), (4, "return", "13")]


def test_mutation_loops_and_helpers_are_followed_comprehensions_are_not(sandbox):
    program = (
        "def double(v):\n    return v * 2\n\n"
        "def f(nums):\n    out = []\n    for e in nums:\n        out.append(double(e))\n"
        "    total = sum([e + 1 for e in out])\n    return total"
    )
    result, events = traced(sandbox, program, "[1, 5]")
    assert result.output == "14"
    assert events == [
        (4, "nums", "[1, 5]"), (5, "out", "[]"), (6, "e", "1"),
        (1, "v", "1"), (2, "return", "2"), (7, "out", "[2]"),
        (6, "e", "5"),
        (1, "v", "5"), (2, "return", "10"), (7, "out", "[2, 10]"),
        (8, "total", "14"), (9, "return", "14"),
    ]  # fmt: skip


def test_the_cap_cuts_the_trace_with_an_ellipsis_and_the_run_goes_on(sandbox):
    program = "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t"
    result, events = traced(sandbox, program, "100", cap=5)
    assert result.output == "4950"
    assert len(events) == 5
    assert events[:4] == [(1, "n", "100"), (2, "t", "0"), (3, "i", "0"), (3, "i", "1")]
    assert events[4][1:] == ("...", "...")
    _, events = traced(sandbox, "def f(x):\n    return x", "1", cap=2)
    assert events == [(1, "x", "1"), (2, "return", "1")]  # exactly the cap: not cut


def test_values_that_are_not_plain_or_too_long(sandbox):
    program = "def f(x):\n    g = (v for v in range(x))\n    s = 'a' * 200\n    return len(s)"
    _, events = traced(sandbox, program, "3")
    assert ("g", "<generator>") in [(name, value) for _, name, value in events]
    assert ("s", "...") in [(name, value) for _, name, value in events]
    assert all(len(value) <= VALUE_CHARS for _, _, value in events)


def test_untraced_by_default_and_no_trace_for_a_failed_run(sandbox):
    assert sandbox.run("def f(x):\n    y = x\n    return y", "1").trace == ()
    result, events = traced(sandbox, "def f(x):\n    y = x\n    return 1 // 0", "1")
    assert result.status is ExecStatus.ERROR and events == []


@pytest.mark.parametrize("cap", [-1, MAX_EVENTS + 1, 1.5, True])
def test_a_bad_cap_is_refused_before_anything_runs(sandbox, cap):
    result = sandbox.run_batch([ExecRequest("def f(x):\n    return x", "1", trace=cap)])[0]
    assert result.status is ExecStatus.INVALID_INPUT and "trace" in result.error


def frame(**extra):
    return json.dumps({"status": "ok", "output": "1", "error": "", **extra})


def test_a_well_formed_trace_is_read():
    result = interpret(report(frame=frame(trace=[[1, "x", "1"], [2, "return", "1"]])), **LIMITS)
    assert result.trace == (TraceEvent(1, "x", "1"), TraceEvent(2, "return", "1"))


@pytest.mark.parametrize(
    "trace",
    [
        "x=1",
        [[1, "x"]],
        [["1", "x", "1"]],
        [[1, "x", 1]],
        [[1, "x", "\x1b[2J"]],
        [[1, "x", "a" * 201]],
        [[1, "x", "1"]] * (MAX_EVENTS + 1),
    ],
)
def test_a_forged_or_malformed_trace_makes_the_message_malformed(trace):
    result = interpret(report(frame=frame(trace=trace)), **LIMITS)
    assert result.status is ExecStatus.ERROR and "malformed" in result.error
    failed = json.dumps({"status": "error", "output": None, "error": "x", "trace": []})
    assert "malformed" in interpret(report(frame=failed), **LIMITS).error
