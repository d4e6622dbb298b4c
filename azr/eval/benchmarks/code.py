"""Code benchmarks: HumanEval(+), MBPP+ and LiveCodeBench, each problem judged by its own tests in
the sandbox (a TestRequest: the program, then the tests; correct iff nothing raises).

Rows are read in each benchmark's published format:

- HumanEval and HumanEval+ (`task_id`, `prompt`, `canonical_solution`, `entry_point`, `test`): the
  program is the prompt and its completion; `test` defines `check(candidate)` without calling it
  (HumanEval+'s loops over its inputs and expected results, compared by an `assertion` helper that
  imports numpy), so the tests are `test` then `check(<entry_point>)`.
- MBPP+ (`task_id` a number, `prompt` the description, `code`, `test_list` MBPP's asserts,
  `test_imports`, `test`): the prompt is the description and the first assert, in a docstring, as
  EvalPlus asks it; the entry point is the function that assert calls (`assert set(f(...)) == ...`
  calls `f`); the tests are `test_imports` then `test`, top-level code that imports numpy and calls
  the function by name on each input.
- LiveCodeBench (`question_id`, `question_content`, `starter_code`, `public_test_cases`,
  `private_test_cases`, `metadata`, ...): the cases are a JSON list of `input`, `output` and
  `testtype`; the private ones may instead be that JSON text pickled, zlib-compressed and base64
  encoded (unpickled here with every class refused); `metadata` is JSON, with `func_name` for
  LeetCode problems. Judged as LiveCodeBench's harness does: a stdin problem runs once per case with
  the input as stdin (and `open(0)`), and its printed text matches when, stripped and split into
  lines, every stripped line equals the expected one or holds the same numbers (as Decimals); a
  LeetCode ("functional") problem calls `Solution().<func_name>` (or a top-level `<func_name>`) with
  one JSON argument per input line and compares with the JSON output, a tuple counting as a list.
  Programs start with the imports the harness gives them (LCB_HEADER), and each case has its
  harness's time limit (LCB_CASE_SECONDS), the request as a whole one per case.

The tests run with the standard library only. numpy, which the EvalPlus tests import for their
float comparisons, is replaced there by a stand-in with what they use (NUMPY).
"""

from __future__ import annotations

import ast
import base64
import binascii
import builtins
import dataclasses
import io
import json
import pickle
import re
import zlib
from collections.abc import Sequence
from typing import Any

from azr.eval.benchmarks import Benchmark, CodeProblem, field_of
from azr.executor import ExecStatus, TestRequest
from azr.tasks import FormatError, Mistake, Verdict

_LCB_MODULES = (
    "string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random", "statistics",
    "itertools", "functools", "operator", "io", "sys", "json",
)  # fmt: skip
LCB_HEADER = (
    "".join(f"from {module} import *\n" for module in (*_LCB_MODULES, "builtins", "typing"))
    + f"import {', '.join(_LCB_MODULES)}\nsys.setrecursionlimit(50000)\n"
)
"""What LiveCodeBench's harness runs before a program: star imports of these modules, then of
builtins (so that `pow` and `open` stay the builtins) and typing, the modules themselves, and a
recursion limit of 50000."""

NUMPY = """
class ndarray:
    pass

float32 = float64 = float

def _close(actual, desired, rtol, atol, equal_nan):
    if isinstance(actual, (list, tuple)) or isinstance(desired, (list, tuple)):
        return (
            isinstance(actual, (list, tuple)) and isinstance(desired, (list, tuple)) and len(actual) == len(desired)
            and all(_close(a, d, rtol, atol, equal_nan) for a, d in zip(actual, desired))
        )
    if actual != actual and desired != desired:
        return equal_nan
    return actual == desired or abs(actual - desired) <= atol + rtol * abs(desired)

def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return _close(a, b, rtol, atol, equal_nan)

class testing:
    @staticmethod
    def assert_allclose(actual, desired, rtol=1e-07, atol=0, equal_nan=True, err_msg="", verbose=True):
        if not _close(actual, desired, rtol, atol, equal_nan):
            raise AssertionError(f"not close (rtol={rtol}, atol={atol}): {actual!r:.200} != {desired!r:.200}")
"""
"""The numpy that EvalPlus's tests use (`np.testing.assert_allclose`, `np.allclose`, and
`np.ndarray`, `np.float64` in isinstance checks), for lists, tuples and numbers."""

_NUMPY_PRELUDE = (
    "import sys as _sys, types as _types\n_numpy = _types.ModuleType('numpy')\n"
    f"exec({NUMPY!r}, _numpy.__dict__)\n_sys.modules.setdefault('numpy', _numpy)\n"
)


def humaneval(name: str, rows: list[dict[str, Any]], source: str) -> Benchmark:
    benchmark = Benchmark(name, "code", source, [])
    for row in rows:
        try:
            entry = _text(row["entry_point"], "entry_point")
            tests = f"{_NUMPY_PRELUDE}{_text(row['test'], 'test')}\n\ncheck({entry})\n"
            benchmark.problems.append(CodeProblem(str(row["task_id"]), _text(row["prompt"], "prompt"), tests, entry))
        except (KeyError, TypeError):
            benchmark.skip("malformed row (needs task_id, prompt, test, entry_point)")
    return benchmark


