"""`azr tasks`: validate seed files, and import, export, list and show a run's task store."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

from azr.cli import UsageError, add_command, add_executor_options, executor_from, open_input, store_path, write_line


def register(commands: Any) -> None:
    tasks = add_command(commands, "tasks", help="validate, import, export, list and show tasks")
    actions = tasks.add_subparsers(dest="action", metavar="ACTION", parser_class=type(tasks))

    validate = add_command(
        actions,
        "validate",
        help="validate a seed-format file, one JSON line per row",
        description="Validate each row of a task file in the AZR authors' format (snippet, input[s], message): "
        'writes {"valid", "reason", "detail", "output"} per row, "output" being the recomputed output(s).',
    )
    validate.add_argument("file", help="JSONL file ('-' for stdin)")
    _task_type_option(validate, required=True)
    add_executor_options(validate)
    validate.set_defaults(handler=run_validate)

    import_ = add_command(
        actions,
        "import",
        help="validate a seed-format file and add its valid rows to a run's task store",
        description="Validate the rows of a task file (or the identity triplet) and add the valid ones to "
        "RUN_DIR/tasks.db at step 0, skipping duplicates. Prints a summary.",
    )
    import_.add_argument("file", nargs="?", help="JSONL file in the authors' format")
    import_.add_argument("--identity", action="store_true", help="add the identity triplet (deduction, abduction)")
    _run_dir_option(import_)
    _task_type_option(import_, required=False)
    import_.add_argument("--max-tasks", type=int, help="cap per task type; the oldest are evicted")
    add_executor_options(import_)
    import_.set_defaults(handler=run_import)

    export = add_command(actions, "export", help="write a run's tasks as JSONL (the authors' format, re-importable)")
    _run_dir_option(export)
    _task_type_option(export, required=False)
    export.add_argument("--out", default="-", help="file to write (default: stdout)")
    export.set_defaults(handler=run_export)

    list_ = add_command(actions, "list", help="one line per task: id, type, step, source, program, input -> output")
    _run_dir_option(list_)
    _task_type_option(list_, required=False)
    list_.add_argument("--limit", type=int, default=50, help="at most this many (default 50; 0: all)")
    list_.set_defaults(handler=run_list)

    show = add_command(actions, "show", help="one task in full")
    _run_dir_option(show)
    show.add_argument("id", type=int, help="task id (from `azr tasks list`)")
    show.set_defaults(handler=run_show)


def _run_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", required=True, metavar="DIR", help="the run directory (holds tasks.db)")


def _task_type_option(parser: argparse.ArgumentParser, required: bool) -> None:
    from azr.tasks.registry import REGISTRY

    parser.add_argument("--task-type", choices=list(REGISTRY), required=required)


def _validator(executor: Any) -> Any:
    from azr.tasks.validate import Validator

    return Validator(executor)


def run_validate(args: argparse.Namespace) -> int:
    from azr.tasks import InductionTask
    from azr.tasks.seeds import read_rows

    with open_input(args.file) as source:
        proposals = list(read_rows(source, args.task_type))
    with executor_from(args) as executor:
        for validation in _validator(executor).validate(proposals):
            task = validation.task
            output = None if task is None else list(task.outputs) if isinstance(task, InductionTask) else task.output  # type: ignore[union-attr]
            write_line(
                sys.stdout,
                {
                    "valid": validation.valid,
                    "reason": "valid" if validation.valid else validation.rejection.value,  # type: ignore[union-attr]
                    "detail": validation.detail,
                    "output": output,
                },
            )
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Validate and add tasks to a run's store, as its one writer, before it trains."""
    from azr.disk import WriteRefused
    from azr.run.rundir import MANIFEST, RunDirError, RunLock
    from azr.tasks.seeds import identity_proposals, read_rows, source_name
    from azr.tasks.store import StoreError, TaskStore

    if not args.file and not args.identity:
        raise UsageError("give a FILE to import, or --identity")
    if args.file and not args.task_type:
        raise UsageError("--task-type is required with a FILE (deduction, abduction, induction...)")
    if args.max_tasks is not None and args.max_tasks < 1:
        raise UsageError("--max-tasks must be >= 1")
    batches = []
    if args.identity:
        batches.append(("identity", identity_proposals()))
    if args.file:
        with open_input(args.file) as source:
            batches.append((source_name(args.file), list(read_rows(source, args.task_type))))
    path = store_path(args.run_dir, must_exist=False)
    try:
        with RunLock(path.parent, "azr tasks import"):
            if (path.parent / MANIFEST).exists():
                raise UsageError(
                    f"{args.run_dir} is a training run ({MANIFEST}): tasks added now would differ from what its "
                    "checkpoints saw; import before the first `azr train`, or into a new --run-dir"
                )
            with TaskStore(path, max_tasks=args.max_tasks) as store, executor_from(args) as executor:
                _import(store, _validator(executor), batches)
    except (StoreError, RunDirError, WriteRefused) as error:  # a full or read-only disk too: that batch is not added
        raise UsageError(str(error)) from None
    return 0


