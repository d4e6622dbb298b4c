"""Task families: everything one kind of verifiable task needs, behind one interface.

A family is the unit AZR grows by (AZR.md section 2: the task is what the executor can check). It
says:

- what the proposer and the solver are shown and must write, as labelled fields (`Ask`); a
  template (azr.prompts) frames the fields and reads them back, and knows nothing of families;
- how a proposal and an answer are read from those fields;
- how a proposal is checked before it runs (`check`), which runs the sandbox makes for it, what
  its outputs must be (`check_outputs`), and the task it becomes (`task`);
- how an answer is judged: at once, or by sandbox runs whose outputs are compared (`judge`);
- the task's round trip to the store's JSON record, to seed-file rows and to `azr verify` lines.

The stages (azr.tasks.validate, azr.tasks.verify, azr.selfplay.propose, azr.selfplay.solve) batch the sandbox runs
of every family together and never look at a task's type.

A new family is one module that defines a `TaskFamily` subclass and a module-level `FAMILY`, plus
one line in `REGISTRY` (azr.tasks.registry). See `azr.tasks.math` for one built that way.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azr.tasks import Answer, FormatError, Proposal, Role, Task, Validation, Verdict

if TYPE_CHECKING:
    from azr.executor import ExecutorConfig
    from azr.tasks.programs import FilterConfig
    from azr.tasks.store import TaskStore


@dataclass(frozen=True)
class Field:
    """One labelled piece of text in a prompt or a completion: `python`, `input`, `output`,
    `message`, `problem`, `answer`..."""

    label: str
    text: str


@dataclass(frozen=True)
class Expect:
    """A field the completion must hold."""

    label: str
    count: int = 1
    """How many: exactly this many, or, with 0, one or more."""
    placeholder: str = "..."
    """What the template's answer format shows in its place."""
    fenced: bool = True
    """False: the field is the answer's whole text, not a labelled block in it (a final answer in
    `\\boxed{}`). Only the last expected field may be unfenced."""


@dataclass(frozen=True)
class Ask:
    """What one prompt asks: a family's fields for one role, for a template to frame.

    Prose (`title`, the strings in `parts`) is for templates that write instructions (`azr`);
    terse templates (`compact`) show only the fields, under the family's `code`."""

    family: str
    role: Role
    code: str
    """The family's one-letter code, for terse templates: `D` frames as `<D>` (solve) and `<PD>` (propose)."""
    title: str
    parts: tuple[str | Field, ...]
    """Prose and fields, in order."""
    answer: tuple[Expect, ...]
    examples: tuple[tuple[Field, ...], ...] = ()
    """Reference tasks shown to a proposer, as fields (shown before everything else)."""


Fields = dict[str, list[str]]
"""A completion's fields by label, in order, as a template read them (counts already checked)."""


@dataclass(frozen=True)
class AskOptions:
    """What a prompt says that the run configures."""

    n_inputs: int = 10
    """Inputs the induction proposer is asked for."""
    banned: tuple[str, ...] = ()
    """Modules and names the proposer is told not to use."""


@dataclass(frozen=True)
class Rules:
    """What a proposal and an answer are checked against: the validation settings and the sandbox's limits."""

    filter: FilterConfig
    max_input_chars: int
    max_output_chars: int
    induction_inputs: int = 10
    message_leak_ngram: int = 6
    equality: str = "strict"
    """How outputs compare (azr.tasks.verify.Equality)."""


@dataclass(frozen=True)
class Runs:
    """A proposal that passed its checks before running: the program and the inputs to run it on."""

    program: str
    inputs: tuple[str, ...]
    imports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """An answer whose verdict needs sandbox runs: each (program, input) must return `expected`."""

    runs: tuple[tuple[str, str, str], ...]
    policy: bool = True
    """Run under the run-time policy (azr.executor.policy), as proposals are. False: the family's
    own judge program, which the policy would stop."""


@dataclass(frozen=True)
class Build:
    """What a task is built from, beyond its proposal and runs."""

    step: int
    source: str
    seed: int
    """The validator's seed (an induction task's given/hidden split is drawn from it)."""
    outputs: tuple[str, ...] = field(default=())


