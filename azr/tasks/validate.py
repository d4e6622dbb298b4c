"""Validate proposals: which of them become tasks (AZR paper section 3.3.3; AZR.md section 3).

A triplet proposal becomes a task only if the completion followed the template, the program parses
and has a top-level `f`, it passes the static filter, the input is a literal argument list, the
program runs on it in the sandbox and returns plain data within the size limit, and a second run in
other processes with another PYTHONHASHSEED returns the same output (set order, `hash()` and `id()`
dependence are caught there; the reference implementation ran twice in one process).

Each family says what its proposals must be before they run and what their outputs must be
(azr.tasks.family): an induction proposal (inputs and a message for a program from the buffers)
needs N distinct valid inputs and a message that does not repeat the code; a math proposal's
program returns a number. The runs themselves are the same for every family.

Everything sandboxed runs as two batches (one per hash seed), however many proposals there are.
Each proposal's checks, the reading of its runs and the building of its task are guarded (azr.tasks.guard):
a bug of ours rejects that proposal as `internal_error`, and the others go on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from azr.executor import ExecRequest, ExecResult, ExecStatus, Executor, Policy
from azr.tasks import FormatError, InternalError, Proposal, Rejection, Stage, Task, Validation
from azr.tasks.family import Build, Rules, Runs
from azr.tasks.guard import guarded
from azr.tasks.programs import FilterConfig, program_key
from azr.tasks.registry import family

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
    known_programs: frozenset[str] = frozenset()
    """Keys (azr.tasks.programs.program_key) of the model's pretraining programs."""
    reject_copies: bool = False
    """Reject, as `copy`, a proposal whose own program is one of `known_programs`."""

    def __post_init__(self) -> None:
        if self.induction_inputs < 2:
            raise ValueError("induction_inputs must be >= 2 (half are given, half hidden)")
        if self.hash_seeds[0] == self.hash_seeds[1]:
            raise ValueError("the two hash_seeds of the determinism check must differ")


@dataclass(frozen=True)
class _Pending:
    """A proposal that passed the checks before running, waiting for its sandbox runs."""

    index: int
    proposal: Proposal
    runs: Runs
    outputs: tuple[str, ...] = ()
    """The first run's outputs, once it succeeded."""


class Validator:
    """Turns proposals into tasks, with a reason for every rejection."""

    def __init__(self, executor: Executor, config: ValidationConfig | None = None, seed: int = 0) -> None:
        self.executor = executor
        self.config = config or ValidationConfig()
        self.seed = seed
        """Seeds the given/hidden split of induction pairs, with the step and the task."""

    @property
    def rules(self) -> Rules:
        limits = self.executor.config
        return Rules(self.config.filter, limits.max_input_chars, limits.max_output_chars,
                     self.config.induction_inputs, self.config.message_leak_ngram)  # fmt: skip

    def validate(
        self, proposals: Sequence[Proposal | FormatError | InternalError], step: int = 0, source: str = "proposed"
    ) -> list[Validation]:
        rules = self.rules
        results: list[Validation | None] = [None] * len(proposals)
        pending: list[_Pending] = []
        for index, proposal in enumerate(proposals):
            checked = guarded(Stage.STATIC_CHECKS, self._static, index, proposal, rules)
            if isinstance(checked, _Pending):
                pending.append(checked)
            else:
                results[index] = _rejected(checked)
        clocks = (1, 2) if self.config.shift_clock else (0, 0)
        pending = self._run(pending, results, rules, self.config.hash_seeds[0], clocks[0], first=True)
        pending = self._run(pending, results, rules, self.config.hash_seeds[1], clocks[1], first=False)
        for item in pending:
            task = guarded(Stage.BUILD_TASK, self._task, item, step, source)
            results[item.index] = _rejected(task) if isinstance(task, InternalError) else Validation(task, None)
        return results  # type: ignore[return-value]

    def _static(
        self, index: int, proposal: Proposal | FormatError | InternalError, rules: Rules
    ) -> _Pending | Validation:
        if isinstance(proposal, InternalError):  # the template's parser raised on it
            return proposal.rejection()
        if isinstance(proposal, FormatError):
            return Validation(None, Rejection.FORMAT, proposal.reason)
        kind = family(proposal.task_type)
        runs = kind.check(proposal, rules)
        if isinstance(runs, Validation):
            return runs
        if (
            kind.writes_program
            and self.config.reject_copies
            and program_key(runs.program) in self.config.known_programs
        ):
            return Validation(None, Rejection.COPY, "the program is one of the model's pretraining programs")
        return _Pending(index, proposal, runs)

    def _run(
        self,
        pending: list[_Pending],
        results: list[Validation | None],
        rules: Rules,
        hash_seed: int,
        clock: int,
        first: bool,
    ) -> list[_Pending]:
        """Run every input of every pending proposal; keep those whose runs all succeed (and, on
        the second run, agree with the first)."""
        policy = Policy(self.config.filter.banned_modules) if self.config.policy else None
        requests = [ExecRequest(item.runs.program, text, policy) for item in pending for text in item.runs.inputs]
        outcomes = iter(self.executor.run_batch(requests, hash_seed=hash_seed, clock=clock))
        kept = []
        for item in pending:
            runs = [next(outcomes) for _ in item.runs.inputs]
            checked = guarded(Stage.SANDBOX_RESULTS, self._check_runs, item, runs, rules, first)
            if isinstance(checked, _Pending):
                kept.append(checked)
            else:
                results[item.index] = _rejected(checked)
        return kept

    def _check_runs(self, item: _Pending, runs: list[ExecResult], rules: Rules, first: bool) -> _Pending | Validation:
        """The proposal with its outputs if its runs succeeded (and, on the second run, agree with
        the first), else why not."""
        failed = next((run for run in runs if not run.ok), None)
        if failed is not None:
            detail = failed.error if first else f"second run (other hash seed and clock): {failed.error}"
            return Validation(None, _STATUS_REJECTION[failed.status], detail)
        outputs: tuple[str, ...] = tuple(run.output for run in runs)  # type: ignore[assignment]
        if first:
            rejected = family(item.proposal.task_type).check_outputs(item.proposal, outputs, rules)
            return rejected if rejected is not None else replace(item, outputs=outputs)
        if outputs != item.outputs:
            changed = next(i for i, output in enumerate(outputs) if output != item.outputs[i])
            return Validation(
                None,
                Rejection.NONDETERMINISTIC,
                f"input {item.runs.inputs[changed]}: {item.outputs[changed]} then {outputs[changed]}",
            )
        return item

    def _task(self, item: _Pending, step: int, source: str) -> Task:
        build = Build(step, source, self.seed, item.outputs)
        return family(item.proposal.task_type).task(item.proposal, item.runs, build)


def _rejected(outcome: Validation | InternalError) -> Validation:
    return outcome.rejection() if isinstance(outcome, InternalError) else outcome


def rejection_counts(validations: Sequence[Validation]) -> dict[str, int]:
    """How many proposals were valid, and how many were rejected for each reason (metrics)."""
    counts = Counter("valid" if v.valid else v.rejection.value for v in validations)  # type: ignore[union-attr]
    return dict(sorted(counts.items()))
