"""The `azr` template: the paper's format for real models (AZR paper, appendix prompts).

Base models get the DeepSeek-R1-Zero framing (a system line, `User:`, `Assistant: <think>`); instruct
models get the same system line and prompt through their tokenizer's chat template. A prompt is
`## Task: <title>`, the family's prose with its fields as fenced blocks labelled by field (`python`,
`input`, `output`, `message`...), the examples, and the answer format. The answer goes in
`<answer>...</answer>`, holding the expected fenced blocks (or, for an unfenced field such as a
final answer in `\\boxed{}`, being it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from azr.prompts import Template
from azr.tasks import FormatError
from azr.tasks.family import Ask, Expect, Field, Fields

SYSTEM = (
    "A conversation between User and Assistant. The User gives a task and the Assistant solves it. "
    "The Assistant first reasons step by step inside <think> </think>, then gives its final answer "
    "inside <answer> </answer>, i.e. <think> reasoning </think> <answer> answer </answer>."
)


def _block(label: str, text: str) -> str:
    return f"```{label}\n{text}\n```"


class PaperTemplate(Template):
    name = "azr"
    stop = ("</answer>",)

    def frame(self, ask: Ask) -> str:
        """`## Task: <title>`, the prose and the fields (consecutive fields one block after another),
        the examples, then the answer format with the expected blocks' placeholders."""
        text = f"## Task: {ask.title}\n\n{_join(ask.parts)}"
        if ask.examples:
            examples = (
                f"Example {i}:\n" + "\n".join(_block(f.label, f.text) for f in fields)
                for i, fields in enumerate(ask.examples, 1)
            )
            text += "\n\n## Examples\n\n" + "\n\n".join(examples)
        return text + "\n\n## Answer format\n\n<answer>\n" + "\n".join(map(_shown, ask.answer)) + "\n</answer>"

    def read(self, expected: Sequence[Expect], completion: str) -> Fields | FormatError:
        answer = _answer(completion)
        if isinstance(answer, FormatError):
            return answer
        fenced = [e for e in expected if e.fenced]
        blocks = _blocks(answer, tuple(dict.fromkeys((*_LABELS, *(e.label for e in fenced)))))
        found = {e.label: blocks.get(e.label, []) for e in fenced}
        singles = [e.label for e in fenced if e.count == 1]
        if len(singles) > 1 and any(len(found[label]) != 1 for label in singles):
            wanted = " and ".join(f"one ```{label}" for label in singles)
            counts = " and ".join(str(len(found[label])) for label in singles)
            return FormatError(f"expected {wanted} block, found {counts}")
        for e in fenced:
            n = len(found[e.label])
            if e.count == 0 and n == 0:
                return FormatError(f"no ```{e.label} block in the answer")
            if e.count and n != e.count:
                wanted = "one" if e.count == 1 else str(e.count)
                return FormatError(f"expected {wanted} ```{e.label} block in the answer, found {n}")
        return {**found, **{e.label: [answer] for e in expected if not e.fenced}}

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


def _join(parts: Sequence[str | Field]) -> str:
    """Prose and fields: a field right after a field on the next line, anything else after a blank line."""
    text = ""
    for i, part in enumerate(parts):
        if i:
            text += "\n" if isinstance(part, Field) and isinstance(parts[i - 1], Field) else "\n\n"
        text += _block(part.label, part.text) if isinstance(part, Field) else part
    return text


def _shown(expect: Expect) -> str:
    """An expected field in the answer format: its block (two, then a note, for one or more)."""
    if not expect.fenced:
        return expect.placeholder
    if expect.count == 0:
        return "\n".join([_block(expect.label, expect.placeholder)] * 2) + f"\n... (one ```{expect.label} block each)"
    return "\n".join([_block(expect.label, expect.placeholder)] * expect.count)


def _blocks(answer: str, labels: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """The fenced blocks of an answer by label: what findall of
    ```[ \\t]*(python|input|output|message|<labels>)[ \\t]*\\n(.*?)\\n?[ \\t]*``` (DOTALL) finds, in linear
    time (that regex backtracks over each run of blanks once per position in it)."""
    found: dict[str, list[str]] = {}
    start = answer.find(_FENCE)
    while start >= 0:
        opened = _opening(answer, start + len(_FENCE), labels or _LABELS)
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


def _opening(text: str, at: int, labels: tuple[str, ...]) -> tuple[str, int] | None:
    """(label, where the body starts) when `[ \\t]*label[ \\t]*\\n` starts at `at`, else None."""
    at = _BLANKS.match(text, at).end()  # type: ignore[union-attr]
    label = next((name for name in labels if text.startswith(name, at)), None)
    if label is None:
        return None
    at = _BLANKS.match(text, at + len(label)).end()  # type: ignore[union-attr]
    return (label, at + 1) if text.startswith("\n", at) else None


def _body_end(text: str, start: int, close: int) -> int:
    """Where a body running from `start` to the fence at `close` ends: before the blanks that the
    fence's line begins with, and the newline before them (which the regex's lazy body leaves)."""
    end = start + len(text[start:close].rstrip(" \t"))
    return end - 1 if end > start and text[end - 1] == "\n" else end
