"""The `azr` command line.

Bad arguments and unusable settings end in one line on stderr saying what to change, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from typing import IO, Any, NoReturn

import azr


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class UsageError(Exception):
    """A bad argument or setting; printed as one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="azr: %(levelname)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"azr {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="azr", description="Absolute Zero Reasoner: self-play reasoning with zero data.")
    parser.add_argument("--version", action="version", version=f"azr {azr.__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    exec_ = commands.add_parser(
        "exec",
        help="run programs in the sandbox (JSON Lines in, JSON Lines out)",
        description=(
            "Run untrusted programs in the sandbox. Reads JSON Lines, one request per line: "
            '{"id": ..., "program": "def f(x): ...", "input": "1, [2, 3]"}; writes one line per '
            'request, in the same order: {"id", "status", "output", "error", "seconds"}. '
            "status is one of ok, error, timeout, memory, invalid_input, invalid_output."
        ),
    )
    exec_.add_argument("file", nargs="?", default="-", help="requests file (default: stdin)")
    exec_.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="wall clock per program (10)")
    exec_.add_argument("--memory-mb", type=int, default=1024, metavar="MB", help="address space per program (1024)")
    exec_.add_argument("--workers", type=int, default=0, help="programs at once (0: one per CPU core)")
    exec_.add_argument(
        "--isolation", choices=["auto", "bwrap", "none"], default="auto", help="sandbox layer (auto: bwrap if it works)"
    )
    exec_.add_argument("--stdout", action="store_true", help='add what each program printed, as "stdout"')
    exec_.set_defaults(handler=_exec)
    return parser


def _exec(args: argparse.Namespace) -> int:
    from azr.executor import Executor, ExecutorConfig, ExecutorError
    from azr.executor.protocol import ExecStatus, failed

    try:
        config = ExecutorConfig(
            timeout=args.timeout, memory_mb=args.memory_mb, workers=args.workers, isolation=args.isolation
        )
    except ValueError as error:
        raise UsageError(str(error).split(", got ")[0].removeprefix("executor config: ")) from None
    source = _open(args.file)
    out = sys.stdout
    try:
        with Executor(config) as executor:
            chunk_size = 32 * config.worker_count
            for chunk in _chunks(_requests(source), chunk_size):
                runnable = [(i, request) for i, (_, request, _) in enumerate(chunk) if request is not None]
                results = executor.run_batch([request for _, request in runnable])
                by_index = dict(zip((i for i, _ in runnable), results, strict=True))
                for i, (request_id, _, problem) in enumerate(chunk):
                    result = by_index.get(i) or failed(ExecStatus.INVALID_INPUT, problem)
                    line: dict[str, Any] = {"id": request_id, **result.to_json()}
                    if args.stdout:
                        line["stdout"] = result.stdout
                    out.write(json.dumps(line) + "\n")
                out.flush()
    except ExecutorError as error:
        raise UsageError(str(error)) from None
    finally:
        if source is not sys.stdin:
            source.close()
    return 0


def _open(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None


def _requests(lines: IO[str]) -> Iterator[tuple[Any, Any, str]]:
    """(id, ExecRequest or None, problem) for each non-blank line."""
    from azr.executor import ExecRequest

    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as error:
            yield None, None, f"line {number}: not JSON ({error})"
            continue
        if not isinstance(data, dict):
            yield None, None, f'line {number}: expected an object like {{"program": ..., "input": ...}}'
            continue
        request_id = data.get("id")
        program, input_ = data.get("program"), data.get("input")
        if not isinstance(program, str):
            yield request_id, None, f'line {number}: "program" must be a string of Python source defining f'
        elif not isinstance(input_, str):
            yield request_id, None, f'line {number}: "input" must be a string of Python literals, e.g. "1, [2, 3]"'
        else:
            yield request_id, ExecRequest(program, input_), ""


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


if __name__ == "__main__":
    sys.exit(main())
