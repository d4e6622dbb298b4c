"""Prompt templates: the text the model sees in each (role, task type), and reading its answers.

A template owns both directions, so the format a model is asked for and the format it is parsed
in cannot drift apart. Two are provided, chosen by name in the config:

- `azr` (azr.prompts.paper): the paper's, for real models. R1-style `<think>`/`<answer>` with
  fenced `python`, `input`, `output` and `message` blocks; plain text for base models, or wrapped
  in a tokenizer's chat template for instruct models.
- `compact` (azr.prompts.compact): a terse format with special markers, for the tiny embedded
  model, which cannot read two pages of instructions.

Parsing sees only the completion, never the prompt, so it does not depend on how the prompt ended
(the reference implementation split on the literal "Assistant:"). A malformed completion gives a
FormatError with a reason; parsing never raises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from azr.tasks import Answer, FormatError, InductionProposal, Task, TaskType, TripletProposal, TripletTask


class Template(ABC):
    """How prompts are written and completions read, for every (role, task type)."""

    name: str
    stop: tuple[str, ...] = ()
    """Strings at which generation may stop: the completion is complete once one appears."""

    def __init__(self, n_inputs: int = 10, banned: Sequence[str] | None = None) -> None:
        self.n_inputs = n_inputs
        """Inputs the induction proposer is asked for."""
        if banned is None:
            from azr.tasks.programs import FilterConfig

            banned = FilterConfig().banned_modules + FilterConfig().banned_names
        self.banned = tuple(banned)
        """Modules and names the proposer is told not to use (default: the static filter's lists)."""

    @abstractmethod
    def propose_prompt(self, task_type: TaskType, references: Sequence[Task]) -> str:
        """The proposer's prompt. Deduction and abduction: K reference triplets to differ from.
        Induction: one reference, whose program the proposer writes inputs and a message for."""

    @abstractmethod
    def solve_prompt(self, task: Task) -> str:
        """The solver's prompt for a task (for induction: the message and the given pairs)."""

    @abstractmethod
    def parse_proposal(
        self, task_type: TaskType, completion: str, program: str | None = None
    ) -> TripletProposal | InductionProposal | FormatError:
        """Read a proposer's completion. For induction, `program` is the one it was shown."""

    @abstractmethod
    def parse_answer(self, task_type: TaskType, completion: str) -> Answer | FormatError:
        """Read a solver's completion."""

    def render(self, prompt: str, chat_template: Any = None) -> str:
        """The full text given to the model. `chat_template`: a tokenizer with
        `apply_chat_template`, for instruct models; None for base models."""
        return prompt

    # -- benchmarks outside self-play (azr.benchmarks): code to write, math to solve ------------
    # By default completion style, as base models are evaluated on HumanEval (Chen et al. 2021): the
    # model continues the code, or the text after "Solution:". Templates with instructions override.

    code_stop: tuple[str, ...] = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\nassert ", "\n#")
    """Where a completed function ends (Codex's stop list): not for stdin programs, whose top level
    is the solution."""
    math_stop: tuple[str, ...] = ("\nProblem:",)

    def code_stops(self, stdin: bool) -> tuple[str, ...]:
        return self.stop if stdin else self.code_stop

    def code_prompt(self, prompt: str) -> str:
        """The prompt for a code benchmark problem. `prompt` is code that ends where the solution
        starts: a signature and docstring (HumanEval), or a docstring and starter code."""
        return prompt

    def parse_code(self, prompt: str, completion: str, stdin: bool = False) -> str | FormatError:
        """The program to test: the prompt with the completion up to the first stop string."""
        return prompt + _cut(completion, self.code_stops(stdin))

    def math_prompt(self, problem: str) -> str:
        return f"Problem: {problem}\nGive the final answer in \\boxed{{}}.\nSolution:"

    def parse_math(self, completion: str) -> str | FormatError:
        """The text the final answer is read from (math-verify finds the last \\boxed{} in it)."""
        return _cut(completion, self.math_stop)


def _cut(text: str, stops: Sequence[str]) -> str:
    ends = [i for i in (text.find(stop) for stop in stops) if i >= 0]
    return text[: min(ends)] if ends else text


def reference_program(references: Sequence[Task]) -> str:
    if len(references) != 1:
        raise ValueError(f"the induction proposer takes exactly one reference, got {len(references)}")
    return references[0].program


def triplets(references: Sequence[Task]) -> list[TripletTask]:
    if not all(isinstance(task, TripletTask) for task in references):
        raise ValueError("deduction and abduction proposers take triplet references")
    return list(references)  # type: ignore[arg-type]


TEMPLATES = ("azr", "compact")


def get_template(name: str, **options: Any) -> Template:
    """The template called `name` (`azr` or `compact`)."""
    if name == "azr":
        from azr.prompts.paper import PaperTemplate

        return PaperTemplate(**options)
    if name == "compact":
        from azr.prompts.compact import CompactTemplate

        return CompactTemplate(**options)
    raise ValueError(f"unknown template {name!r}: choose one of {', '.join(TEMPLATES)}")