def mbpp_plus(name: str, rows: list[dict[str, Any]], source: str) -> Benchmark:
    benchmark = Benchmark(name, "code", source, [])
    for row in rows:
        try:
            example = _text(row["test_list"][0], "test_list")
            prompt = f'"""\n{_text(row["prompt"], "prompt").strip()}\n{example.strip()}\n"""\n'
            tests = "\n".join([_NUMPY_PRELUDE, *(row.get("test_imports") or []), _text(row["test"], "test")]) + "\n"
            benchmark.problems.append(CodeProblem(_mbpp_id(row["task_id"]), prompt, tests, _called(example)))
        except (KeyError, TypeError, IndexError, ValueError, SyntaxError, RecursionError, MemoryError):
            benchmark.skip("malformed row (needs task_id, prompt, test_list, test)")
    return benchmark


def _mbpp_id(task_id: Any) -> str:
    """EvalPlus's spelling of an MBPP id, `Mbpp/2`, whether the row holds 2 or `Mbpp/2`."""
    return str(task_id) if str(task_id).startswith("Mbpp/") else f"Mbpp/{task_id}"


def _called(assertion: str) -> str:
    """The function an MBPP assert tests: the first one it calls that is not a builtin."""
    for node in ast.walk(ast.parse(assertion.strip())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not hasattr(builtins, node.func.id):
            return node.func.id
    raise ValueError("the first test calls no function")


def livecodebench(name: str, rows: list[dict[str, Any]], source: str) -> Benchmark:
    benchmark = Benchmark(name, "code", source, [])
    for row in rows:
        try:
            cases = _cases(row["public_test_cases"]) + _cases(row.get("private_test_cases") or "[]")
            metadata = row.get("metadata") or "{}"
            metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
            starter = row.get("starter_code") or ""
            prompt = f'"""\n{_text(row["question_content"], "question_content").strip()}\n"""\n' + (
                starter if starter else "# Read the input from stdin and print the answer.\n"
            )
            if not cases:
                raise ValueError("no test cases")
            if cases[0]["testtype"] == "functional":
                entry = metadata["func_name"]
                tests = _functional_tests(entry, cases)
            else:
                tests, entry = _stdin_tests(cases), ""
            task_id = str(field_of(row, ["question_id", "task_id"], "id"))
            seconds = min(3600.0, LCB_CASE_SECONDS * len(cases) + 5.0)
            benchmark.problems.append(
                CodeProblem(task_id, prompt, tests, entry, stdin=not entry, header=LCB_HEADER, seconds=seconds)
            )
        except (binascii.Error, zlib.error, EOFError, pickle.UnpicklingError):
            benchmark.skip("unreadable private_test_cases (neither JSON nor a compressed pickle of JSON text)")
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError, MemoryError) as error:
            benchmark.skip(f"malformed row ({type(error).__name__})")
    return benchmark


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} is not text")
    return value


def _cases(stored: str | list) -> list[dict[str, str]]:
    if isinstance(stored, list):
        return stored
    if stored.lstrip().startswith("["):
        return json.loads(stored)
    return json.loads(_NoClasses(io.BytesIO(zlib.decompress(base64.b64decode(stored, validate=True)))).load())


class _NoClasses(pickle.Unpickler):
    """LiveCodeBench pickles a plain JSON string: refuse anything that would import or call."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused to load {module}.{name} from a benchmark file")


# The harnesses below are test code that runs inside the sandbox with the program.

_STDIN = """
import builtins, io, sys
from decimal import Decimal, InvalidOperation

def _lines(text):
    return [line.strip() for line in text.strip().split("\\n")]

def _same(got, want):
    if got == want:
        return True
    try:
        return [Decimal(word) for word in got.split()] == [Decimal(word) for word in want.split()]
    except InvalidOperation:
        return False

_real_open = builtins.open
builtins.open = lambda file, *args, **kwargs: sys.stdin if file == 0 else _real_open(file, *args, **kwargs)
_program = compile(_PROGRAM, "<program>", "exec")
for _number, (_stdin, _expected) in enumerate(_CASES, 1):
    sys.stdin = io.TextIOWrapper(io.BytesIO(_stdin.encode()), encoding="utf-8")
    sys.stdout = _printed = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    signal.setitimer(signal.ITIMER_REAL, _CASE_SECONDS)
    try:
        _scope = {"__name__": "__main__"}
        exec(_HEADER, _scope)
        exec(_program, _scope)
    except SystemExit:
        pass  # ending with sys.exit() once the answer is printed is fine
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout = sys.__stdout__
    _text = _printed.buffer.getvalue().decode(errors="replace")
    _got, _want = _lines(_text), _lines(_expected)
    assert len(_got) == len(_want) and all(map(_same, _got, _want)), (
        f"case {_number}: expected {_expected[:200]!r}, printed {_text[:200]!r}"
    )
