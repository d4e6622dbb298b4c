"""The `azr` command line: one module per command group, sharing the helpers here.

Bad arguments and unusable settings end in one line on stderr saying what to change, exit code 2.
Commands that read JSON Lines answer every line, in order, and keep going past bad ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

import azr


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class UsageError(Exception):
    """A bad argument or setting; printed as one line, exit code 2 (a message of several lines,
    from whatever it quotes, is joined into one)."""

    def __init__(self, message: object = "") -> None:
        super().__init__(" ".join(str(message).splitlines()))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="azr: %(levelname)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "handler", None):
        (args.parser if hasattr(args, "parser") else parser).print_help(sys.stderr)
        return 2
    code = _handle(args)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun, once the group is left: skip the interpreter's finalization, where gloo's
        # threads still holding tensors have aborted a rank (SIGABRT; pytorch PR 179291).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _handle(args: argparse.Namespace) -> int:
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"{args.prog}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `azr ... | head`
        return 0
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    from azr.cli import build, compare, evaluate, execute, report, tasks, train, verify

    parser = Parser(prog="azr", description="Absolute Zero Reasoner: self-play reasoning with zero data.")
    parser.add_argument("--version", action="version", version=f"azr {azr.__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    for module in (train, evaluate, compare, report, execute, verify, tasks, build):
        module.register(commands)
    return parser


def add_command(commands: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    command = commands.add_parser(name, **kwargs)
    command.set_defaults(prog=command.prog, parser=command)
    return command


# -- executor options, shared by every command that runs programs --------------------------------


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """--timeout, --memory-mb, --workers, --isolation; unset, they are the run config's defaults
    (azr.config.ExecutorSection), or the section given to `executor_from`."""
    from azr.config import ExecutorSection, Isolation, choices

    d = ExecutorSection()
    group = parser.add_argument_group("sandbox")
    group.add_argument("--timeout", type=float, metavar="SECONDS", help=f"wall clock per program ({d.timeout:g})")
    group.add_argument("--memory-mb", type=int, metavar="MB", help=f"address space per program ({d.memory_mb})")
    group.add_argument("--workers", type=int, help="programs at once (0: one per CPU core)")
    group.add_argument("--isolation", choices=choices(Isolation), help=f"sandbox layer ({d.isolation})")


def executor_from(args: argparse.Namespace, section: Any = None) -> Any:
    """An Executor with the shared options over `section` (a run's ExecutorSection; default: the
    config's defaults); bad values are a UsageError."""
    import dataclasses

    from azr.config import ExecutorSection
    from azr.executor import Executor, ExecutorConfig

    settings = dataclasses.asdict(section or ExecutorSection())
    for key in settings:
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    try:
        config = ExecutorConfig(**settings)
    except ValueError as error:
        raise UsageError(str(error).split(", got ")[0].removeprefix("executor config: ")) from None
    return Executor(config)


# -- JSON Lines -----------------------------------------------------------------------------------


class Input:
    """The lines of a file the user gave (`-`: stdin), read as they come; a line that is not UTF-8
    is a UsageError naming it. A context manager: closing it leaves stdin open."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._text: IO[str] = sys.stdin
        self._binary: IO[bytes] | None = getattr(sys.stdin, "buffer", None)  # None: a test's StringIO
        if path == "-":
            return
        if Path(path).is_dir():
            raise UsageError(f"{path} is a directory: give a file, one JSON object per line")
        try:
            self._binary = open(path, "rb")  # noqa: SIM115
        except OSError as error:
            raise UsageError(f"cannot read {path}: {error.strerror or error}") from None

    def __iter__(self) -> Iterator[str]:
        from azr.userfiles import UserFileError, text_lines

        if self._binary is None:
            yield from self._text
            return
        try:
            yield from text_lines(self._binary, "stdin" if self.path == "-" else self.path)
        except UserFileError as error:
            raise UsageError(str(error)) from None

    def close(self) -> None:
        if self.path != "-" and self._binary is not None:
            self._binary.close()

    def __enter__(self) -> Input:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_input(path: str) -> Input:
    """A file of lines the user gave, or stdin for `-`; a missing, unreadable or directory path is a UsageError."""
    return Input(path)


def json_lines(lines: Iterable[str]) -> Iterator[tuple[int, Any, str]]:
    """(line number, object or None, problem) for each non-blank line."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), ""
        except (ValueError, RecursionError) as error:  # a line nested 100,000 deep is not JSON to us
            yield number, None, f"line {number}: not JSON ({error})"


def answer_lines(
    args: argparse.Namespace,
    parse: Callable[[int, Any, str], tuple[Any, Any, str]],
    run: Callable[[Any, list[Any]], list[Any]],
    respond: Callable[[Any, Any, str], dict[str, Any]],
) -> int:
    """Answer each JSON line of `args.file` with one line on stdout, in order, in batches.

    `parse(number, data, problem)` gives (id, item or None, problem) for a line; `run(executor,
    items)` gives one outcome per valid item; `respond(id, outcome or None, problem)` the output line.
    """
    from azr.executor import ExecutorError

    source = open_input(args.file)
    try:
        with executor_from(args) as executor:
            for chunk in chunks(json_lines(source), 32 * executor.config.worker_count):
                parsed = [parse(number, data, problem) for number, data, problem in chunk]
                valid = [(i, item) for i, (_, item, _) in enumerate(parsed) if item is not None]
                outcomes = run(executor, [item for _, item in valid])
                by_line = dict(zip((i for i, _ in valid), outcomes, strict=True))
                for i, (item_id, _, problem) in enumerate(parsed):
                    write_line(sys.stdout, respond(item_id, by_line.get(i), problem))
                sys.stdout.flush()
    except ExecutorError as error:
        raise UsageError(str(error)) from None
    finally:
        source.close()
    return 0


def chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_line(out: IO[str], obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj) + "\n")


def store_path(run_dir: str, must_exist: bool) -> Path:
    """The task store of `--run-dir`; when it need not exist, the directory is made (a UsageError if it cannot be)."""
    directory = Path(run_dir)
    path = directory / "tasks.db"
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--run-dir {run_dir} is not a directory: give a run directory")
    if must_exist and not path.exists():
        raise UsageError(f"no task store at {path}: create one with `azr tasks import` (or `azr train`)")
    if not must_exist:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"--run-dir {run_dir}: cannot create it: {error.strerror or error}") from None
    return path


if __name__ == "__main__":
    sys.exit(main())
