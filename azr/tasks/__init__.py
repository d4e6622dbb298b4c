"""Task records: what the stages pass to each other (AZR paper, section 3; ../shared/docs/AZR.md, 2).

Every task comes from a program and what it returns. Deduction and abduction tasks are triplets
(program, input, output) with output = program(input); an induction task is one program with N
input/output pairs and a message, split into pairs shown to the solver (given) and pairs it is
checked on (hidden). Families beyond the paper's define their records in their own module
(azr.tasks.math: a word problem whose answer a program `f()` computes).

Each kind of task is a family (azr.tasks.family); a record's `task_type` is its family's name,
a plain string (`TaskType` names the three of the paper).

Inputs are canonical argument lists (`'a', [1, 2]`), outputs canonical reprs (azr.executor.plain),
so two tasks are the same task iff their texts are equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


def _name(task_type: str) -> str:
    """A family name as a plain string (a TaskType member is one too, but prints as its class's)."""
    return task_type.value if isinstance(task_type, Enum) else str(task_type)


class TaskType(str, Enum):
    DEDUCTION = "deduction"
    """Given program and input, give the output."""
    ABDUCTION = "abduction"
    """Given program and output, give an input that produces it (any such input counts)."""
    INDUCTION = "induction"
    """Given a message and half of the input/output pairs, give a program reproducing all."""


class Role(str, Enum):
    PROPOSE = "propose"
    SOLVE = "solve"


@dataclass(frozen=True)
class TripletTask:
    """A deduction or abduction task: `output` is what `program` returns on `input`."""

    task_type: str
    """`deduction` or `abduction`."""
    program: str
    input: str
    output: str
    imports: tuple[str, ...] = ()
    """The program's top-level import statements, for analysis; they are also in `program`."""
    step: int = 0
    """Training step at which the task was added (0: before training, e.g. seeds)."""
    source: str = "proposed"
    """Where it came from: `identity`, `proposed`, `seed:<file>`..."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_type", _name(self.task_type))


@dataclass(frozen=True)
class InductionTask:
    """An induction task: `outputs[i]` is what `program` returns on `inputs[i]`."""

    program: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    message: str
    """The proposer's description of the function, shown to the solver instead of the code."""
    given: tuple[int, ...]
    """Indices of the pairs shown to the solver; the others are hidden and checked."""
    imports: tuple[str, ...] = ()
    step: int = 0
    source: str = "proposed"
    task_type: str = field(default="induction", init=False)

    @property
    def given_pairs(self) -> list[tuple[str, str]]:
        return [(self.inputs[i], self.outputs[i]) for i in self.given]

    @property
    def hidden_pairs(self) -> list[tuple[str, str]]:
        shown = set(self.given)
        return [(self.inputs[i], self.outputs[i]) for i in range(len(self.inputs)) if i not in shown]


Task = TripletTask | InductionTask
"""The paper's tasks. A family may define its own record (azr.tasks.math.MathTask): a frozen
dataclass with `task_type`, `program`, `imports`, `step` and `source`, which the stages pass along
without looking inside."""


@dataclass(frozen=True)
class TripletProposal:
    """A proposer's deduction or abduction task, as written: not yet validated."""

    task_type: str
    program: str
    input: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_type", _name(self.task_type))


@dataclass(frozen=True)
class InductionProposal:
    """A proposer's inputs and message for a given program, as written: not yet validated."""

    program: str
    """The program the proposer was shown (from the buffers), not written by it."""
    inputs: tuple[str, ...]
    message: str
    task_type: str = field(default="induction", init=False)


Proposal = TripletProposal | InductionProposal
"""The paper's proposals; a family may define its own, with a `task_type`."""


@dataclass(frozen=True)
class Answer:
    """A solver's answer, as written: an output literal (deduction), an argument list
    (abduction), a program (induction), a final answer (math)."""

    task_type: str
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_type", _name(self.task_type))


@dataclass(frozen=True)
class FormatError:
    """A completion that does not follow the template; `reason` says what is missing."""

    reason: str


class Stage(str, Enum):
    """Where handling one sample can hit a bug of ours (azr.tasks.guard): the stage boundaries of a step."""

    PARSE_PROPOSAL = "parse_proposal"
    STATIC_CHECKS = "static_checks"
    """The validator's checks before anything runs: filter, input literals, induction rules."""
    SANDBOX_RESULTS = "sandbox_results"
    """The validator reading a proposal's runs: outputs parsed, the two runs compared."""
    BUILD_TASK = "build_task"
    """The validator building the task (an induction task's split hashes its program)."""
    STORE = "store"
    """The task's dedup key and row, before the store's transaction."""
    PARSE_ANSWER = "parse_answer"
    PREPARE_ANSWER = "prepare_answer"
    """The verifier before anything runs: the answer parsed, a deduction answer judged."""
    COMPARE = "compare"
    """The verifier comparing an answer's runs with the expected outputs."""
    METRICS = "metrics"
    """The step's metrics that read program text; the sample stays as it was judged."""


@dataclass(frozen=True)
class InternalError:
    """Handling one sample raised where nothing should: a bug of ours, not the model's."""

    stage: Stage
    detail: str
    """The exception's type, its message (capped) and where it was raised (file:line)."""

    def rejection(self) -> Validation:
        return Validation(None, Rejection.INTERNAL_ERROR, self.detail, self.stage)

    def mistake(self) -> Verdict:
        return Verdict(False, Mistake.INTERNAL_ERROR, self.detail, self.stage)


class Rejection(str, Enum):
    """Why a proposal did not become a task (AZR.md section 3). A closed set: these are metrics. A
    family may add reasons of its own, as a str Enum in its module (azr.tasks.math.MathRejection)."""

    FORMAT = "format"
    """The completion does not follow the template."""
    SYNTAX = "syntax"
    """The program is not valid Python."""
    NO_F = "no_f"
    """The program has no top-level `def f`."""
    BANNED = "banned"
    """The program imports a banned module or uses a banned name or attribute, or reached at run time
    for something the sandbox's policy forbids."""
    INVALID_INPUT = "invalid_input"
    """An input is not a literal argument list."""
    ERROR = "error"
    """The program raised, crashed or exited on an input."""
    TIMEOUT = "timeout"
    MEMORY = "memory"
    INVALID_OUTPUT = "invalid_output"
    """The output is not plain data, or too large."""
    NONDETERMINISTIC = "nondeterministic"
    """Two runs in separate processes with different hash seeds gave different outputs."""
    TOO_FEW_INPUTS = "too_few_inputs"
    """Induction: fewer distinct inputs than required."""
    EMPTY_MESSAGE = "empty_message"
    MESSAGE_LEAKS_PROGRAM = "message_leaks_program"
    """Induction: the message contains the program's code."""
    COPY = "copy"
    """The program is one of the model's own pretraining programs (`selfplay.reject_copies`)."""
    INTERNAL_ERROR = "internal_error"
    """Handling this sample raised: a bug of ours, not the model's; the sample is rejected and the
    step goes on (azr.tasks.guard)."""


@dataclass(frozen=True)
class Validation:
    """The verdict on one proposal: a task, or the reason there is none."""

    task: Task | None
    rejection: Rejection | Enum | None
    """A Rejection, or a reason of the proposal's family's own (a str Enum, such as MathRejection)."""
    detail: str = ""
    stage: Stage | None = None
    """internal_error only: the stage whose code raised."""

    @property
    def valid(self) -> bool:
        return self.task is not None

    @property
    def internal_error(self) -> InternalError | None:
        return InternalError(self.stage, self.detail) if self.stage is not None else None


class Mistake(str, Enum):
    """Why an answer is not correct. A closed set: these are metrics."""

    FORMAT = "format"
    """The completion does not follow the template."""
    NOT_A_LITERAL = "not_a_literal"
    """Deduction or abduction: the answer is not a plain-data literal (argument list)."""
    BANNED = "banned"
    """Induction: the program fails the static filter. Abduction or induction: the program reached,
    at run time, for something the sandbox's policy forbids (a banned module, a file, the clock...)."""
    WRONG = "wrong"
    """A well-formed answer with the wrong value."""
    ERROR = "error"
    """Abduction or induction: running the program on the answer raised or crashed."""
    TIMEOUT = "timeout"
    MEMORY = "memory"
    INVALID_OUTPUT = "invalid_output"
    INTERNAL_ERROR = "internal_error"
    """Handling this sample raised: a bug of ours, not the model's; the sample is rejected and the
    step goes on (azr.tasks.guard)."""


@dataclass(frozen=True)
class Verdict:
    """The judgement on one answer."""

    correct: bool
    mistake: Mistake | None = None
    detail: str = ""
    stage: Stage | None = None
    """internal_error only: the stage whose code raised."""
    passed: float | None = None
    """An answer judged by several runs (induction's hidden pairs): the fraction that returned their
    expected output, for `selfplay.partial_credit`. None: judged at once."""

    @property
    def internal_error(self) -> InternalError | None:
        return InternalError(self.stage, self.detail) if self.stage is not None else None

    @property
    def reason(self) -> str:
        return "correct" if self.correct else self.mistake.value  # type: ignore[union-attr]