def _import(store: Any, validator: Any, batches: list[tuple[str, list[Any]]]) -> None:
    from azr.tasks.registry import PAPER, REGISTRY
    from azr.tasks.validate import rejection_counts

    for name, proposals in batches:
        validations = validator.validate(proposals, step=0, source=name)
        stored = store.try_add([v.task for v in validations if v.task is not None])
        added, duplicates = sum(s is True for s in stored), sum(s is False for s in stored)
        counts = rejection_counts(validations)
        counts["internal_error"] = counts.get("internal_error", 0) + len(stored) - added - duplicates
        rejected = {k: v for k, v in counts.items() if k != "valid" and v}
        print(
            f"{name}: {added} tasks added, {duplicates} duplicates, "
            f"{sum(rejected.values())} rejected" + (f" ({_summary(rejected)})" if rejected else ""),
            file=sys.stderr,
        )
    counts = {name: store.count(name) for name in REGISTRY}
    shown = ", ".join(f"{name} {n}" for name, n in counts.items() if name in PAPER or n)
    print(f"{store.path}: {shown}", file=sys.stderr)


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


@contextlib.contextmanager
def _open_store(args: argparse.Namespace) -> Iterator[Any]:
    """A run's store, read-only: no lock, nothing written, so it works on a training or archived
    run. A damaged file is a UsageError wherever the damage is met."""
    import sqlite3

    from azr.tasks.store import StoreError, TaskStore

    path = store_path(args.run_dir, must_exist=True)
    try:
        with TaskStore(path, readonly=True) as store:
            yield store
    except StoreError as error:
        raise UsageError(str(error)) from None
    except sqlite3.DatabaseError as error:
        raise UsageError(f"{path} is damaged ({error}): restore it from a copy") from None


def _task_type(args: argparse.Namespace) -> Any:
    return getattr(args, "task_type", None) or None


def run_export(args: argparse.Namespace) -> int:
    from azr.tasks.seeds import export_row

    with _open_store(args) as store:
        try:
            out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as error:
            raise UsageError(f"--out {args.out}: cannot write it: {error.strerror or error}") from None
        try:
            for task in store.tasks(_task_type(args)):
                write_line(out, export_row(task))
        finally:
            if out is not sys.stdout:
                out.close()
    return 0


def run_list(args: argparse.Namespace) -> int:
    from azr.tasks.registry import family

    if args.limit < 0:
        raise UsageError("--limit must be >= 0 (0: all)")
    with _open_store(args) as store:
        for task_id, task in store.rows(_task_type(args), limit=args.limit or None):
            head = _one_line(task.program.strip().splitlines()[-1] if task.program.strip() else "", 40)
            what = _one_line(family(task.task_type).summary(task), 64)
            print(f"{task_id:>6}  {task.task_type:<9}  step {task.step:<5}  {task.source:<20}  {head:<40}  {what}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from azr.tasks.seeds import export_row

    with _open_store(args) as store:
        task = store.get(args.id)
        if task is None:
            raise UsageError(f"no task {args.id} in {store.path}")
        row = export_row(task)
        print(f"task {args.id}: {row.pop('task_type')}, step {row.pop('step')}, source {row.pop('source')}")
        print(textwrap.indent(row.pop("snippet"), "    "))
        for key, value in row.items():
            print(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    return 0


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
