"""Prompt templates: how the fields a task family asks for are framed, and read back.

A family (azr.tasks.family) says what each prompt shows and what the completion must hold, as
labelled fields (an `Ask`); a template frames them and reads the completion's fields back. A
template owns both directions, so the format a model is asked for and the format it is parsed in
cannot drift apart, and it knows nothing about task types: a new family needs no template change.
Two are provided, chosen by name in the config:

- `azr` (azr.prompts.paper): the paper's, for real models. R1-style `<think>`/`<answer>` with
  fenced blocks labelled by field (`python`, `input`, `output`, `message`...); plain text for base
  models, or wrapped in a tokenizer's chat template for instruct models.
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

from azr.config import TemplateName, choices
from azr.tasks import Answer, FormatError, Proposal, Task, TripletTask
from azr.tasks.family import Ask, AskOptions, Expect, Fields
from azr.tasks.registry import family


class Template(ABC):
    """How an Ask is framed as a prompt and its completion read back into fields."""

    name: str
    stop: tuple[str, ...] = ()
    """Strings at which generation may stop: the completion is complete once one appears."""

    def __init__(self, n_inputs: int = 10, banned: Sequence[str] | None = None) -> None:
        if banned is None:
            from azr.tasks.programs import FilterConfig

            banned = FilterConfig().banned_modules + FilterConfig().banned_names
        self.options = AskOptions(n_inputs, tuple(banned))
        """What the prompts say that the run configures: the inputs the induction proposer is asked
        for, the modules and names the proposer is told not to use (default: the static filter's)."""

    @abstractmethod
    def frame(self, ask: Ask) -> str:
        """The prompt for an Ask."""

    @abstractmethod
    def read(self, expected: Sequence[Expect], completion: str) -> Fields | FormatError:
        """The fields of a completion (an Ask's `answer`), each as many times as expected; else why not."""

    def answer_marker(self, task_type: str) -> str | None:
        """The marker between a solver's scratchpad and its answer, where the template gives solvers
        one; else None. optim.scratchpad_weight uses it where it is one token of the model's."""
        return None

    # -- every family's prompts, through its Ask ---------------------------------------------------

    def propose_ask(self, task_type: str, references: Sequence[Task]) -> Ask:
        return family(task_type).propose_ask(references, self.options)

    def propose_prompt(self, task_type: str, references: Sequence[Task]) -> str:
        """The proposer's prompt, showing `references` (the family's draw from the buffers)."""
        return self.frame(self.propose_ask(task_type, references))

    def solve_prompt(self, task: Task) -> str:
        return self.frame(family(task.task_type).solve_ask(task, self.options))

    def parse_proposal(
        self, task_type: str, completion: str, references: Sequence[Task] = (), program: str | None = None
    ) -> Proposal | FormatError:
        """Read a proposer's completion to the prompt that showed `references`. `program`: the
        program an induction proposer was shown, when its reference is not at hand."""
        if program is not None:
            references = [TripletTask("deduction", program, "", "")]
        kind = family(task_type)
        fields = self.read(kind.propose_fields, completion)
        return fields if isinstance(fields, FormatError) else kind.proposal(fields, references)

    def parse_answer(self, task_type: str, completion: str) -> Answer | FormatError:
        """Read a solver's completion."""
        kind = family(task_type)
        fields = self.read(kind.solve_fields, completion)
        return fields if isinstance(fields, FormatError) else kind.answer(fields)

    def render(self, prompt: str, chat_template: Any = None) -> str:
        """The full text given to the model. `chat_template`: a tokenizer with
        `apply_chat_template`, for instruct models; None for base models."""
        return prompt

    # -- benchmarks outside self-play (azr.eval.benchmarks): code to write, math to solve ------------
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


TEMPLATES = choices(TemplateName)


def template_for(name: str, tokenizer: Any, **options: Any) -> Template:
    """The template called `name` for a model with this tokenizer: `compact` gives its solvers a
    scratchpad when the tokenizer has the `<T>` marker (the embedded model's has; one built without
    it was never trained to think)."""
    if name == "compact":
        from azr.prompts.compact import THINK

        options.setdefault("think", THINK in tokenizer.get_added_vocab())
    return get_template(name, **options)


def get_template(name: str, **options: Any) -> Template:
    """The template called `name` (`azr` or `compact`)."""
    if name == "azr":
        from azr.prompts.paper import PaperTemplate

        return PaperTemplate(**options)
    if name == "compact":
        from azr.prompts.compact import CompactTemplate

        return CompactTemplate(**options)
    raise ValueError(f"unknown template {name!r}: choose one of {', '.join(TEMPLATES)}")