"""


LCB_CASE_SECONDS = 6.0
"""LiveCodeBench's time limit per test case; a problem's whole request gets one per case."""

_CASE_LIMIT = f"""
import signal
_CASE_SECONDS = {LCB_CASE_SECONDS!r}
def _case_over(*_):
    raise TimeoutError(f"a test case ran over {{_CASE_SECONDS:g}} s")
signal.signal(signal.SIGALRM, _case_over)
"""
"""Per-case limits, as LiveCodeBench times each case: `signal.setitimer` before a case, off after."""


def _stdin_tests(cases: Sequence[dict[str, str]]) -> str:
    """Tests that run the program (given as `_PROGRAM`, bound when scored) once per case."""
    return f"_CASES = {[(c['input'], c['output']) for c in cases]!r}\n{_CASE_LIMIT}{_STDIN}"


def _functional_tests(func_name: str, cases: Sequence[dict[str, str]]) -> str:
    pairs = [(c["input"], c["output"]) for c in cases]
    return (
        f"import json\n{_CASE_LIMIT}"
        f"_method = getattr(Solution(), {func_name!r}) if 'Solution' in globals() else globals()[{func_name!r}]\n"
        f"for _number, (_input, _expected) in enumerate({pairs!r}, 1):\n"
        "    _arguments = [json.loads(line) for line in _input.split('\\n') if line.strip()]\n"
        "    signal.setitimer(signal.ITIMER_REAL, _CASE_SECONDS)\n"
        "    try:\n"
        "        _got = _method(*_arguments)\n"
        "    finally:\n"
        "        signal.setitimer(signal.ITIMER_REAL, 0)\n"
        "    _got = list(_got) if isinstance(_got, tuple) else _got\n"
        "    assert _got == json.loads(_expected), f'case {_number}: expected {_expected[:200]}, got {_got!r:.200}'\n"
    )


def program_of(problem: CodeProblem, completion: str) -> str:
    """An external completion as a whole program: the completion alone when it defines the entry
    point (or is a stdin program), else the prompt followed by it (HumanEval's samples format)."""
    if not problem.entry_point or _defines(completion, problem.entry_point):
        return completion
    return problem.prompt + completion


def _defines(text: str, name: str) -> bool:
    """Whether a line of `text` starts, after blanks, with `def name(`. The same as a search of
    `^\\s*def name\\s*\\(` (MULTILINE), whose `\\s*` also crosses newlines and so rescans each run of
    them once per line start in it; `[^\\S\\n]*` stays on the line and matches where it does."""
    return re.search(rf"^[^\S\n]*def {re.escape(name)}\s*\(", text, re.M) is not None


def request(problem: CodeProblem, program: str) -> TestRequest:
    """The test request for one program. A header runs before the program but is not spliced into
    its text, so an error's line number is the program's own."""
    if problem.stdin:  # the program reads stdin at the top level: the tests run it, once per case
        return TestRequest("", f"_HEADER = {problem.header!r}\n_PROGRAM = {program!r}\n{problem.tests}")
    if problem.header:
        return TestRequest(problem.header, f"exec(compile({program!r}, '<program>', 'exec'))\n{problem.tests}")
    return TestRequest(program, problem.tests)


def score(executor: Any, benchmark: Benchmark, programs: Sequence[Sequence[str | FormatError]]) -> list[list[Verdict]]:
    """The verdict on each program (a list per problem), all tests in one executor batch."""
    flat = [
        (i, j, program)
        for i, (problem, answers) in enumerate(zip(benchmark.problems, programs, strict=True))
        for j, program in enumerate(answers)
    ]
    verdicts: list[list[Verdict | None]] = [[None] * len(answers) for answers in programs]
    pending = []
    for i, j, program in flat:
        if isinstance(program, FormatError):
            verdicts[i][j] = Verdict(False, Mistake.FORMAT, program.reason)
        else:
            pending.append((i, j, request(benchmark.problems[i], program)))
    needed = max((p.seconds for p in benchmark.problems), default=0.0)
    if needed > executor.config.timeout:  # per-case limits inside; the whole request needs longer
        from azr.executor import Executor

        with Executor(dataclasses.replace(executor.config, timeout=needed)) as patient:
            results = patient.run_batch([request for _, _, request in pending])
    else:
        results = executor.run_batch([request for _, _, request in pending])
    for (i, j, _), result in zip(pending, results, strict=True):
        verdicts[i][j] = _verdict(result)
    return verdicts  # type: ignore[return-value]


def _verdict(result: Any) -> Verdict:
    if result.ok:
        return Verdict(True)
    if result.status is ExecStatus.ERROR:
        if result.error.startswith("TimeoutError: a test case ran over"):
            return Verdict(False, Mistake.TIMEOUT, result.error)
        wrong = result.error.startswith("AssertionError")
        return Verdict(False, Mistake.WRONG if wrong else Mistake.ERROR, result.error)
    mistake = {ExecStatus.TIMEOUT: Mistake.TIMEOUT, ExecStatus.MEMORY: Mistake.MEMORY}.get(result.status, Mistake.ERROR)
    return Verdict(False, mistake, result.error)
