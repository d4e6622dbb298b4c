"""Induction: given a message and half of a program's input/output pairs, write a program that
reproduces all of them, the hidden half included (AZR paper section 3.2).

The proposer is shown one program from the deduction and abduction buffers and writes N inputs
and a message; the pairs are split into given and hidden by a draw seeded by (seed, step, task).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from azr.tasks import (
    Answer,
    FormatError,
    InductionProposal,
    InductionTask,
    Mistake,
    Proposal,
    Rejection,
    Role,
    Task,
    Validation,
    Verdict,
)
from azr.tasks.code import (
    INPUT_RULE,
    PROGRAM_PLACEHOLDER,
    canonical_inputs,
    checked_program,
    outputs_are_task_data,
    strings,
    task_input,
    task_output,
)
from azr.tasks.family import Ask, AskOptions, Build, Check, Expect, Field, Fields, Rules, Runs, TaskFamily
from azr.tasks.programs import check_program, dedup_key, leaks_program

if TYPE_CHECKING:
    from azr.tasks.store import TaskStore

SOURCES = ("deduction", "abduction")
"""The buffers whose programs the proposer is shown."""


class Induction(TaskFamily):
    name = "induction"
    code = "N"
    columns = ("program", "message", "inputs", "outputs", "given")
    propose_fields = (Expect("message"), Expect("input", count=0))
    solve_fields = (Expect("python", placeholder=PROGRAM_PLACEHOLDER),)

    def references(self, store: TaskStore, k: int, rng: random.Random) -> list[Task] | None:
        sources = [name for name in SOURCES if store.count(name)]
        return store.references(rng.choice(sources), 1, rng) if sources else None

    def propose_ask(self, references: Sequence[Task], options: AskOptions) -> Ask:
        if len(references) != 1:
            raise ValueError(f"the induction proposer takes exactly one reference, got {len(references)}")
        n = options.n_inputs
        prose = (
            "A solver will be shown your message and some of the program's input/output pairs, but not "
            "the program, and must write a program that reproduces all the pairs, including the ones it "
            f"was not shown. Write {n} different inputs that together reveal what the program "
            "does, and a short message that hints at it without giving away the code.",
            f"Rules:\n{INPUT_RULE}\n- The inputs must all differ.",
            "## Program",
            Field("python", references[0].program),
        )
        title = f"write {n} inputs and a message for a program"
        return Ask(self.name, Role.PROPOSE, self.code, title, prose, self.propose_fields)

    def proposal(self, fields: Fields, references: Sequence[Task]) -> Proposal | FormatError:
        if len(references) != 1:
            raise ValueError("parsing an induction proposal needs the program that was shown")
        return InductionProposal(references[0].program, tuple(fields["input"]), fields["message"][0])

    def check(self, proposal: Proposal, rules: Rules) -> Runs | Validation:
        assert isinstance(proposal, InductionProposal)
        check = checked_program(proposal.program, [*proposal.inputs, proposal.message], rules)
        if isinstance(check, Validation):
            return check
        inputs = canonical_inputs(proposal.inputs, rules)
        if isinstance(inputs, Validation):
            return inputs
        wanted = rules.induction_inputs
        if len(inputs) < wanted:
            return Validation(None, Rejection.TOO_FEW_INPUTS, f"{len(inputs)} distinct inputs, {wanted} needed")
        if not proposal.message.strip():
            return Validation(None, Rejection.EMPTY_MESSAGE)
        if leaks_program(proposal.message, proposal.program, rules.message_leak_ngram):
            return Validation(None, Rejection.MESSAGE_LEAKS_PROGRAM)
        return Runs(proposal.program, inputs[:wanted], check.imports)

    def check_outputs(self, proposal: Proposal, outputs: tuple[str, ...], rules: Rules) -> Validation | None:
        return outputs_are_task_data(outputs, rules)

    def task(self, proposal: Proposal, runs: Runs, build: Build) -> Task:
        assert isinstance(proposal, InductionProposal)
        given = split(build.seed, runs.program, runs.inputs, build.step)
        return InductionTask(runs.program, runs.inputs, build.outputs, proposal.message.strip(), given, runs.imports,
                             build.step, build.source)  # fmt: skip

    def solve_ask(self, task: Task, options: AskOptions) -> Ask:
        assert isinstance(task, InductionTask)
        pairs = [piece for i, o in task.given_pairs for piece in (Field("input", i), Field("output", o))]
        prose = (
            "Write a Python function `f` that, on each input below, returns the output shown, and that does "
            "what the message describes: it will also be checked on inputs you are not shown.",
            "## Message",
            Field("message", task.message),
            "## Examples",
            *pairs,
        )
        return Ask(self.name, Role.SOLVE, self.code, "write the program", prose, self.solve_fields)

    def judge(self, task: Task, answer: Answer, rules: Rules) -> Verdict | Check:
        """The answer's program passes the static filter and returns every hidden pair's output."""
        assert isinstance(task, InductionTask)
        check = check_program(answer.text, rules.filter)
        if not check.ok:
            mistake = Mistake.BANNED if check.rejection is Rejection.BANNED else Mistake.ERROR
            return Verdict(False, mistake, f"{check.rejection.value}: {check.detail}")  # type: ignore[union-attr]
        if not task.hidden_pairs:  # nothing to check would make every program correct
            return Verdict(False, Mistake.WRONG, "the task has no hidden pairs to check the program on")
        return Check(tuple((answer.text, i, o) for i, o in task.hidden_pairs))

    def dedup_key(self, task: Task) -> str:
        assert isinstance(task, InductionTask)
        return dedup_key(task.program, sorted(task.inputs))

    def record(self, task: Task) -> dict[str, Any]:
        assert isinstance(task, InductionTask)
        return {"program": task.program, "inputs": list(task.inputs), "outputs": list(task.outputs),
                "message": task.message, "given": list(task.given), "imports": list(task.imports)}  # fmt: skip

    def from_record(self, record: dict[str, Any], step: int, source: str) -> Task:
        return InductionTask(record["program"], tuple(record["inputs"]), tuple(record["outputs"]), record["message"],
                             tuple(record["given"]), tuple(record.get("imports", ())), step, source)  # fmt: skip

    def read_row(self, row: dict[str, Any]) -> Proposal | str:
        inputs, message = strings(row, "inputs"), row.get("message", "")
        if inputs is None:
            return '"inputs" must be a list of strings'
        if not isinstance(message, str):
            return '"message" must be a string'
        return InductionProposal(row["program"], tuple(inputs), message)

    def export_row(self, task: Task) -> dict[str, Any]:
        assert isinstance(task, InductionTask)
        return {"snippet": task.program, "imports": list(task.imports), "task_type": self.name,
                "inputs": list(task.inputs), "outputs": list(task.outputs), "message": task.message,
                "given": list(task.given), "step": task.step, "source": task.source}  # fmt: skip

    def verify_item(self, data: dict[str, Any]) -> Task | str:
        pairs = data.get("pairs")
        if not (isinstance(pairs, list) and pairs and all(isinstance(p, list) and len(p) == 2 for p in pairs)):
            return '"pairs" must be a non-empty list of [input, output]'
        inputs = tuple(task_input(str(i)) for i, _ in pairs)
        outputs = tuple(task_output(str(o)) for _, o in pairs)
        return InductionTask("", inputs, outputs, "", given=())  # every pair is checked

    def summary(self, task: Task) -> str:
        assert isinstance(task, InductionTask)
        return f"{len(task.inputs)} pairs, message: {task.message}"


def split(seed: int, program: str, inputs: Sequence[str], step: int) -> tuple[int, ...]:
    """Indices of the given pairs: half of them, drawn reproducibly from (seed, step, task)."""
    digest = hashlib.sha256(f"{seed}:{step}:{dedup_key(program, list(inputs))}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return tuple(sorted(rng.sample(range(len(inputs)), len(inputs) // 2)))


FAMILY = Induction()
