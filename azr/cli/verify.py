"""`azr verify`: judge answers to tasks, JSON Lines in and out."""

from __future__ import annotations

import argparse
from typing import Any

from azr.cli import add_command, add_executor_options, answer_lines

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
    from azr.prompts import get_template
    from azr.tasks.verify import Verifier

    template = get_template(args.template) if args.template else None

    def respond(item_id: Any, verdict: Any, problem: str) -> dict[str, Any]:
        if verdict is None:
            return {"id": item_id, "correct": False, "reason": "invalid_task", "detail": problem}
        return {"id": item_id, "correct": verdict.correct, "reason": verdict.reason, "detail": verdict.detail}

    return answer_lines(
        args,
        lambda number, data, problem: _item(number, data, problem, template),
        lambda executor, items: Verifier(executor, args.equality).verify(items),
        respond,
    )


def _item(number: int, data: Any, problem: str, template: Any) -> tuple[Any, Any, str]:
    """(id, (task, answer) or None, problem) for one line; never raises."""
    if problem:
        return None, None, problem
    if not isinstance(data, dict):
        return None, None, f"line {number}: expected a JSON object"
    try:
        return _task_and_answer(number, data, template)
    except Exception as error:  # whatever a field holds, this line gets its answer and the rest are judged
        return data.get("id"), None, f"line {number}: cannot read the task ({type(error).__name__})"


def _task_and_answer(number: int, data: dict[str, Any], template: Any) -> tuple[Any, Any, str]:
    from azr.executor import NotPlainData
    from azr.tasks import Answer, InductionTask, TaskType, TripletTask

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
            inputs = tuple(_input(str(i)) for i, _ in pairs)
            outputs = tuple(_output(str(o)) for _, o in pairs)
            task: Any = InductionTask("", inputs, outputs, "", given=())  # every pair is checked
        else:
            fields = [data.get(k) for k in ("program", "input", "output")]
            if not all(isinstance(v, str) for v in fields):
                return item_id, None, f'line {number}: "program", "input" and "output" must be strings'
            program, input_, output = fields
            task = TripletTask(task_type, program, _input(input_), _output(output))
    except NotPlainData as error:
        return item_id, None, f"line {number}: the task's own input or output is not a literal: {error}"
    parsed = template.parse_answer(task_type, answer) if template is not None else Answer(task_type, answer)
    return item_id, (task, parsed), ""


def _input(text: str) -> str:
    """A task's input, canonical. One longer than the sandbox accepts is refused before parsing."""
    from azr.executor import ExecutorConfig, parse_arguments

    return parse_arguments(text, ExecutorConfig.max_input_chars).canonical()


def _output(text: str) -> str:
    """A task's output, canonical. One longer than any output the sandbox returns could never be
    matched: it is refused before parsing."""
    from azr.executor import ExecutorConfig, canonical, parse_value

    limit = ExecutorConfig.max_output_chars
    return canonical(parse_value(text, limit), limit)
