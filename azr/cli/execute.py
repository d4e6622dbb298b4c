"""`azr exec`: run programs in the sandbox, JSON Lines in and out."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from azr.cli import (
    UsageError,
    add_command,
    add_executor_options,
    chunks,
    executor_from,
    json_lines,
    open_input,
    write_line,
)


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
    add_executor_options(command)
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from azr.executor import ExecRequest, ExecutorError
    from azr.executor.protocol import ExecStatus, failed

    source = open_input(args.file)
    try:
        with executor_from(args) as executor:
            for chunk in chunks(json_lines(source), 32 * executor.config.worker_count):
                parsed = [_request(number, data, problem) for number, data, problem in chunk]
                runnable = [(i, request) for i, (_, request, _) in enumerate(parsed) if request is not None]
                results = executor.run_batch([ExecRequest(*request) for _, request in runnable])
                by_index = dict(zip((i for i, _ in runnable), results, strict=True))
                for i, (request_id, _, problem) in enumerate(parsed):
                    result = by_index.get(i) or failed(ExecStatus.INVALID_INPUT, problem)
                    line = {"id": request_id, **result.to_json()}
                    if args.stdout:
                        line["stdout"] = result.stdout
                    write_line(sys.stdout, line)
                sys.stdout.flush()
    except ExecutorError as error:
        raise UsageError(str(error)) from None
    finally:
        if source is not sys.stdin:
            source.close()
    return 0


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
