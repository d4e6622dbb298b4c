"""Prompt templates: what each (role, task type) sees, and reading completions, fuzzed."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azr.prompts import get_template
from azr.prompts.compact import MARKERS
from azr.tasks import (
    Answer,
    FormatError,
    InductionProposal,
    InductionTask,
    TaskType,
    TripletProposal,
    TripletTask,
)
from azr.tasks.programs import BANNED_MODULES

D, A, N = TaskType.DEDUCTION, TaskType.ABDUCTION, TaskType.INDUCTION
PROGRAM = "def f(xs, k):\n    return sorted(xs)[:k]"
REFERENCES = [
    TripletTask(D, PROGRAM, "[3, 1, 2], 2", "[1, 2]"),
    TripletTask(D, "def f(s):\n    return s[::-1]", "'abc'", "'cba'"),
]
INDUCTION = InductionTask(
    PROGRAM,
    inputs=("[3, 1], 1", "[5, 4, 6], 2", "[], 0", "[9, 8], 2"),
    outputs=("[1]", "[4, 5]", "[]", "[8, 9]"),
    message="the k smallest",
    given=(0, 2),
)


def paper():
    return get_template("azr", n_inputs=4, banned=BANNED_MODULES[:5])


def compact():
    return get_template("compact", n_inputs=4)


# -- the paper's template --------------------------------------------------------------------------


def test_proposer_prompts_show_references_rules_and_the_right_difficulty():
    template = paper()
    deduction = template.propose_prompt(D, REFERENCES)
    abduction = template.propose_prompt(A, REFERENCES)
    for prompt in (deduction, abduction):
        assert "```python\ndef f(s):\n    return s[::-1]\n```" in prompt
        assert "```output\n'cba'\n```" in prompt
        assert "random, secrets, uuid, time, datetime" in prompt  # the banned list, interpolated
    # each proposer is told what makes *its* task hard (the reference had these swapped)
    assert "work out the output" in deduction and "deduce from the input" in deduction
    assert "find an input" in abduction and "infer from the output" in abduction
    assert "deduce from the input" not in abduction


def test_induction_prompts():
    template = paper()
    propose = template.propose_prompt(N, [REFERENCES[0]])
    assert PROGRAM in propose and "4 inputs" in propose and "```message" in propose
    solve = template.solve_prompt(INDUCTION)
    assert "the k smallest" in solve
    for i in INDUCTION.given:
        assert INDUCTION.inputs[i] in solve
    for hidden_input, _ in INDUCTION.hidden_pairs:  # the checked pairs are not shown
        assert hidden_input not in solve
    assert PROGRAM not in solve
    with pytest.raises(ValueError, match="exactly one reference"):
        template.propose_prompt(N, REFERENCES)


def test_solver_prompts():
    template = paper()
    deduction = template.solve_prompt(REFERENCES[0])
    assert "[3, 1, 2], 2" in deduction and "[1, 2]" not in deduction.split("## Answer format")[0].split("```input")[1]
    abduction = template.solve_prompt(TripletTask(A, PROGRAM, "[3, 1, 2], 2", "[1, 2]"))
    assert "```output\n[1, 2]\n```" in abduction and "[3, 1, 2], 2" not in abduction


def test_render_for_base_and_chat_models():
    template = paper()
    text = template.render("PROMPT")
    assert text.endswith("User: PROMPT\nAssistant: <think>")

    class ChatTokenizer:  # the one method of a Hugging Face tokenizer that render uses
        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            assert tokenize is False and add_generation_prompt is True
            return "".join(f"<|{m['role']}|>{m['content']}" for m in messages) + "<|assistant|>"

    chat = template.render("PROMPT", ChatTokenizer())
    assert chat.startswith("<|system|>") and "<|user|>PROMPT<|assistant|>" in chat


def answer(*blocks: tuple[str, str], think: str = "let me think") -> str:
    body = "\n".join(f"```{label}\n{text}\n```" for label, text in blocks)
    return f"{think}</think>\n<answer>\n{body}\n</answer>"


def test_paper_parsing_round_trip():
    template = paper()
    proposal = template.parse_proposal(D, answer(("python", PROGRAM), ("input", "[1], 1")))
    assert proposal == TripletProposal(D, PROGRAM, "[1], 1")
    induction = template.parse_proposal(
        N, answer(("input", "[1], 1"), ("input", "[2, 1], 1"), ("message", "smallest")), program=PROGRAM
    )
    assert induction == InductionProposal(PROGRAM, ("[1], 1", "[2, 1], 1"), "smallest")
    assert template.parse_answer(D, answer(("output", "[1, 2]"))) == Answer(D, "[1, 2]")
    assert template.parse_answer(A, answer(("input", "[2, 1], 2"))) == Answer(A, "[2, 1], 2")
    assert template.parse_answer(N, answer(("python", PROGRAM))) == Answer(N, PROGRAM)


def test_paper_parsing_uses_the_answer_after_the_reasoning():
    template = paper()
    drafts = "maybe <answer>```output\n1\n```</answer> no wait"
    completion = f"{drafts}</think><answer>```output\n2\n```</answer>"
    assert template.parse_answer(D, completion) == Answer(D, "2")
    # a completion for a chat model, where "Assistant:" never appears, parses the same way
    assert template.parse_answer(D, "<think>x</think><answer>\n```output\n3\n```\n</answer>") == Answer(D, "3")


@pytest.mark.parametrize(
    ("completion", "reason"),
    [
        ("no tags at all", "no <answer>"),
        ("thinking...</think> <answer>```output\n1\n```", "no <answer>"),  # cut off before </answer>
        ("</think><answer>1</answer>", "expected one ```output block"),  # no fenced block
        ("</think><answer>```output\n1\n``` ```output\n2\n```</answer>", "found 2"),  # ambiguous
        ("</think><answer>```input\n1\n```</answer>", "expected one ```output"),  # wrong label
    ],
)
def test_paper_format_errors(completion, reason):
    result = paper().parse_answer(D, completion)
    assert isinstance(result, FormatError)
    assert reason in result.reason


def test_paper_proposal_format_errors():
    template = paper()
    assert "one ```python and one ```input" in template.parse_proposal(D, answer(("python", PROGRAM))).reason
    missing_message = template.parse_proposal(N, answer(("input", "1")), program=PROGRAM)
    assert "```message" in missing_message.reason
    no_inputs = template.parse_proposal(N, answer(("message", "m")), program=PROGRAM)
    assert "```input" in no_inputs.reason


# -- the compact template --------------------------------------------------------------------------


def test_compact_prompts():
    template = compact()
    assert template.solve_prompt(REFERENCES[0]) == f"<D>{PROGRAM}<I>[3, 1, 2], 2<O>"
    assert template.solve_prompt(TripletTask(A, PROGRAM, "[3, 1, 2], 2", "[1, 2]")) == f"<A>{PROGRAM}<O>[1, 2]<I>"
    assert template.solve_prompt(INDUCTION) == "<N>the k smallest<I>[3, 1], 1<O>[1]<I>[], 0<O>[]<P>"
    assert template.propose_prompt(D, REFERENCES[:1]) == f"<R>{PROGRAM}<I>[3, 1, 2], 2<O>[1, 2]<PD>"
    assert template.propose_prompt(A, REFERENCES[:1]).endswith("<PA>")
    assert template.propose_prompt(N, REFERENCES[:1]) == f"<PN>{PROGRAM}<M>"
    assert template.stop == ("<E>",)


def test_compact_parsing():
    template = compact()
    assert template.parse_answer(D, "[1, 2]<E>trailing") == Answer(D, "[1, 2]")
    assert template.parse_answer(N, f"{PROGRAM}\n<E>") == Answer(N, PROGRAM)
    assert template.parse_proposal(D, f"{PROGRAM}<I>[1], 1<E>") == TripletProposal(D, PROGRAM, "[1], 1")
    assert template.parse_proposal(N, "small ones<I>[1], 1<I>[2], 1<E>", program=PROGRAM) == InductionProposal(
        PROGRAM, ("[1], 1", "[2], 1"), "small ones"
    )
    assert "cut off" in template.parse_answer(D, "[1, 2]").reason
    assert "<I>" in template.parse_answer(D, "1<I>2<E>").reason
    assert "unexpected marker <O>" in template.parse_answer(D, "1<O>2<E>").reason
    assert "found 2 <I>" in template.parse_proposal(D, "p<I>1<I>2<E>").reason


def test_compact_with_a_scratchpad():
    template = get_template("compact", n_inputs=4, think=True)
    assert template.solve_prompt(REFERENCES[0]) == f"<D>{PROGRAM}<I>[3, 1, 2], 2<T>"
    assert template.solve_prompt(INDUCTION) == "<N>the k smallest<I>[3, 1], 1<O>[1]<I>[], 0<O>[]<T>"
    assert template.propose_prompt(D, REFERENCES[:1]) == f"<R>{PROGRAM}<I>[3, 1, 2], 2<O>[1, 2]<PD>"  # proposers do not
    # only the answer after its marker is read; the scratchpad may hold anything but <E>
    assert template.parse_answer(D, "nums=[3, 1, 2]\nreturn [1, 2]<O>[1, 2]<E>") == Answer(D, "[1, 2]")
    assert template.parse_answer(D, "<O>7<E>") == Answer(D, "7")
    assert template.parse_answer(A, "x=1\nreturn 5<I>1<E>x") == Answer(A, "1")
    assert "unexpected marker <I>" in template.parse_answer(A, "x=1<I>1<I>2<E>").reason  # the first <I> opens it
    assert template.parse_answer(N, f"<P>{PROGRAM}<E>") == Answer(N, PROGRAM)
    assert "no <O> after the scratchpad" in template.parse_answer(D, "7<E><O>7").reason
    assert "cut off" in template.parse_answer(D, "x=1<O>7").reason
    assert "unexpected marker <I>" in template.parse_answer(D, "x<O>1<I>2<E>").reason
    # the marker that ends the scratchpad (what optim.scratchpad_weight weighs is before it)
    assert [template.answer_marker(t) for t in (D, A, N)] == ["<O>", "<I>", "<P>"]
    assert compact().answer_marker(D) is None and paper().answer_marker(D) is None


# -- fuzzing: parsing never raises -----------------------------------------------------------------

PIECES = st.sampled_from(
    [*MARKERS, "<think>", "</think>", "<answer>", "</answer>", "```", "```python\n", "```input\n",
     "```output\n", "```message\n", "\n", "def f(x):", "    return x", "'", '"', "\\", "\x00", "\ud800", "é"]
)  # fmt: skip
ADVERSARIAL = st.lists(st.one_of(PIECES, st.text(max_size=20)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), ADVERSARIAL))
def test_parsing_never_raises(text):
    for template in (paper(), compact(), get_template("compact", think=True)):
        for task_type in TaskType:
            answer = template.parse_answer(task_type, text)
            assert isinstance(answer, (Answer, FormatError))
            proposal = template.parse_proposal(task_type, text, program=PROGRAM)
            assert isinstance(proposal, (TripletProposal, InductionProposal, FormatError))


def test_parsing_is_linear_in_the_completion():
    import time

    hostile = "<answer>" * 50_000 + "</think>" + "<answer>x" * 20_000
    started = time.perf_counter()
    assert isinstance(paper().parse_answer(D, hostile), FormatError)
    assert time.perf_counter() - started < 0.2


def test_non_text_is_a_format_error():
    for template in (paper(), compact()):
        assert isinstance(template.parse_answer(D, None), FormatError)  # type: ignore[arg-type]


def test_unknown_template():
    with pytest.raises(ValueError, match="choose one of azr, compact"):
        get_template("chatml")


def test_compact_thinks_when_the_model_was_trained_to():
    from azr.prompts import template_for

    class Tokenizer:
        def __init__(self, markers):
            self.markers = markers

        def get_added_vocab(self):
            return {m: i for i, m in enumerate(self.markers)}

    assert template_for("compact", Tokenizer([*MARKERS])).think
    assert not template_for("compact", Tokenizer([m for m in MARKERS if m != "<T>"])).think
    assert template_for("azr", Tokenizer([*MARKERS])).name == "azr"
