"""The `azr` template: the paper's format for real models (AZR paper, appendix prompts).

Base models get the DeepSeek-R1-Zero framing (a system line, `User:`, `Assistant: <think>`); instruct
models get the same system line and prompt through their tokenizer's chat template. The answer goes
in `<answer>...</answer>`, holding fenced blocks labelled `python`, `input`, `output` or `message`.

The wording is ours. As in the paper, each proposer is told what makes its task hard for the solver;
the reference implementation had the deduction and abduction versions of that sentence swapped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from azr.prompts import Template, reference_program, triplets
from azr.tasks import (
    Answer,
    FormatError,
    InductionProposal,
    InductionTask,
    Task,
    TaskType,
    TripletProposal,
    TripletTask,
)

SYSTEM = (
    "A conversation between User and Assistant. The User gives a task and the Assistant solves it. "
    "The Assistant first reasons step by step inside <think> </think>, then gives its final answer "
    "inside <answer> </answer>, i.e. <think> reasoning </think> <answer> answer </answer>."
)

_INPUT_RULE = """- An input is the argument list of one call to `f`, written as Python literals, e.g. `'abc', [1, 2]`
  or `nums=[3, 1], k=2`."""

_RULES = (
    """Rules:
- The program defines a function named `f`; helper functions and classes may come before it.
- It is deterministic: the same input always gives the same output.
- It must not use any of: {banned}.
"""
    + _INPUT_RULE
    + """
