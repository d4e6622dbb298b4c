"""`azr exec`: run programs in the sandbox, JSON Lines in and out."""

from __future__ import annotations

import argparse
from typing import Any

from azr.cli import add_command, add_executor_options, answer_lines


def register(commands: Any) -> None:
    command = add_command(
        commands,
        "exec",
        help="run programs in the sandbox (JSON Lines in, JSON Lines out)",
        description=(
            "Run untrusted programs in the sandbox. Reads JSON Lines, one request per line: "
            '{"id": ..., "program": "def f(x): ...", "input": "1, [2, 3]"}; writes one line per '
            'request, in the same order: {"id", "status", "output", "error", "seconds"}. '
            "status is one of ok, error, timeout, memory, invalid_input, invalid_output."
        ),
    )
    command.add_argument("file", nargs="?", default="-", help="requests file (default: stdin)")
    command.add_argument("--stdout", action="store_true", help='add what each program printed, as "stdout"')
    command.add_argument(
        "--trace",
        type=int,
        default=0,
        metavar="N",
        help='add up to N trace events of each run (values of its variables, line by line), as "trace": '
        "[[line, name, value], ...]; for programs you trust (a program can forge its trace)",
    )
    add_executor_options(command)
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from azr.cli import UsageError
    from azr.executor import ExecRequest
    from azr.executor.protocol import ExecStatus, failed
    from azr.executor.trace import MAX_EVENTS

    if not 0 <= args.trace <= MAX_EVENTS:
        raise UsageError(f"--trace must be from 0 to {MAX_EVENTS}")

    def respond(request_id: Any, result: Any, problem: str) -> dict[str, Any]:
        result = result or failed(ExecStatus.INVALID_INPUT, problem)
        line = {"id": request_id, **result.to_json()}
        if args.stdout:
            line["stdout"] = result.stdout
        if args.trace:
            line["trace"] = [[e.line, e.name, e.value] for e in result.trace]
        return line

    def execute(executor: Any, items: list[tuple[str, str]]) -> list[Any]:
        return executor.run_batch([ExecRequest(program, input_, trace=args.trace) for program, input_ in items])

    return answer_lines(args, _request, execute, respond)


def _request(number: int, data: Any, problem: str) -> tuple[Any, tuple[str, str] | None, str]:
    """(id, (program, input) or None, problem)."""
    if problem:
        return None, None, problem
    if not isinstance(data, dict):
        return None, None, f'line {number}: expected an object like {{"program": ..., "input": ...}}'
    program, input_ = data.get("program"), data.get("input")
    if not isinstance(program, str):
        return data.get("id"), None, f'line {number}: "program" must be a string of Python source defining f'
    if not isinstance(input_, str):
        return data.get("id"), None, f'line {number}: "input" must be a string of Python literals, e.g. "1, [2, 3]"'
    return data.get("id"), (program, input_), ""
