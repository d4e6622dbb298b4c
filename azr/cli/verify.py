"""`azr verify`: judge answers to tasks, JSON Lines in and out."""

from __future__ import annotations

import argparse
from typing import Any

from azr.cli import add_command, add_executor_options, answer_lines

DESCRIPTION = """Judge answers. One JSON object per line:
  {"id": ..., "task_type": "deduction" or "abduction", "program": ..., "input": ..., "output": ..., "answer": ...}
  {"id": ..., "task_type": "induction", "pairs": [[input, output], ...], "answer": program}
  {"id": ..., "task_type": "math", "output": "3/4", "answer": "... \\boxed{0.75}"}
For deduction the answer is an output literal, for abduction an argument list, for induction a
program that must reproduce every pair, for math a final answer in \\boxed{} that math-verify
finds equal to the output (needs pip install 'azr[math]'). Writes one line per answer, in order:
  {"id": ..., "correct": true|false, "reason": ..., "detail": ...}
reason is `correct`, a mistake (format, not_a_literal, banned, wrong, error, timeout, memory,
invalid_output) or `invalid_task` for a line that does not describe a task."""


def register(commands: Any) -> None:
    command = add_command(
        commands,
        "verify",
        help="judge answers to deduction, abduction, induction and math tasks",
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
    add_executor_options(command)
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
        lambda executor, items: _verify(Verifier(executor, args.equality), items),
        respond,
    )


def _verify(verifier: Any, items: Any) -> Any:
    try:
        return verifier.verify(items)
    finally:
        verifier.close()


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
    from azr.tasks import Answer
    from azr.tasks.registry import REGISTRY, family

    item_id = data.get("id")
    task_type = data.get("task_type")
    if task_type not in REGISTRY:
        return item_id, None, f'line {number}: "task_type" must be one of {", ".join(REGISTRY)}'
    answer = data.get("answer")
    if not isinstance(answer, str):
        return item_id, None, f'line {number}: "answer" must be a string'
    try:
        task = family(task_type).verify_item(data)
    except NotPlainData as error:
        return item_id, None, f"line {number}: the task's own input or output is not a literal: {error}"
    if isinstance(task, str):
        return item_id, None, f"line {number}: {task}"
    parsed = template.parse_answer(task_type, answer) if template is not None else Answer(task_type, answer)
    return item_id, (task, parsed), ""
