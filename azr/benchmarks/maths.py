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

import dataclasses
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from azr.benchmarks import Benchmark, BenchmarkError, MathProblem, field_of
from azr.tasks import FormatError, Mistake, Verdict

SCORER = r"""
import re
from math_verify import parse, verify

def latex(text):
    return text if re.search(r"(?<!\\)\$|\\boxed", text) else "$" + text + "$"

def correct(gold, answer):
    for reading in dict.fromkeys([answer, latex(answer)]):
        try:
            if verify(gold, parse(reading)):
                return True
        except Exception:
            pass
    return False

def f(reference, answers):
    gold = parse(latex(reference))
    return [bool(gold) and correct(gold, answer) for answer in answers]
"""
"""Runs in the sandbox: `f(reference, answers)` -> one bool per answer."""

_PACKAGES = ("math_verify", "latex2sympy2_extended", "sympy", "mpmath", "antlr4")


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
    """The site-packages directories math-verify and its dependencies are installed in (mounted
    read-only for the scorer). Only installed packages: a checkout found through PYTHONPATH would
    show its whole directory to the model's text."""
    paths = set()
    for package in _PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise BenchmarkError("math benchmarks need math-verify: pip install 'azr[eval]' (or math-verify)")
        parent = Path(next(iter(spec.submodule_search_locations))).resolve().parent
        if parent.name not in ("site-packages", "dist-packages"):
            raise BenchmarkError(f"{package} is not installed in a site-packages directory ({parent}): pip install it")
        paths.add(str(parent))
    return tuple(sorted(paths))


def score(executor: Any, benchmark: Benchmark, answers: Sequence[Sequence[str | FormatError]]) -> list[list[Verdict]]:
    """The verdict on each answer (a list per problem). Uses a sandbox of its own that can import
    math-verify, with the limits of `executor`, and time enough for math-verify's own limits (5 s
    to parse, 5 to verify, each answer read two ways) on every answer of a problem."""
    from azr.executor import ExecRequest, Executor

    most = max((len(per_problem) for per_problem in answers), default=1)
    config = dataclasses.replace(
        executor.config,
        python_paths=scorer_paths(),
        max_input_chars=10_000_000,
        timeout=min(3600.0, max(executor.config.timeout, 30.0 + 20.0 * most)),
        memory_mb=max(executor.config.memory_mb, 2048),
    )
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
