"""`azr verify`: judge answers to tasks, JSON Lines in and out."""

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

DESCRIPTION = """Judge answers. One JSON object per line:
  {"id": ..., "task_type": "deduction" or "abduction", "program": ..., "input": ..., "output": ..., "answer": ...}
  {"id": ..., "task_type": "induction", "pairs": [[input, output], ...], "answer": program}
For deduction the answer is an output literal, for abduction an argument list, for induction a
program that must reproduce every pair. Writes one line per answer, in order:
  {"id": ..., "correct": true|false, "reason": ..., "detail": ...}
reason is `correct`, a mistake (format, not_a_literal, banned, wrong, error, timeout, memory,
invalid_output) or `invalid_task` for a line that does not describe a task."""


def register(commands: Any) -> None:
    command = add_command(
        commands,
        "verify",
        help="judge answers to deduction, abduction and induction tasks",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("file", nargs="?", default="-", help="answers file (default: stdin)")
    command.add_argument(
        "--equality",
        choices=["strict", "python"],
        default="strict",
        help="strict: 1, 1.0, True and list/tuple differ (default); python: Python's == (as CRUXEval)",
    )
    command.add_argument(
        "--template",
        choices=["azr", "compact"],
        help="the answers are whole completions in this template's format, to be parsed first",
    )
    add_executor_options(command, timeout=10.0)
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from azr.executor import ExecutorError
    from azr.prompts import get_template
    from azr.verify import Verifier

    template = get_template(args.template) if args.template else None
    source = open_input(args.file)
    try:
        with executor_from(args) as executor:
            verifier = Verifier(executor, args.equality)
            for chunk in chunks(json_lines(source), 32 * executor.config.worker_count):
                items = [_item(number, data, problem, template) for number, data, problem in chunk]
                valid = [(i, pair) for i, (_, pair, _) in enumerate(items) if pair is not None]
                verdicts = dict(zip((i for i, _ in valid), verifier.verify([p for _, p in valid]), strict=True))
                for i, (item_id, _, problem) in enumerate(items):
                    if i in verdicts:
                        v = verdicts[i]
                        write_line(
                            sys.stdout, {"id": item_id, "correct": v.correct, "reason": v.reason, "detail": v.detail}
                        )
                    else:
                        write_line(
                            sys.stdout, {"id": item_id, "correct": False, "reason": "invalid_task", "detail": problem}
                        )
                sys.stdout.flush()
    except ExecutorError as error:
        raise UsageError(str(error)) from None
    finally:
        if source is not sys.stdin:
            source.close()
    return 0


def _item(number: int, data: Any, problem: str, template: Any) -> tuple[Any, Any, str]:
    """(id, (task, answer) or None, problem) for one line."""
    from azr.executor import NotPlainData, canonical, parse_arguments, parse_value
    from azr.tasks import Answer, InductionTask, TaskType, TripletTask

    if problem:
        return None, None, problem
    if not isinstance(data, dict):
        return None, None, f"line {number}: expected a JSON object"
    item_id = data.get("id")
    try:
        task_type = TaskType(data.get("task_type"))
    except ValueError:
        return item_id, None, f'line {number}: "task_type" must be deduction, abduction or induction'
    answer = data.get("answer")
    if not isinstance(answer, str):
        return item_id, None, f'line {number}: "answer" must be a string'
    try:
        if task_type is TaskType.INDUCTION:
            pairs = data.get("pairs")
            if not (isinstance(pairs, list) and pairs and all(isinstance(p, list) and len(p) == 2 for p in pairs)):
                return item_id, None, f'line {number}: "pairs" must be a non-empty list of [input, output]'
            inputs = tuple(parse_arguments(str(i)).canonical() for i, _ in pairs)
            outputs = tuple(canonical(parse_value(str(o))) for _, o in pairs)
            task: Any = InductionTask("", inputs, outputs, "", given=())  # every pair is checked
        else:
            fields = [data.get(k) for k in ("program", "input", "output")]
            if not all(isinstance(v, str) for v in fields):
                return item_id, None, f'line {number}: "program", "input" and "output" must be strings'
            program, input_, output = fields
            task = TripletTask(task_type, program, parse_arguments(input_).canonical(), canonical(parse_value(output)))
    except NotPlainData as error:
        return item_id, None, f"line {number}: the task's own input or output is not a literal: {error}"
    parsed = template.parse_answer(task_type, answer) if template is not None else Answer(task_type, answer)
    return item_id, (task, parsed), ""