class TaskFamily(ABC):
    """One kind of verifiable task. Instances hold no state: one per family, in its module's `FAMILY`."""

    name: str
    code: str
    """One letter, unique among families, for terse templates."""
    columns: tuple[str, ...]
    """The record's fields that the store's view of the family shows as columns."""
    propose_fields: tuple[Expect, ...]
    """What a proposer's completion holds (its Ask's `answer`), in order."""
    solve_fields: tuple[Expect, ...]
    """What a solver's completion holds."""

    @property
    def writes_program(self) -> bool:
        """Its proposers write the program (deduction, abduction, math), rather than being shown one
        (induction)."""
        return any(e.label == "python" for e in self.propose_fields)

    # -- the proposer ----------------------------------------------------------------------------

    @abstractmethod
    def references(self, store: TaskStore, k: int, rng: random.Random) -> list[Task] | None:
        """What one proposer prompt shows, drawn from the buffers with `rng`; None when nothing can
        be proposed yet (the proposal is skipped this step)."""

    @abstractmethod
    def propose_ask(self, references: Sequence[Task], options: AskOptions) -> Ask: ...

    @abstractmethod
    def proposal(self, fields: Fields, references: Sequence[Task]) -> Proposal | FormatError:
        """The proposal in a proposer's fields (those of `propose_ask(references).answer`)."""

    # -- validation -------------------------------------------------------------------------------

    @abstractmethod
    def check(self, proposal: Proposal, rules: Rules) -> Runs | Validation:
        """Checks before anything runs: the runs to make, or the rejection."""

    def check_outputs(self, proposal: Proposal, outputs: tuple[str, ...], rules: Rules) -> Validation | None:
        """After the first run: None when its outputs (canonical reprs) may make a task, else the rejection."""
        return None

    @abstractmethod
    def task(self, proposal: Proposal, runs: Runs, build: Build) -> Task:
        """The task a proposal becomes once its runs succeeded twice with the same `build.outputs`."""

    # -- the solver -----------------------------------------------------------------------------

    @abstractmethod
    def solve_ask(self, task: Task, options: AskOptions) -> Ask: ...

    def answer(self, fields: Fields) -> Answer | FormatError:
        """The answer in a solver's fields (`solve_fields`): by default the first one."""
        return Answer(self.name, fields[self.solve_fields[0].label][0])

    @abstractmethod
    def judge(self, task: Task, answer: Answer, rules: Rules) -> Verdict | Check:
        """The verdict when no run is needed, else the runs that decide it."""

    def sandbox(self, base: ExecutorConfig) -> ExecutorConfig | None:
        """The sandbox its `Check`s run in, when not the run's own (None): e.g. one that can import
        the family's judge. Made once per verifier."""
        return None

    def require(self) -> str | None:
        """None when this machine can run the family; else what to install (checked at start)."""
        return None

    # -- records and files ------------------------------------------------------------------------

    @abstractmethod
    def dedup_key(self, task: Task) -> str:
        """Two live tasks of a family with one key are one task (the store keeps the first)."""

    @abstractmethod
    def record(self, task: Task) -> dict[str, Any]:
        """The task's fields for the store's JSON record (step and source are columns)."""

    @abstractmethod
    def from_record(self, record: dict[str, Any], step: int, source: str) -> Task: ...

    @abstractmethod
    def read_row(self, row: dict[str, Any]) -> Proposal | str:
        """A seed-file row as a proposal (validated like any), or what is wrong with it."""

    @abstractmethod
    def export_row(self, task: Task) -> dict[str, Any]:
        """A task as a seed-file row (which `read_row` reads back), with `task_type`, `step`, `source`."""

    @abstractmethod
    def verify_item(self, data: dict[str, Any]) -> Task | str:
        """An `azr verify` line's task, or what is wrong with it."""

    @abstractmethod
    def summary(self, task: Task) -> str:
        """What the task asks, in a line or so, for `azr tasks list` (after its program's last line)."""
