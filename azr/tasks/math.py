"""Math: word problems grounded by a program (beyond the paper; opt in with
`selfplay.task_types=deduction,abduction,induction,math`).

The proposer, shown K earlier problems with their programs and answers (as deduction's proposer
is shown K triplets), writes a short word problem and a Python function `f()` of no arguments
that computes its answer. The proposal is validated like any program (filter, sandbox, two runs,
plain output), and the output must be a number: an int, a finite float, or an exact fraction
written as a string, '3/4'. The solver sees only the problem and gives its final answer in
`\\boxed{}`; math-verify, inside a sandbox of its own, judges it against the program's output.

The program is the answer key, so a problem whose text does not match its program is one the
solver never solves: its learnability reward (Eq. 4) is 0, as for a problem it always solves.

math-verify parses answers with sympy, whose parser calls `eval`: model text never reaches it
in our process. It needs the `math` extra (pip install 'azr[math]').
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azr.executor import parse_value
from azr.tasks import Answer, FormatError, Proposal, Role, Task, Validation, Verdict
from azr.tasks.code import checked_program, program_rules, task_output
from azr.tasks.family import Ask, AskOptions, Build, Check, Expect, Field, Fields, Rules, Runs, TaskFamily
from azr.tasks.programs import dedup_key

if TYPE_CHECKING:
    from azr.executor import ExecutorConfig
    from azr.tasks.store import TaskStore

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
"""Runs in the sandbox: `f(reference, answers)` -> one bool per answer. Text without LaTeX
delimiters is read as LaTeX math (`$text$`): math-verify reads bare text as plain expressions,
where `\\dfrac{14}{3}` is nothing."""

_PACKAGES = ("math_verify", "latex2sympy2_extended", "sympy", "mpmath", "antlr4")
_FRACTION = re.compile(r"-?[0-9]{1,100}/[0-9]{1,100}")
MAX_PROBLEM_CHARS = 2000
"""A longer problem is rejected (`empty_problem`): a word problem is a paragraph, not a page."""
MAX_ANSWER_CHARS = 1000
"""What math-verify reads of an answer: from its last `\\boxed` on, at most this much (of a bare
answer, its end)."""


@dataclass(frozen=True)
class MathTask:
    """A math task: `output` is what `program` (a function `f()` of no arguments) returns, and the
    answer to `problem`, the word problem the solver is shown."""

    problem: str
    program: str
    output: str
    """The program's output: a canonical repr of an int, a float or a fraction string ('3/4')."""
    imports: tuple[str, ...] = ()
    step: int = 0
    source: str = "proposed"
    task_type: str = field(default="math", init=False)


@dataclass(frozen=True)
class MathProposal:
    """A proposer's word problem and the program computing its answer, as written: not yet validated."""

    problem: str
    program: str
    task_type: str = field(default="math", init=False)


class MathRejection(str, Enum):
    """Why a math proposal did not become a task, beyond the reasons every program has (Rejection)."""

    NOT_A_NUMBER = "not_a_number"
    """The program's answer is not an int, a finite float or an exact fraction ('3/4')."""
    EMPTY_PROBLEM = "empty_problem"
    """The word problem is empty, or too long to show."""


class MathVerifyMissing(RuntimeError):
    """math-verify (or one of its dependencies) is not installed where the sandbox can mount it."""


@cache
def scorer_paths() -> tuple[str, ...]:
    """The site-packages directories math-verify and its dependencies are installed in (mounted
    read-only for the scorer). Only installed packages: a checkout found through PYTHONPATH would
    show its whole directory to the model's text."""
    paths = set()
    for package in _PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise MathVerifyMissing("math needs math-verify: pip install 'azr[math]' (or math-verify)")
        parent = Path(next(iter(spec.submodule_search_locations))).resolve().parent
        if parent.name not in ("site-packages", "dist-packages"):
            raise MathVerifyMissing(
                f"{package} is not installed in a site-packages directory ({parent}): pip install it"
            )
        paths.add(str(parent))
    return tuple(sorted(paths))


def scorer_config(base: ExecutorConfig, answers: int = 1, max_input_chars: int = 0) -> ExecutorConfig:
    """A sandbox like `base` that can import math-verify, with time for its own limits (5 s to
    parse, 5 to verify, each answer read two ways) on `answers` answers per request."""
    return dataclasses.replace(
        base,
        python_paths=scorer_paths(),
        max_input_chars=max(base.max_input_chars, max_input_chars),
        timeout=min(3600.0, max(base.timeout, 30.0 + 20.0 * answers)),
        memory_mb=max(base.memory_mb, 2048),
    )


def reference(output: str) -> str:
    """A program's output (a canonical repr) as the reference text math-verify reads: 42, 2.5, 3/4."""
    return str(parse_value(output, max_chars=None))


