"""Validate proposals: which of them become tasks (AZR paper section 3.3.3; AZR.md section 3).

A triplet proposal becomes a task only if the completion followed the template, the program parses
and has a top-level `f`, it passes the static filter, the input is a literal argument list, the
program runs on it in the sandbox and returns plain data within the size limit, and a second run in
other processes with another PYTHONHASHSEED returns the same output (set order, `hash()` and `id()`
dependence are caught there; the reference implementation ran twice in one process).

An induction proposal (inputs and a message for a program from the buffers) needs N distinct valid
inputs on which the program is deterministic, and a non-empty message that does not repeat the
code. Its pairs are split into given and hidden by a seeded draw.

Everything sandboxed runs as two batches (one per hash seed), however many proposals there are.
Each proposal's checks, the reading of its runs and the building of its task are guarded (azr.tasks.guard):
a bug of ours rejects that proposal as `internal_error`, and the others go on.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from azr.executor import (
    ExecRequest,
    ExecResult,
    ExecStatus,
    Executor,
    NotPlainData,
    Policy,
    parse_arguments,
    parse_value,
)
from azr.tasks.guard import guarded
from azr.tasks.programs import FilterConfig, check_program, dedup_key, leaks_program
from azr.tasks import (
    FormatError,
    InductionProposal,
    InductionTask,
    InternalError,
    Proposal,
    Rejection,
    Stage,
    TripletProposal,
    TripletTask,
    Validation,
)

_STATUS_REJECTION = {
    ExecStatus.ERROR: Rejection.ERROR,
    ExecStatus.TIMEOUT: Rejection.TIMEOUT,
    ExecStatus.MEMORY: Rejection.MEMORY,
    ExecStatus.INVALID_INPUT: Rejection.INVALID_INPUT,
    ExecStatus.INVALID_OUTPUT: Rejection.INVALID_OUTPUT,
    ExecStatus.BANNED: Rejection.BANNED,
}


@dataclass(frozen=True)
class ValidationConfig:
    """How proposals are judged."""

    filter: FilterConfig = field(default_factory=FilterConfig)
    """The static filter: banned modules, names and attributes."""
    induction_inputs: int = 10
    """Distinct inputs an induction proposal must give (paper: 10)."""
    message_leak_ngram: int = 6
    """An induction message repeating this many consecutive tokens of the program leaks it."""
    hash_seeds: tuple[int, int] = (0, 1)
    """PYTHONHASHSEED of the two runs of the determinism check; must differ."""
    shift_clock: bool = True
    """Run the two runs on the executor's clocks 1 and 2 (`Executor.run_batch`): each ahead of the
    real time by a secret offset, a century and more apart, so that whatever a program reads of
    the time (the year's century down to the microsecond) differs between the runs and cannot be
    undone. False: both on the real clock."""
    policy: bool = True
    """Run proposals under the run-time policy (azr.executor.policy) with `filter`'s banned
    modules: a program that reaches for a file, a process, the clock or a banned module by a route
    the static filter misses is rejected as `banned`."""

    def __post_init__(self) -> None:
        if self.induction_inputs < 2:
            raise ValueError("induction_inputs must be >= 2 (half are given, half hidden)")
        if self.hash_seeds[0] == self.hash_seeds[1]:
            raise ValueError("the two hash_seeds of the determinism check must differ")


@dataclass(frozen=True)
class _Pending:
    """A proposal that passed the static checks, waiting for its sandbox runs."""

    index: int
    proposal: Proposal
    inputs: tuple[str, ...]
    imports: tuple[str, ...]
    outputs: tuple[str, ...] = ()
    """The first run's outputs, once it succeeded."""


class Validator:
    """Turns proposals into tasks, with a reason for every rejection."""

    def __init__(self, executor: Executor, config: ValidationConfig | None = None, seed: int = 0) -> None:
        self.executor = executor
        self.config = config or ValidationConfig()
        self.seed = seed
        """Seeds the given/hidden split of induction pairs, with the step and the task."""

    def validate(
        self, proposals: Sequence[Proposal | FormatError | InternalError], step: int = 0, source: str = "proposed"
    ) -> list[Validation]:
        results: list[Validation | None] = [None] * len(proposals)
        pending: list[_Pending] = []
        for index, proposal in enumerate(proposals):
            checked = guarded(Stage.STATIC_CHECKS, self._static, index, proposal)
            if isinstance(checked, _Pending):
                pending.append(checked)
            else:
                results[index] = _rejected(checked)
        clocks = (1, 2) if self.config.shift_clock else (0, 0)
        pending = self._run(pending, results, self.config.hash_seeds[0], clocks[0], first=True)
        pending = self._run(pending, results, self.config.hash_seeds[1], clocks[1], first=False)
        for item in pending:
            task = guarded(Stage.BUILD_TASK, self._task, item, step, source)
            results[item.index] = _rejected(task) if isinstance(task, InternalError) else Validation(task, None)
        return results  # type: ignore[return-value]

    # -- before anything runs -------------------------------------------------------------------

    def _static(self, index: int, proposal: Proposal | FormatError | InternalError) -> _Pending | Validation:
        if isinstance(proposal, InternalError):  # the template's parser raised on it
            return proposal.rejection()
        if isinstance(proposal, FormatError):
            return Validation(None, Rejection.FORMAT, proposal.reason)
        raw_inputs = [proposal.input] if isinstance(proposal, TripletProposal) else list(proposal.inputs)
        message = [proposal.message] if isinstance(proposal, InductionProposal) else []
        if not all(_is_utf8(text) for text in [proposal.program, *raw_inputs, *message]):
            return Validation(None, Rejection.FORMAT, "the text is not valid UTF-8 (a lone surrogate?)")
        check = check_program(proposal.program, self.config.filter)
        if not check.ok:
            return Validation(None, check.rejection, check.detail)
        inputs: list[str] = []
        for text in raw_inputs:
            try:
                arguments = parse_arguments(text, self.executor.config.max_input_chars)
            except NotPlainData as error:
                return Validation(None, Rejection.INVALID_INPUT, f"{text[:100]!r}: {error}")
            if not _is_task_data([arguments.args, arguments.kwargs]):
                return Validation(None, Rejection.INVALID_INPUT, f"{text[:100]!r}: {_NOT_TASK_DATA}")
            if arguments.canonical() not in inputs:
                inputs.append(arguments.canonical())
        if isinstance(proposal, InductionProposal):
            wanted = self.config.induction_inputs
            if len(inputs) < wanted:
                return Validation(None, Rejection.TOO_FEW_INPUTS, f"{len(inputs)} distinct inputs, {wanted} needed")
            inputs = inputs[:wanted]
            if not proposal.message.strip():
                return Validation(None, Rejection.EMPTY_MESSAGE)
            if leaks_program(proposal.message, proposal.program, self.config.message_leak_ngram):
                return Validation(None, Rejection.MESSAGE_LEAKS_PROGRAM)
        return _Pending(index, proposal, tuple(inputs), check.imports)

    # -- in the sandbox -------------------------------------------------------------------------

    def _run(
        self,
        pending: list[_Pending],
        results: list[Validation | None],
        hash_seed: int,
        clock: int,
        first: bool,
    ) -> list[_Pending]:
        """Run every input of every pending proposal; keep those whose runs all succeed (and, on
        the second run, agree with the first)."""
        policy = Policy(self.config.filter.banned_modules) if self.config.policy else None
        requests = [ExecRequest(item.proposal.program, text, policy) for item in pending for text in item.inputs]
        outcomes = iter(self.executor.run_batch(requests, hash_seed=hash_seed, clock=clock))
        kept = []
        for item in pending:
            runs = [next(outcomes) for _ in item.inputs]
            checked = guarded(Stage.SANDBOX_RESULTS, self._check_runs, item, runs, first)
            if isinstance(checked, _Pending):
                kept.append(checked)
            else:
                results[item.index] = _rejected(checked)
        return kept

    def _check_runs(self, item: _Pending, runs: list[ExecResult], first: bool) -> _Pending | Validation:
        """The proposal with its outputs if its runs succeeded (and, on the second run, agree with
        the first), else why not."""
        failed = next((run for run in runs if not run.ok), None)
        if failed is not None:
            detail = failed.error if first else f"second run (other hash seed and clock): {failed.error}"
            return Validation(None, _STATUS_REJECTION[failed.status], detail)
        outputs: tuple[str, ...] = tuple(run.output for run in runs)  # type: ignore[assignment]
        if first:
            limit = self.executor.config.max_output_chars  # outputs are canonical reprs within it
            if not all(_is_task_data(parse_value(output, max_chars=limit)) for output in outputs):
                return Validation(None, Rejection.INVALID_OUTPUT, _NOT_TASK_DATA)
            return replace(item, outputs=outputs)
        if outputs != item.outputs:
            changed = next(i for i, output in enumerate(outputs) if output != item.outputs[i])
            return Validation(
                None,
                Rejection.NONDETERMINISTIC,
                f"input {item.inputs[changed]}: {item.outputs[changed]} then {outputs[changed]}",
            )
        return item

    def _task(self, item: _Pending, step: int, source: str) -> TripletTask | InductionTask:
        proposal = item.proposal
        if isinstance(proposal, TripletProposal):
            return TripletTask(
                proposal.task_type, proposal.program, item.inputs[0], item.outputs[0], item.imports, step, source
            )
        return InductionTask(
            proposal.program,
            item.inputs,
            item.outputs,
            proposal.message.strip(),
            self.split(proposal.program, item.inputs, step),
            item.imports,
            step,
            source,
        )

    def split(self, program: str, inputs: Sequence[str], step: int) -> tuple[int, ...]:
        """Indices of the given pairs: half of them, drawn reproducibly from (seed, step, task)."""
        digest = hashlib.sha256(f"{self.seed}:{step}:{dedup_key(program, list(inputs))}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        return tuple(sorted(rng.sample(range(len(inputs)), len(inputs) // 2)))


def _rejected(outcome: Validation | InternalError) -> Validation:
    return outcome.rejection() if isinstance(outcome, InternalError) else outcome


_NOT_TASK_DATA = "complex numbers and Ellipsis are plain data, but not task data (AZR.md section 3)"


def _is_task_data(value: object) -> bool:
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


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def rejection_counts(validations: Sequence[Validation]) -> dict[str, int]:
    """How many proposals were valid, and how many were rejected for each reason (metrics)."""
    counts = Counter("valid" if v.valid else v.rejection.value for v in validations)  # type: ignore[union-attr]
    return dict(sorted(counts.items()))
