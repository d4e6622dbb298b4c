"""What deduction and abduction share: a triplet (program, input, output), proposed with K
reference triplets of the same type to differ from (AZR paper section 3.2; AZR.md section 2)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from azr.tasks import FormatError, Proposal, Role, Task, TripletProposal, TripletTask, Validation
from azr.tasks.code import (
    PROGRAM_PLACEHOLDER,
    canonical_inputs,
    checked_program,
    outputs_are_task_data,
    program_rules,
    task_input,
    task_output,
)
from azr.tasks.family import Ask, AskOptions, Build, Expect, Field, Fields, Rules, Runs, TaskFamily
from azr.tasks.programs import dedup_key

if TYPE_CHECKING:
    from azr.tasks.store import TaskStore


class TripletFamily(TaskFamily):
    columns = ("program", "input", "output")
    propose_fields = (Expect("python", placeholder=PROGRAM_PLACEHOLDER), Expect("input"))
    harder: str
    """What makes the task hard for its solver, told to the proposer (the reference implementation
    had the deduction and abduction versions of this sentence swapped)."""

    def references(self, store: TaskStore, k: int, rng: random.Random) -> list[Task] | None:
        return store.references(self.name, k, rng)

    def propose_ask(self, references: Sequence[Task], options: AskOptions) -> Ask:
        prose = (
            self.harder,
            "Write a program that is different from the examples below and harder than them, and an input for it.",
            program_rules(options.banned),
        )
        examples = tuple(
            (Field("python", t.program), Field("input", t.input), Field("output", t.output))  # type: ignore[union-attr]
            for t in references
        )
        return Ask(self.name, Role.PROPOSE, self.code, "write a new Python program and one input for it", prose,
                   self.propose_fields, examples)  # fmt: skip

    def proposal(self, fields: Fields, references: Sequence[Task]) -> Proposal | FormatError:
        return TripletProposal(self.name, fields["python"][0], fields["input"][0])

    def check(self, proposal: Proposal, rules: Rules) -> Runs | Validation:
        assert isinstance(proposal, TripletProposal)
        check = checked_program(proposal.program, [proposal.input], rules)
        if isinstance(check, Validation):
            return check
        inputs = canonical_inputs([proposal.input], rules)
        return inputs if isinstance(inputs, Validation) else Runs(proposal.program, inputs, check.imports)

    def check_outputs(self, proposal: Proposal, outputs: tuple[str, ...], rules: Rules) -> Validation | None:
        return outputs_are_task_data(outputs, rules)

    def task(self, proposal: Proposal, runs: Runs, build: Build) -> Task:
        return TripletTask(self.name, runs.program, runs.inputs[0], build.outputs[0], runs.imports, build.step,
                           build.source)  # fmt: skip

    def dedup_key(self, task: Task) -> str:
        assert isinstance(task, TripletTask)
        return dedup_key(task.program, [task.input])

    def record(self, task: Task) -> dict[str, Any]:
        assert isinstance(task, TripletTask)
        return {"program": task.program, "input": task.input, "output": task.output, "imports": list(task.imports)}

    def from_record(self, record: dict[str, Any], step: int, source: str) -> Task:
        return TripletTask(self.name, record["program"], record["input"], record["output"],
                           tuple(record.get("imports", ())), step, source)  # fmt: skip

    def read_row(self, row: dict[str, Any]) -> Proposal | str:
        if not isinstance(row.get("input"), str):
            return '"input" must be a string'
        return TripletProposal(self.name, row["program"], row["input"])

    def export_row(self, task: Task) -> dict[str, Any]:
        assert isinstance(task, TripletTask)
        return {"snippet": task.program, "imports": list(task.imports), "task_type": self.name, "input": task.input,
                "output": task.output, "step": task.step, "source": task.source}  # fmt: skip

    def verify_item(self, data: dict[str, Any]) -> Task | str:
        fields = [data.get(k) for k in ("program", "input", "output")]
        if not all(isinstance(v, str) for v in fields):
            return '"program", "input" and "output" must be strings'
        program, input_, output = fields
        return TripletTask(self.name, program, task_input(input_), task_output(output))  # type: ignore[arg-type]

    def summary(self, task: Task) -> str:
        assert isinstance(task, TripletTask)
        return f"{task.input} -> {task.output}"