class MathFamily(TaskFamily):
    name = "math"
    code = "Q"
    columns = ("problem", "program", "output")
    propose_fields = (Expect("problem"), Expect("python", placeholder="def f():\n    ..."))
    solve_fields = (Expect("answer", fenced=False, placeholder="the final answer, in \\boxed{}"),)

    def references(self, store: TaskStore, k: int, rng: random.Random) -> list[Task] | None:
        return store.references(self.name, k, rng)

    def propose_ask(self, references: Sequence[Task], options: AskOptions) -> Ask:
        prose = (
            "A solver will be shown your problem, not your program, and must answer it. Write a short "
            "word problem whose answer is a number, and a Python function `f()` with no arguments that "
            "computes exactly that answer. Make the problem take careful, multi-step reasoning, and "
            "different from the examples below.",
            program_rules(options.banned).split("\n- An input")[0]
            + "\n- `f` takes no arguments and returns the answer: an int, a float, or an exact fraction "
            "as a string, e.g. '3/4'.",
        )
        examples = tuple(
            (Field("problem", t.problem), Field("python", t.program), Field("output", t.output))  # type: ignore[union-attr]
            for t in references
        )
        return Ask(self.name, Role.PROPOSE, self.code, "write a word problem and the program that answers it", prose,
                   self.propose_fields, examples)  # fmt: skip

    def proposal(self, fields: Fields, references: Sequence[Task]) -> Proposal | FormatError:
        return MathProposal(fields["problem"][0], fields["python"][0])

    def check(self, proposal: Proposal, rules: Rules) -> Runs | Validation:
        assert isinstance(proposal, MathProposal)
        check = checked_program(proposal.program, [proposal.problem], rules)
        if isinstance(check, Validation):
            return check
        if not proposal.problem.strip() or len(proposal.problem) > MAX_PROBLEM_CHARS:
            return Validation(None, MathRejection.EMPTY_PROBLEM, f"{len(proposal.problem.strip())} characters")
        return Runs(proposal.program, ("",), check.imports)  # f(), no arguments

    def check_outputs(self, proposal: Proposal, outputs: tuple[str, ...], rules: Rules) -> Validation | None:
        value = parse_value(outputs[0], max_chars=rules.max_output_chars)
        if type(value) is int or (type(value) is float and math.isfinite(value)):
            return None
        if type(value) is str and _FRACTION.fullmatch(value) and int(value.split("/")[1]) != 0:
            return None
        return Validation(None, MathRejection.NOT_A_NUMBER, f"f() returned {outputs[0][:100]}")

    def task(self, proposal: Proposal, runs: Runs, build: Build) -> Task:
        assert isinstance(proposal, MathProposal)
        return MathTask(proposal.problem.strip(), runs.program, build.outputs[0], runs.imports, build.step,
                        build.source)  # fmt: skip

    def solve_ask(self, task: Task, options: AskOptions) -> Ask:
        assert isinstance(task, MathTask)
        prose = (Field("problem", task.problem), "Give the final answer in \\boxed{}.")
        return Ask(self.name, Role.SOLVE, self.code, "solve the problem", prose, self.solve_fields)

    def answer(self, fields: Fields) -> Answer | FormatError:
        text = fields["answer"][0]
        if "\\boxed" not in text:
            return FormatError("no \\boxed{} in the answer")
        return Answer(self.name, text)

    def judge(self, task: Task, answer: Answer, rules: Rules) -> Verdict | Check:
        """math-verify, in the family's sandbox, on the answer's last `\\boxed{}` on."""
        assert isinstance(task, MathTask)
        boxed = answer.text.rfind("\\boxed")  # none: a bare final answer (azr verify without a template)
        text = answer.text[boxed:][:MAX_ANSWER_CHARS] if boxed >= 0 else answer.text[-MAX_ANSWER_CHARS:]
        return Check(((SCORER, f"{reference(task.output)!r}, {[text]!r}", "[True]"),), policy=False)

    def sandbox(self, base: ExecutorConfig) -> ExecutorConfig | None:
        return scorer_config(base)

    def require(self) -> str | None:
        try:
            scorer_paths()
        except MathVerifyMissing as error:
            return str(error)
        return None

    def dedup_key(self, task: Task) -> str:
        assert isinstance(task, MathTask)
        return dedup_key(task.program, [" ".join(task.problem.split())])

    def record(self, task: Task) -> dict[str, Any]:
        assert isinstance(task, MathTask)
        return {"problem": task.problem, "program": task.program, "output": task.output, "imports": list(task.imports)}

    def from_record(self, record: dict[str, Any], step: int, source: str) -> Task:
        return MathTask(record["problem"], record["program"], record["output"], tuple(record.get("imports", ())),
                        step, source)  # fmt: skip

    def read_row(self, row: dict[str, Any]) -> Proposal | str:
        if not isinstance(row.get("problem"), str):
            return '"problem" must be a string'
        return MathProposal(row["problem"], row["program"])

    def export_row(self, task: Task) -> dict[str, Any]:
        assert isinstance(task, MathTask)
        return {"snippet": task.program, "imports": list(task.imports), "task_type": self.name,
                "problem": task.problem, "output": task.output, "step": task.step, "source": task.source}  # fmt: skip

    def verify_item(self, data: dict[str, Any]) -> Task | str:
        output, problem = data.get("output"), data.get("problem", "")
        if not isinstance(output, str) or not isinstance(problem, str):
            return '"output" (the reference answer, e.g. "3/4") and "problem" must be strings'
        return MathTask(problem, "", task_output(repr(output) if not _is_number(output) else output))

    def summary(self, task: Task) -> str:
        assert isinstance(task, MathTask)
        return f"{task.problem} = {task.output}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


FAMILY = MathFamily()