- `f` returns plain data: None, bool, int, float, str, bytes, and lists, tuples, dicts and sets of those."""
)

_HARDER = {
    TaskType.DEDUCTION: (
        "A solver will be shown your program and your input, and must work out the output without "
        "running the code. Make the output take careful, multi-step reasoning to deduce from the input."
    ),
    TaskType.ABDUCTION: (
        "A solver will be shown your program and the output it returns, and must find an input that "
        "produces that output. Make such an input take careful reasoning to infer from the output."
    ),
}


def _block(label: str, text: str) -> str:
    return f"```{label}\n{text}\n```"


class PaperTemplate(Template):
    name = "azr"
    stop = ("</answer>",)

    def propose_prompt(self, task_type: TaskType, references: Sequence[Task]) -> str:
        if task_type is TaskType.INDUCTION:
            return self._induction_proposal(reference_program(references))
        banned = ", ".join(self.banned) if self.banned else "randomness, the clock, files or the network"
        rules = _RULES.format(banned=banned)
        examples = "\n\n".join(
            f"Example {i}:\n"
            + _block("python", t.program)
            + "\n"
            + _block("input", t.input)
            + "\n"
            + _block("output", t.output)
            for i, t in enumerate(triplets(references), 1)
        )
        return (
            f"## Task: write a new Python program and one input for it\n\n{_HARDER[task_type]}\n\n"
            "Write a program that is different from the examples below and harder than them, and "
            f"an input for it.\n\n{rules}\n\n"
            + (f"## Examples\n\n{examples}\n\n" if examples else "")
            + "## Answer format\n\n<answer>\n"
            + _block("python", "def f(...):\n    ...")
            + "\n"
            + _block("input", "...")
            + "\n</answer>"
        )

    def _induction_proposal(self, program: str) -> str:
        return (
            f"## Task: write {self.n_inputs} inputs and a message for a program\n\n"
            "A solver will be shown your message and some of the program's input/output pairs, but not "
            "the program, and must write a program that reproduces all the pairs, including the ones it "
            f"was not shown. Write {self.n_inputs} different inputs that together reveal what the program "
            "does, and a short message that hints at it without giving away the code.\n\n"
            f"Rules:\n{_INPUT_RULE}\n- The inputs must all differ.\n\n"
            f"## Program\n\n{_block('python', program)}\n\n## Answer format\n\n<answer>\n"
            + "\n".join(_block("input", "...") for _ in range(min(self.n_inputs, 2)))
            + ("\n... (one input block each)\n" if self.n_inputs > 2 else "\n")
            + _block("message", "...")
            + "\n</answer>"
        )

    def solve_prompt(self, task: Task) -> str:
        if isinstance(task, InductionTask):
            pairs = "\n\n".join(_block("input", i) + "\n" + _block("output", o) for i, o in task.given_pairs)
            return (
                "## Task: write the program\n\n"
                "Write a Python function `f` that, on each input below, returns the output shown, "
                "and that does what the message describes: it will also be checked on inputs you "
                f"are not shown.\n\n## Message\n\n{_block('message', task.message)}\n\n"
                f"## Examples\n\n{pairs}\n\n## Answer format\n\n<answer>\n"
                + _block("python", "def f(...):\n    ...")
                + "\n</answer>"
            )
        assert isinstance(task, TripletTask)
        if task.task_type is TaskType.DEDUCTION:
            return (
                "## Task: work out the output\n\nWork out what `f` returns on this input, by "
                f"reasoning, without running the code.\n\n{_block('python', task.program)}\n"
                f"{_block('input', task.input)}\n\nGive the returned value as a Python literal.\n\n"
                "## Answer format\n\n<answer>\n" + _block("output", "...") + "\n</answer>"
            )
        return (
            "## Task: find an input\n\nFind an input on which `f` returns the output below. Any "
            f"such input is correct.\n\n{_block('python', task.program)}\n"
            f"{_block('output', task.output)}\n\nGive the input as the argument list of one call to "
            "`f`, in Python literals, e.g. `'abc', [1, 2]`.\n\n"
            "## Answer format\n\n<answer>\n" + _block("input", "...") + "\n</answer>"
        )

    def render(self, prompt: str, chat_template: Any = None) -> str:
        if chat_template is None:
            return f"{SYSTEM}\nUser: {prompt}\nAssistant: <think>"
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        return chat_template.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    code_stop = stop
    math_stop = stop

    def code_prompt(self, prompt: str) -> str:
        return (
            "## Task: write the program\n\nComplete the Python code below: write the whole program, "
            "with its imports and the function or class it starts, so that it does what the "
            f"docstring or statement says.\n\n{_block('python', prompt.rstrip())}\n\n"
            "## Answer format\n\n<answer>\n" + _block("python", "...") + "\n</answer>"
        )

    def parse_code(self, prompt: str, completion: str, stdin: bool = False) -> str | FormatError:
        answer = _answer(completion)
        if isinstance(answer, FormatError):
            return answer
        programs = _blocks(answer).get("python", [])
        if len(programs) != 1:
            return FormatError(f"expected one ```python block in the answer, found {len(programs)}")
        return programs[0]

    def math_prompt(self, problem: str) -> str:
        return (
            f"## Task: solve the problem\n\n{problem}\n\n## Answer format\n\n"
            "<answer>\nthe final answer, in \\boxed{}\n</answer>"
        )

    def parse_math(self, completion: str) -> str | FormatError:
        return _answer(completion)

    def parse_proposal(
        self, task_type: TaskType, completion: str, program: str | None = None
    ) -> TripletProposal | InductionProposal | FormatError:
        answer = _answer(completion)
        if isinstance(answer, FormatError):
            return answer
        blocks = _blocks(answer)
        if task_type is TaskType.INDUCTION:
            if program is None:
                raise ValueError("parsing an induction proposal needs the program that was shown")
            inputs = blocks.get("input", [])
            messages = blocks.get("message", [])
            if not inputs:
                return FormatError("no ```input block in the answer")
            if len(messages) != 1:
                return FormatError(f"expected one ```message block, found {len(messages)}")
            return InductionProposal(program, tuple(inputs), messages[0])
        programs, inputs = blocks.get("python", []), blocks.get("input", [])
        if len(programs) != 1 or len(inputs) != 1:
            return FormatError(
                f"expected one ```python and one ```input block, found {len(programs)} and {len(inputs)}"
            )
        return TripletProposal(task_type, programs[0], inputs[0])

    def parse_answer(self, task_type: TaskType, completion: str) -> Answer | FormatError:
        answer = _answer(completion)
        if isinstance(answer, FormatError):
            return answer
        label = {TaskType.DEDUCTION: "output", TaskType.ABDUCTION: "input", TaskType.INDUCTION: "python"}[task_type]
        found = _blocks(answer).get(label, [])
        if len(found) != 1:
            return FormatError(f"expected one ```{label} block in the answer, found {len(found)}")
        return Answer(task_type, found[0])


_LABELS = ("python", "input", "output", "message")
_FENCE = "```"
_BLANKS = re.compile(r"[ \t]*")


def _answer(completion: str) -> str | FormatError:
    """The text of the last <answer> block after the reasoning (found from the end, in linear time)."""
    if not isinstance(completion, str):
        return FormatError("the completion is not text")
    think_end = completion.rfind("</think>")
    start = think_end + len("</think>") if think_end >= 0 else 0
    close = completion.rfind("</answer>", start)
    open_ = completion.rfind("<answer>", start, close) if close >= 0 else -1
    if open_ < 0:
        return FormatError("no <answer>...</answer> block" + ("" if think_end >= 0 else " (and no </think>)"))
    return completion[open_ + len("<answer>") : close]


def _blocks(answer: str) -> dict[str, list[str]]:
    """The fenced blocks of an answer by label: what findall of
    ```[ \\t]*(python|input|output|message)[ \\t]*\\n(.*?)\\n?[ \\t]*``` (DOTALL) finds, in linear
    time (that regex backtracks over each run of blanks once per position in it)."""
    found: dict[str, list[str]] = {}
    start = answer.find(_FENCE)
    while start >= 0:
        opened = _opening(answer, start + len(_FENCE))
        if opened is None:  # not a block's opening fence: the next one may start a character later
            start = answer.find(_FENCE, start + 1)
            continue
        label, body_start = opened
        close = answer.find(_FENCE, body_start)
        if close < 0:  # no closing fence, nor any later opening one
            break
        found.setdefault(label, []).append(answer[body_start : _body_end(answer, body_start, close)].strip("\n"))
        start = answer.find(_FENCE, close + len(_FENCE))
    return found


def _opening(text: str, at: int) -> tuple[str, int] | None:
    """(label, where the body starts) when `[ \\t]*label[ \\t]*\\n` starts at `at`, else None."""
    at = _BLANKS.match(text, at).end()  # type: ignore[union-attr]
    label = next((name for name in _LABELS if text.startswith(name, at)), None)
    if label is None:
        return None
    at = _BLANKS.match(text, at + len(label)).end()  # type: ignore[union-attr]
    return (label, at + 1) if text.startswith("\n", at) else None


def _body_end(text: str, start: int, close: int) -> int:
    """Where a body running from `start` to the fence at `close` ends: before the blanks that the
    fence's line begins with, and the newline before them (which the regex's lazy body leaves)."""
    end = start + len(text[start:close].rstrip(" \t"))
    return end - 1 if end > start and text[end - 1] == "\n" else end
