"""Math benchmarks: a final answer per problem, checked against the reference with math-verify.

Rows are read as the published datasets spell them: the problem as `problem` (MATH-500, AIME,
AIME 2025) or `question` (AMC 2023, Minerva, OlympiadBench); the reference as `answer` (a number
in AMC 2023, where 27 is stored as 27.0), `final_answer` (OlympiadBench: a list, in practice of one
string such as `$3$, $-3$`) or, when there is none, a worked `solution` holding a `\\boxed{}`; the
id as `unique_id`, `id` or `problem_id` (else the row number).

Text without LaTeX delimiters (an unescaped `$`, or `\\boxed`) is read as LaTeX math, `$text$`:
math-verify reads bare text as plain expressions, where MATH-500's `\\dfrac{14}{3}` is nothing and
`\\left( 3, \\frac{\\pi}{2} \\right)` is 3. That holds for references; an answer is tried both as it
is (math-verify finds its last `\\boxed{}` or `$...$`) and as LaTeX math, and either may match.

math-verify parses answers with sympy, whose parser calls `eval`: model text must not reach it in
our process. So the check runs in the sandbox, with math-verify's directories mounted read-only
(`ExecutorConfig.python_paths`), one request per problem holding all of its answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from azr.eval.benchmarks import Benchmark, BenchmarkError, MathProblem, field_of
from azr.tasks import FormatError, Mistake, Verdict
from azr.tasks import math as math_family
from azr.tasks.math import SCORER

_PROBLEM = ("problem", "question", "Problem", "Question")
_ANSWER = ("answer", "final_answer", "Answer", "expected_answer")
_ID = ("unique_id", "id", "problem_id")


def load(name: str, rows: list[dict[str, Any]], source: str) -> Benchmark:
    scorer_paths()  # fail now, not after generating every answer, when math-verify is missing
    benchmark = Benchmark(name, "math", source, [])
    for number, row in enumerate(rows, 1):
        try:
            problem = field_of(row, _PROBLEM, "problem")
            if not isinstance(problem, str) or not problem.strip():
                raise KeyError("empty problem")
            answer = _reference(row)
            task_id = next((row[key] for key in _ID if row.get(key) is not None), f"{name}/{number}")
            benchmark.problems.append(MathProblem(str(task_id), problem, answer))
        except KeyError as error:
            benchmark.skip(f"malformed row: {error.args[0]}")
    return benchmark


def _reference(row: dict[str, Any]) -> str:
    """The reference answer as text: OlympiadBench's list joined, AMC's 27.0 as 27, else the worked
    solution when it has a `\\boxed{}`."""
    try:
        answer = field_of(row, _ANSWER, "answer")
    except KeyError:
        answer = row.get("solution")
        if not isinstance(answer, str) or "\\boxed" not in answer:
            raise KeyError(f"no answer field ({' / '.join(_ANSWER)}) nor a solution with \\boxed{{}}") from None
    if isinstance(answer, list):
        answer = ", ".join(str(part) for part in answer)
    elif isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    if not isinstance(answer, str | int | float) or not str(answer).strip():
        raise KeyError("empty or non-scalar answer")
    return str(answer).strip()


def scorer_paths() -> tuple[str, ...]:
    """Where math-verify is installed, for the scorer's sandbox (azr.tasks.math.scorer_paths)."""
    try:
        return math_family.scorer_paths()
    except math_family.MathVerifyMissing as error:
        raise BenchmarkError(str(error).replace("azr[math]", "azr[eval]")) from None


def score(executor: Any, benchmark: Benchmark, answers: Sequence[Sequence[str | FormatError]]) -> list[list[Verdict]]:
    """The verdict on each answer (a list per problem). Uses a sandbox of its own that can import
    math-verify, with the limits of `executor`, and time enough for math-verify's own limits (5 s
    to parse, 5 to verify, each answer read two ways) on every answer of a problem."""
    from azr.executor import ExecRequest, Executor

    scorer_paths()
    most = max((len(per_problem) for per_problem in answers), default=1)
    config = math_family.scorer_config(executor.config, answers=most, max_input_chars=10_000_000)
    texts = [[a for a in per_problem if not isinstance(a, FormatError)] for per_problem in answers]
    with Executor(config) as sandbox:
        results = sandbox.run_batch(
            [ExecRequest(SCORER, f"{p.answer!r}, {t!r}") for p, t in zip(benchmark.problems, texts, strict=True)]
        )
    verdicts = []
    for per_problem, result in zip(answers, results, strict=True):
        checked = iter(_booleans(result, sum(not isinstance(a, FormatError) for a in per_problem)))
        verdicts.append(
            [
                Verdict(False, Mistake.FORMAT, a.reason) if isinstance(a, FormatError) else next(checked)
                for a in per_problem
            ]
        )
    return verdicts


def _booleans(result: Any, n: int) -> list[Verdict]:
    if not result.ok:
        if "No module named" in result.error:
            raise BenchmarkError(f"the sandbox cannot import math-verify: {result.error}")
        return [Verdict(False, Mistake.ERROR, f"math-verify: {result.error}")] * n
    from azr.executor import parse_value

    # Model text ran through sympy in there: trust the output's shape no more than the answers.
    verdicts = parse_value(result.output)
    if not (isinstance(verdicts, list) and len(verdicts) == n and all(isinstance(v, bool) for v in verdicts)):
        return [Verdict(False, Mistake.ERROR, "math-verify: malformed verdicts")] * n
    return [Verdict(True) if ok else Verdict(False, Mistake.WRONG, "not equivalent") for ok in verdicts]
