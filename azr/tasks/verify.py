"""Verify answers: is a solver's answer correct (AZR paper section 3.3.4; AZR.md section 2)?

Each family judges its answers (azr.tasks.family), at once or by sandbox runs whose outputs are
compared here:

- deduction: the answer is a literal whose value equals the task's output;
- abduction: the program, run on the answer (an argument list), returns the task's output; any such
  input counts;
- induction: the answer is a program that passes the static filter and returns every hidden
  pair's output on its input;
- math: math-verify, in a sandbox of its own, finds the answer equal to the program's.

Answers are parsed as literals, never evaluated, and never spliced into code (the reference
implementation `eval`'d `f(<answer>)`, so the answer `x) or (1` scored). Expected outputs never
enter the sandbox: it returns the candidate's canonical output and the comparison is made here, so
a program cannot read the answer key from memory or frames, or forge a verdict.

Equality (`Equality`): `strict` by default, structural on canonical plain data, so 1, 1.0 and True
differ, and a list differs from a tuple; `python` is Python's `==` on the parsed plain values, as
CRUXEval's harness uses (1 == 1.0 == True, {1} == frozenset({1})).

Each answer's preparation and each comparison are guarded (azr.tasks.guard): a bug of ours makes that
answer's verdict `internal_error`, and the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from azr.executor import ExecRequest, ExecResult, ExecStatus, Executor, ExecutorConfig, Policy, parse_value
from azr.tasks import Answer, FormatError, InternalError, Mistake, Stage, Task, Verdict
from azr.tasks.family import Check, Rules
from azr.tasks.guard import guarded
from azr.tasks.programs import FilterConfig
from azr.tasks.registry import family


class Equality(str, Enum):
    STRICT = "strict"
    PYTHON = "python"


def outputs_equal(answer: str, expected: str, equality: Equality | str = Equality.STRICT) -> bool:
    """Whether two canonical reprs are equal under `equality`."""
    if Equality(equality) is Equality.STRICT:
        return answer == expected
    return parse_value(answer, max_chars=None) == parse_value(expected, max_chars=None)  # canonical reprs, both


_STATUS_MISTAKE = {
    ExecStatus.ERROR: Mistake.ERROR,
    ExecStatus.TIMEOUT: Mistake.TIMEOUT,
    ExecStatus.MEMORY: Mistake.MEMORY,
    ExecStatus.INVALID_OUTPUT: Mistake.INVALID_OUTPUT,
    ExecStatus.INVALID_INPUT: Mistake.NOT_A_LITERAL,
    ExecStatus.BANNED: Mistake.BANNED,
}


@dataclass(frozen=True)
class _Check:
    """An answer waiting for sandbox runs (its family's Check), and the sandbox they go to."""

    index: int
    check: Check
    sandbox: str
    """The family whose own sandbox runs them (Family.sandbox), or "" for the run's executor."""


class Verifier:
    """Judges answers; the sandbox runs of a whole batch go to the executor at once."""

    def __init__(
        self,
        executor: Executor,
        equality: Equality | str = Equality.STRICT,
        filter: FilterConfig | None = None,
        hash_seed: int = 0,
        policy: bool = True,
        clock: int = 1,
    ) -> None:
        self.executor = executor
        self.equality = Equality(equality)
        self.filter = filter or FilterConfig()
        self.hash_seed = hash_seed
        """PYTHONHASHSEED of the runs: the seed the tasks' outputs were computed with
        (ValidationConfig.hash_seeds[0])."""
        self.clock = clock
        """The executor clock of the runs: validation's first run's (1, or 0 without
        ValidationConfig.shift_clock), so they share its workers."""
        self.policy = Policy(self.filter.banned_modules) if policy else None
        """The run-time policy the runs are under (azr.executor.policy), as in validation: a solver's
        program for an induction task reaching for the clock is `banned`, not lucky."""
        self._sandboxes: dict[str, Executor] = {}
        """Families' own sandboxes (math's, which can import math-verify), started when first needed."""
        self._configs: dict[str, ExecutorConfig | None] = {}
        """Each family's own sandbox config (None: the run's executor), asked once."""

    @property
    def rules(self) -> Rules:
        limits = self.executor.config
        return Rules(self.filter, limits.max_input_chars, limits.max_output_chars, equality=self.equality.value)

    def verify(self, items: Sequence[tuple[Task, Answer | FormatError | InternalError]]) -> list[Verdict]:
        rules = self.rules
        verdicts: list[Verdict | None] = [None] * len(items)
        checks: list[_Check] = []
        for index, (task, answer) in enumerate(items):
            prepared = guarded(Stage.PREPARE_ANSWER, self._prepare, index, task, answer, rules)
            if isinstance(prepared, _Check):
                checks.append(prepared)
            else:
                verdicts[index] = _judged(prepared)
        ran: dict[tuple[str, str, str, bool], ExecResult] = {}
        for sandbox in dict.fromkeys(check.sandbox for check in checks):
            # Each distinct run goes once: N_mc samples of one answer are often identical.
            unique = list(dict.fromkeys(
                (sandbox, program, input, check.check.policy)
                for check in checks if check.sandbox == sandbox for program, input, _ in check.check.runs
            ))  # fmt: skip
            requests = [
                ExecRequest(program, input, self.policy if policy else None) for _, program, input, policy in unique
            ]
            results = self._executor(sandbox).run_batch(requests, hash_seed=self.hash_seed, clock=self.clock)
            ran.update(zip(unique, results, strict=True))
        for check in checks:
            verdicts[check.index] = _judged(guarded(Stage.COMPARE, self._compare, check, ran))
        return verdicts  # type: ignore[return-value]

    def _executor(self, sandbox: str) -> Executor:
        if not sandbox:
            return self.executor
        if sandbox not in self._sandboxes:
            self._sandboxes[sandbox] = Executor(self._own_config(sandbox)).__enter__()
        return self._sandboxes[sandbox]

    def _own_config(self, name: str) -> ExecutorConfig | None:
        if name not in self._configs:
            self._configs[name] = family(name).sandbox(self.executor.config)
        return self._configs[name]

    def close(self) -> None:
        """Stop the families' own sandboxes (the run's executor is its owner's to close)."""
        for executor in self._sandboxes.values():
            executor.__exit__(None, None, None)
        self._sandboxes.clear()

    def _compare(self, check: _Check, ran: dict[tuple[str, str, str, bool], ExecResult]) -> Verdict:
        """Correct iff every run returned its expected output; the first that did not says why, and
        `passed` is the fraction that did."""
        runs = check.check.runs
        first: Verdict | None = None
        right = 0
        for program, input, expected in runs:
            result = ran[check.sandbox, program, input, check.check.policy]
            if not result.ok:
                first = first or Verdict(False, _STATUS_MISTAKE[result.status], result.error)
            elif not outputs_equal(result.output, expected, self.equality):  # type: ignore[arg-type]
                first = first or Verdict(False, Mistake.WRONG, f"on {input[:200]} returned {result.output[:200]}")  # type: ignore[index]
            else:
                right += 1
        passed = right / len(runs) if runs else 0.0
        return replace(first, passed=passed) if first is not None else Verdict(True, passed=passed)

    def _prepare(
        self, index: int, task: Task, answer: Answer | FormatError | InternalError, rules: Rules
    ) -> Verdict | _Check:
        """The verdict, when no run is needed (a malformed answer, any deduction answer), else the
        runs that decide it."""
        if isinstance(answer, InternalError):  # the template's parser raised on it
            return answer.mistake()
        if isinstance(answer, FormatError):
            return Verdict(False, Mistake.FORMAT, answer.reason)
        kind = family(task.task_type)
        judged = kind.judge(task, answer, rules)
        if isinstance(judged, Verdict):
            return judged
        return _Check(index, judged, kind.name if self._own_config(kind.name) is not None else "")


def _judged(outcome: Verdict | InternalError) -> Verdict:
    return outcome.mistake() if isinstance(outcome, InternalError) else outcome


def accuracy(verdicts: Sequence[Verdict]) -> float:
    return sum(v.correct for v in verdicts) / len(verdicts) if verdicts else 0.0
