"""The `compact` template: special markers instead of instructions, for the tiny embedded model.

A prompt shows only an Ask's fields: the examples, each after `<R>`, then the family's code as a
marker (`<D>` to solve, `<PD>` to propose), the shown fields, and the marker of the first field
the completion holds. Each field is written after its label's marker (`python` <P>, `input` <I>,
`output` <O>, `message` <M>; any other label `<label>`), except the first after `<R>` or a code.
Every completion ends with `<E>`. For the paper's families:

| role, task type | prompt | completion |
|---|---|---|
| solve deduction | `<D>program<I>input<O>` | `output<E>` |
| solve abduction | `<A>program<O>output<I>` | `input<E>` |
| solve induction | `<N>message<I>in<O>out<I>in<O>out...<P>` | `program<E>` |
| propose deduction | `<R>program<I>input<O>output` x K, then `<PD>` | `program<I>input<E>` |
| propose abduction | the same references, then `<PA>` | `program<I>input<E>` |
| propose induction | `<PN>program<M>` | `message<I>input<I>input...<E>` |

With `think` (for a model whose tokenizer has `<T>`, as the embedded model's: `template_for`), a
solver's prompt ends with `<T>` instead, and its completion is a scratchpad, then the answer's marker, then the answer:
`<D>program<I>input<T>` -> `x=4\ny=7\nreturn 7<O>7<E>`. The scratchpad is the solver's own (as AZR's
`<think>`): only the answer after the marker is read and judged. An empty one is `<O>7<E>`.

The markers are special tokens of the embedded model's tokenizer (`MARKERS`), so no program text can
spell them by accident.
"""

from __future__ import annotations

from collections.abc import Sequence

from azr.prompts import Template
from azr.tasks import Answer, FormatError, Role
from azr.tasks.family import Ask, Expect, Field, Fields
from azr.tasks.registry import family

MARKERS = ("<D>", "<A>", "<N>", "<PD>", "<PA>", "<PN>", "<R>", "<P>", "<I>", "<O>", "<M>", "<E>", "<T>")
END = "<E>"
THINK = "<T>"
_LABEL_MARKERS = {"python": "<P>", "input": "<I>", "output": "<O>", "message": "<M>"}


def marker(label: str) -> str:
    return _LABEL_MARKERS.get(label, f"<{label}>")


class CompactTemplate(Template):
    name = "compact"
    stop = (END,)

    def __init__(self, n_inputs: int = 10, banned: Sequence[str] | None = None, think: bool = False) -> None:
        super().__init__(n_inputs, banned)
        self.think = think
        """Solvers write a scratchpad after `<T>`, then their answer's marker and answer."""

    def frame(self, ask: Ask) -> str:
        shown = [part for part in ask.parts if isinstance(part, Field)]
        code = f"<{ask.code}>" if ask.role is Role.SOLVE else f"<P{ask.code}>"
        examples = "".join("<R>" + _fields(fields) for fields in ask.examples)
        if self.think and ask.role is Role.SOLVE:
            return examples + code + _fields(shown) + THINK
        return examples + code + _fields(shown) + (marker(ask.answer[0].label) if shown else "")

    def read(self, expected: Sequence[Expect], completion: str) -> Fields | FormatError:
        body = _body(completion)
        if isinstance(body, FormatError):
            return body
        first, rest = expected[0], expected[1:]
        allowed = {marker(e.label): e.label for e in rest}
        known = dict.fromkeys((*MARKERS, *(marker(e.label) for e in expected)))
        stray = next((m for m in known if m != END and m not in allowed and m in body), None)
        if stray is not None:
            return FormatError(f"unexpected marker {stray} in the completion")
        found: Fields = {e.label: [] for e in expected}
        label, at = first.label, 0
        while True:  # split at the allowed markers, in the order they come
            ahead = [(body.find(m, at), m) for m in allowed if body.find(m, at) >= 0]
            end, next_marker = min(ahead) if ahead else (len(body), "")
            found[label].append(_stripped(label, body[at:end]))
            if not next_marker:
                break
            label, at = allowed[next_marker], end + len(next_marker)
        for e in rest:
            n = len(found[e.label])
            if e.count == 0 and n == 0:
                return FormatError(f"no {marker(e.label)} {e.label}")
            if e.count and n != e.count:
                layout = "".join(marker(x.label) + x.label if i else x.label for i, x in enumerate(expected))
                return FormatError(f"expected {layout}, found {n} {marker(e.label)} markers")
        return found

    def answer_marker(self, task_type: str) -> str | None:
        return marker(family(task_type).solve_fields[0].label) if self.think else None

    def parse_answer(self, task_type: str, completion: str) -> Answer | FormatError:
        """Read a solver's completion; with `think`, from its answer's marker on."""
        if self.think:
            body = _body(completion)
            if isinstance(body, FormatError):
                return body
            answer = marker(family(task_type).solve_fields[0].label)
            start = body.find(answer)
            if start < 0:
                return FormatError(f"no {answer} after the scratchpad")
            completion = completion[start + len(answer) :]
        return super().parse_answer(task_type, completion)


def _fields(fields: Sequence[Field]) -> str:
    return "".join(f.text if i == 0 else marker(f.label) + f.text for i, f in enumerate(fields))


def _stripped(label: str, text: str) -> str:
    """A field's text: a program keeps its indentation, blank lines around it aside; others are trimmed."""
    return text.strip("\n") if label == "python" else text.strip()


def _body(completion: str) -> str | FormatError:
    """The completion up to its first <E>."""
    if not isinstance(completion, str):
        return FormatError("the completion is not text")
    end = completion.find(END)
    if end < 0:
        return FormatError("no <E> marker (the completion was cut off)")
    return completion[:end]
