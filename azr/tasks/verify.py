"""Verify answers: is a solver's answer correct (AZR paper section 3.3.4; AZR.md section 2)?

- deduction: the answer is a literal whose value equals the task's output;
- abduction: the program, run on the answer (an argument list), returns the task's output; any such
  input counts;
- induction: the answer is a program that passes the static filter and returns every hidden
  pair's output on its input.

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
from dataclasses import dataclass
from enum import Enum

from azr.executor import (
    ExecRequest,
    ExecResult,
    ExecStatus,
    Executor,
    NotPlainData,
    Policy,
    canonical,
    parse_arguments,
    parse_value,
)
from azr.tasks.guard import guarded
from azr.tasks.programs import FilterConfig, check_program
from azr.tasks import (
    Answer,
    FormatError,
    InductionTask,
    InternalError,
    Mistake,
    Rejection,
    Stage,
    Task,
    TaskType,
    TripletTask,
    Verdict,
)


class Equality(str, Enum):
    STRICT = "strict"
    PYTHON = "python"


def outputs_equal(answer: str, expected: str, equality: Equality = Equality.STRICT) -> bool:
    """Whether two canonical reprs are equal under `equality`."""
    if equality is Equality.STRICT:
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
    """An answer waiting for sandbox runs: each (program, input) must return its expected output."""

    index: int
    runs: tuple[tuple[str, str, str], ...]


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

    def verify(self, items: Sequence[tuple[Task, Answer | FormatError | InternalError]]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(items)
        checks: list[_Check] = []
        for index, (task, answer) in enumerate(items):
            prepared = guarded(Stage.PREPARE_ANSWER, self._prepare, index, task, answer)
            if isinstance(prepared, _Check):
                checks.append(prepared)
            else:
                verdicts[index] = _judged(prepared)
        # Each distinct (program, input) runs once: N_mc samples of one answer are often identical.
        unique = list(dict.fromkeys((program, input) for check in checks for program, input, _ in check.runs))
        results = self.executor.run_batch(
            [ExecRequest(program, input, self.policy) for program, input in unique],
            hash_seed=self.hash_seed,
            clock=self.clock,
        )
        ran = dict(zip(unique, results, strict=True))
        for check in checks:
            verdicts[check.index] = _judged(guarded(Stage.COMPARE, self._compare, check, ran))
        return verdicts  # type: ignore[return-value]

    def _compare(self, check: _Check, ran: dict[tuple[str, str], ExecResult]) -> Verdict:
        """Correct iff every run returned its expected output."""
        for program, input, expected in check.runs:
            result = ran[program, input]
            if not result.ok:
                return Verdict(False, _STATUS_MISTAKE[result.status], result.error)
            if not outputs_equal(result.output, expected, self.equality):  # type: ignore[arg-type]
                return Verdict(False, Mistake.WRONG, f"on {input} returned {result.output}")
        return Verdict(True)

    def _prepare(self, index: int, task: Task, answer: Answer | FormatError | InternalError) -> Verdict | _Check:
        """The verdict, when no run is needed (a malformed answer, any deduction answer), else the
        runs that decide it."""
        if isinstance(answer, InternalError):  # the template's parser raised on it
            return answer.mistake()
        if isinstance(answer, FormatError):
            return Verdict(False, Mistake.FORMAT, answer.reason)
        limit = self.executor.config.max_input_chars
        if isinstance(task, InductionTask):
            check = check_program(answer.text, self.filter)
            if not check.ok:
                mistake = Mistake.BANNED if check.rejection is Rejection.BANNED else Mistake.ERROR
                return Verdict(False, mistake, f"{check.rejection.value}: {check.detail}")  # type: ignore[union-attr]
            if not task.hidden_pairs:  # nothing to check would make every program correct
                return Verdict(False, Mistake.WRONG, "the task has no hidden pairs to check the program on")
            return _Check(index, tuple((answer.text, i, o) for i, o in task.hidden_pairs))
        assert isinstance(task, TripletTask)
        if task.task_type is TaskType.DEDUCTION:
            try:
                if len(answer.text) > limit:
                    raise NotPlainData(f"answer is longer than {limit} characters")
                value = parse_value(answer.text.strip(), max_chars=limit)
                value = canonical(value, self.executor.config.max_output_chars)
            except NotPlainData as error:
                return Verdict(False, Mistake.NOT_A_LITERAL, str(error))
            if outputs_equal(value, task.output, self.equality):
                return Verdict(True)
            return Verdict(False, Mistake.WRONG, f"expected {task.output[:200]}, got {value[:200]}")
        try:
            arguments = parse_arguments(answer.text, limit).canonical()
        except NotPlainData as error:
            return Verdict(False, Mistake.NOT_A_LITERAL, str(error))
        return _Check(index, ((task.program, arguments, task.output),))


def _judged(outcome: Verdict | InternalError) -> Verdict:
    return outcome.mistake() if isinstance(outcome, InternalError) else outcome


def accuracy(verdicts: Sequence[Verdict]) -> float:
    return sum(v.correct for v in verdicts) / len(verdicts) if verdicts else 0.0
