"""Seeding the buffers: the identity triplet, and task files in the reference implementation's format.

The AZR authors' JSONL rows (two such files are in ../shared/data/azr-seeds):

    triplets:  {"snippet": program, "input": "...", "output": "...", "imports": ["import re", ...]}
    induction: {"snippet": program, "inputs": [...], "outputs": [...], "message": "...", "imports": [...]}

Rows are read as proposals, to be validated like any other (outputs are recomputed in the sandbox;
the file's own are not trusted: the authors' were cut at 400 characters). `export_row` writes the
same format, with our task type, step, source and given indices added. An export imports again,
re-validated like any file: the step, source and induction split are assigned anew.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from azr.tasks import FormatError, Proposal, Task, TaskType, TripletProposal
from azr.tasks.registry import family

IDENTITY_PROGRAM = "def f(a):\n    return a"
IDENTITY_INPUT = "'Hello world'"


def identity_proposals() -> list[TripletProposal]:
    """The only human seed of AZR: the identity function, for the deduction and abduction buffers."""
    return [TripletProposal(t, IDENTITY_PROGRAM, IDENTITY_INPUT) for t in (TaskType.DEDUCTION, TaskType.ABDUCTION)]


def read_rows(lines: IO[str] | list[str], task_type: str) -> Iterator[Proposal | FormatError]:
    """One proposal (or FormatError saying what is wrong) per non-blank line of a seed file."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as error:  # a line nested 100,000 deep is not JSON to us
            yield FormatError(f"line {number}: not JSON ({error})")
            continue
        yield _proposal(row, task_type, number)


def _proposal(row: Any, task_type: str, number: int) -> Proposal | FormatError:
    if not isinstance(row, dict) or not isinstance(row.get("snippet", row.get("program")), str):
        return FormatError(f'line {number}: expected an object with a "snippet" string')
    program = row.get("snippet", row.get("program"))
    imports = row.get("imports") or []
    if not (isinstance(imports, list) and all(isinstance(i, str) for i in imports)):
        return FormatError(f'line {number}: "imports" must be a list of strings')
    missing = _missing_imports(imports, program)
    if missing:  # the authors kept imports beside the snippet; ours live in the program
        program = "\n".join(missing) + "\n" + program
    proposal = family(task_type).read_row({**row, "program": program})
    return FormatError(f"line {number}: {proposal}") if isinstance(proposal, str) else proposal


def _missing_imports(imports: list[str], program: str) -> list[str]:
    """The imports, each once, that are not already lines of the program (blanks aside): "import re"
    is not in a program that imports random, though it is a substring of it."""
    lines = {line.strip() for line in program.splitlines()}
    missing = (i.strip() for i in imports if i.strip())
    return [i for i in dict.fromkeys(missing) if not all(line.strip() in lines for line in i.splitlines())]


def export_row(task: Task) -> dict[str, Any]:
    """A task as a row of the reference format, plus `task_type`, `step`, `source` (and `given`)."""
    return family(task.task_type).export_row(task)


def source_name(path: str | Path) -> str:
    return f"seed:{Path(path).name}"
