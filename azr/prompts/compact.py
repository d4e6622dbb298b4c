"""The `compact` template: special markers instead of instructions, for the tiny embedded model.

Every prompt ends with the marker that asks for the answer; every answer ends with `<E>`.

| role, task type | prompt | completion |
|---|---|---|
| solve deduction | `<D>program<I>input<O>` | `output<E>` |
| solve abduction | `<A>program<O>output<I>` | `input<E>` |
| solve induction | `<N>message<I>in<O>out<I>in<O>out...<P>` | `program<E>` |
| propose deduction | `<R>program<I>input<O>output` x K, then `<PD>` | `program<I>input<E>` |
| propose abduction | the same references, then `<PA>` | `program<I>input<E>` |
| propose induction | `<PN>program<M>` | `message<I>input<I>input...<E>` |

The markers are special tokens of the embedded model's tokenizer (`MARKERS`), so no program text can
spell them by accident.
"""

from __future__ import annotations

from collections.abc import Sequence

from azr.prompts import Template, reference_program, triplets
from azr.tasks import (
    Answer,
    FormatError,
    InductionProposal,
    InductionTask,
    Task,
    TaskType,
    TripletProposal,
    TripletTask,
)

MARKERS = ("<D>", "<A>", "<N>", "<PD>", "<PA>", "<PN>", "<R>", "<P>", "<I>", "<O>", "<M>", "<E>")
END = "<E>"
_PROPOSE = {TaskType.DEDUCTION: "<PD>", TaskType.ABDUCTION: "<PA>"}


class CompactTemplate(Template):
    name = "compact"
    stop = (END,)

    def propose_prompt(self, task_type: TaskType, references: Sequence[Task]) -> str:
        if task_type is TaskType.INDUCTION:
            return f"<PN>{reference_program(references)}<M>"
        shown = "".join(f"<R>{t.program}<I>{t.input}<O>{t.output}" for t in triplets(references))
        return shown + _PROPOSE[task_type]

    def solve_prompt(self, task: Task) -> str:
        if isinstance(task, InductionTask):
            pairs = "".join(f"<I>{i}<O>{o}" for i, o in task.given_pairs)
            return f"<N>{task.message}{pairs}<P>"
        assert isinstance(task, TripletTask)
        if task.task_type is TaskType.DEDUCTION:
            return f"<D>{task.program}<I>{task.input}<O>"
        return f"<A>{task.program}<O>{task.output}<I>"

    def parse_proposal(
        self, task_type: TaskType, completion: str, program: str | None = None
    ) -> TripletProposal | InductionProposal | FormatError:
        body = _body(completion)
        if isinstance(body, FormatError):
            return body
        parts = body.split("<I>")
        if task_type is TaskType.INDUCTION:
            if program is None:
                raise ValueError("parsing an induction proposal needs the program that was shown")
            message, inputs = parts[0].strip(), [p.strip() for p in parts[1:]]
            if not inputs:
                return FormatError("no <I> input")
            return InductionProposal(program, tuple(inputs), message)
        if len(parts) != 2:
            return FormatError(f"expected program<I>input, found {len(parts) - 1} <I> markers")
        return TripletProposal(task_type, parts[0].strip("\n"), parts[1].strip())

    def parse_answer(self, task_type: TaskType, completion: str) -> Answer | FormatError:
        body = _body(completion)
        if isinstance(body, FormatError):
            return body
        if "<I>" in body:
            return FormatError("unexpected marker <I> in the answer")
        return Answer(task_type, body.strip() if task_type is not TaskType.INDUCTION else body.strip("\n"))


def _body(completion: str) -> str | FormatError:
    """The completion up to its first <E>, which must contain no other structural marker."""
    if not isinstance(completion, str):
        return FormatError("the completion is not text")
    end = completion.find(END)
    if end < 0:
        return FormatError("no <E> marker (the completion was cut off)")
    body = completion[:end]
    stray = [m for m in MARKERS if m not in ("<I>", END) and m in body]
    if stray:
        return FormatError(f"unexpected marker {stray[0]} in the completion")
    return body
