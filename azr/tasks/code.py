"""What the code families (deduction, abduction, induction) share: inputs as literal argument lists,
outputs as task data, and the prompt's rules for programs (AZR.md section 3)."""

from __future__ import annotations

from collections.abc import Sequence

from azr.executor import NotPlainData, parse_arguments, parse_value
from azr.tasks import Rejection, Validation
from azr.tasks.family import Rules
from azr.tasks.programs import ProgramCheck, check_program

PROGRAM_PLACEHOLDER = "def f(...):\n    ..."

INPUT_RULE = """- An input is the argument list of one call to `f`, written as Python literals, e.g. `'abc', [1, 2]`
  or `nums=[3, 1], k=2`."""

PROGRAM_RULES = (
    """Rules:
- The program defines a function named `f`; helper functions and classes may come before it.
- It is deterministic: the same input always gives the same output.
- It must not use any of: {banned}.
"""
    + INPUT_RULE
    + """
- `f` returns plain data: None, bool, int, float, str, bytes, and lists, tuples, dicts and sets of those."""
)


def program_rules(banned: Sequence[str]) -> str:
    return PROGRAM_RULES.format(banned=", ".join(banned) if banned else "randomness, the clock, files or the network")


def is_utf8(*texts: str) -> bool:
    try:
        for text in texts:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


NOT_UTF8 = "the text is not valid UTF-8 (a lone surrogate?)"


def checked_program(program: str, texts: Sequence[str], rules: Rules) -> ProgramCheck | Validation:
    """The static filter's verdict on a proposal's program (its imports, when it passes), once the
    program and the proposal's other `texts` are all UTF-8; else the rejection."""
    if not is_utf8(program, *texts):
        return Validation(None, Rejection.FORMAT, NOT_UTF8)
    check = check_program(program, rules.filter)
    return check if check.ok else Validation(None, check.rejection, check.detail)


NOT_TASK_DATA = "complex numbers and Ellipsis are plain data, but not task data (AZR.md section 3)"


def canonical_inputs(texts: Sequence[str], rules: Rules) -> tuple[str, ...] | Validation:
    """The distinct inputs, canonical, in order of first appearance; or the rejection of the first
    that is not a literal argument list of task data."""
    inputs: list[str] = []
    for text in texts:
        try:
            arguments = parse_arguments(text, rules.max_input_chars)
        except NotPlainData as error:
            return Validation(None, Rejection.INVALID_INPUT, f"{text[:100]!r}: {error}")
        if not is_task_data([arguments.args, arguments.kwargs]):
            return Validation(None, Rejection.INVALID_INPUT, f"{text[:100]!r}: {NOT_TASK_DATA}")
        if arguments.canonical() not in inputs:
            inputs.append(arguments.canonical())
    return tuple(inputs)


def outputs_are_task_data(outputs: Sequence[str], rules: Rules) -> Validation | None:
    """None when every output (a canonical repr within the sandbox's limit) is task data."""
    if all(is_task_data(parse_value(output, max_chars=rules.max_output_chars)) for output in outputs):
        return None
    return Validation(None, Rejection.INVALID_OUTPUT, NOT_TASK_DATA)


def is_task_data(value: object) -> bool:
    """Plain data without complex numbers or Ellipsis: what AZR tasks are made of."""
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) is complex or item is Ellipsis:
            return False
        if type(item) in (list, tuple, set, frozenset):
            pending.extend(item)  # type: ignore[arg-type]
        elif type(item) is dict:
            pending.extend(item.keys())  # type: ignore[union-attr]
            pending.extend(item.values())  # type: ignore[union-attr]
    return True


def strings(row: dict, key: str) -> list[str] | None:
    """row[key] when it is a list of strings, else None."""
    value = row.get(key)
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def task_input(text: str) -> str:
    """A task's input given by a user (`azr verify`), canonical. One longer than the sandbox
    accepts is refused before parsing."""
    from azr.executor import ExecutorConfig

    return parse_arguments(text, ExecutorConfig.max_input_chars).canonical()


def task_output(text: str) -> str:
    """A task's output given by a user, canonical. One longer than any output the sandbox returns
    could never be matched: it is refused before parsing."""
    from azr.executor import ExecutorConfig, canonical

    limit = ExecutorConfig.max_output_chars
    return canonical(parse_value(text, limit), limit)
