"""The embedded model's pipeline: the program generator, the split, the transcripts, the build, and
loading the result through the same path as any Hugging Face model."""

import json
import random
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from azr.base.corpus import make_tasks, transcripts
from azr.base.programs import draw_input, generate
from azr.base.scratchpad import SCRATCHPAD_CHARS, scratchpads
from azr.prompts import get_template
from azr.prompts.compact import CompactTemplate
from azr.tasks import TaskType, TripletProposal, TripletTask
from azr.tasks.programs import check_program, normalized
from azr.tasks.validate import Validator


def test_programs_are_reproducible_from_the_seed():
    a = [generate(random.Random(7)).source for _ in range(1)] + [p.source for p in _programs(7, 50)]
    b = [generate(random.Random(7)).source for _ in range(1)] + [p.source for p in _programs(7, 50)]
    assert a == b
    assert [p.source for p in _programs(8, 50)] != [p.source for p in _programs(7, 50)]


def _programs(seed, count):
    rng = random.Random(seed)
    return [generate(rng) for _ in range(count)]


def test_programs_pass_the_filter_and_run_deterministically(sandbox):
    programs = _programs(3, 150)
    assert all(check_program(p.source).ok for p in programs)
    rng = random.Random(0)
    proposals = [
        TripletProposal(TaskType.DEDUCTION, p.source, ", ".join(draw_input(k, rng) for k in p.params)) for p in programs
    ]
    validations = Validator(sandbox).validate(proposals)  # two runs, two hash seeds, in the sandbox
    assert sum(v.valid for v in validations) >= 0.95 * len(programs)
    # what they cover: loops, conditionals, comprehensions, helpers, two parameters
    sources = "\n".join(p.source for p in programs)
    for construct in ("for ", "if ", " for e in ", "def helper", "def f(x, ", "sorted("):
        assert construct in sources, construct


def test_the_held_out_split_shares_no_program(sandbox):
    train = make_tasks(sandbox, seed=1, programs=120)
    seen = {normalized(t.program) for t in (*train.triplets, *train.inductions)}
    heldout = make_tasks(sandbox, seed=2, programs=60, exclude=seen)
    held = {normalized(t.program) for t in (*heldout.triplets, *heldout.inductions)}
    assert train.triplets and train.inductions and heldout.triplets
    assert not held & seen
    # the same seed makes the same tasks
    again = make_tasks(sandbox, seed=1, programs=120)
    assert again.triplets == train.triplets and again.inductions == train.inductions


def test_transcripts_cover_the_six_pairs_and_parse_back(sandbox):
    tasks = make_tasks(sandbox, seed=4, programs=80)
    pads = scratchpads(sandbox, tasks.triplets, random.Random(1))
    texts = transcripts(tasks, random.Random(0), pads=pads)
    starts = {text[: text.index(">") + 1] for text in texts}
    assert {"<D>", "<A>", "<N>", "<R>", "<PN>"} <= starts
    assert any(text.endswith("<E>") and "<PD>" in text for text in texts)
    assert any("<PA>" in text for text in texts)
    template = CompactTemplate(n_inputs=4, think=True)
    answers: dict[str, set[str]] = {}  # an abduction prompt may have several right inputs
    for t in tasks.triplets:
        answers.setdefault(template.solve_prompt(t), set()).add(
            t.output if t.task_type == TaskType.DEDUCTION else t.input
        )
    for text in texts:
        assert text.endswith("<E>")
        if text[:3] in ("<D>", "<A>"):  # the completion after the prompt parses to the task's answer
            task_type = TaskType.DEDUCTION if text.startswith("<D>") else TaskType.ABDUCTION
            prompt, completion = text.split("<T>", 1)
            assert template.parse_answer(task_type, completion).text in answers[prompt + "<T>"]


def test_scratchpads_write_the_run_down(sandbox):
    program = "def f(x):\n    y = x + 3\n    return y * 2"
    deduction = TripletTask(TaskType.DEDUCTION, program, "4", "14")
    abduction = TripletTask(TaskType.ABDUCTION, program, "4", "14")
    pads = scratchpads(sandbox, [deduction, *[abduction] * 20], random.Random(0))
    assert pads[0] == "x=4\ny=7\nreturn 14"
    assert pads[1].endswith("x=4\ny=7\nreturn 14")
    wrong_first = [pad for pad in pads[1:] if pad.count("return") == 2]
    assert 3 <= len(wrong_first) <= 17  # about half start with a wrong candidate, whose run ends elsewhere
    assert all(not pad.startswith("x=4\n") for pad in wrong_first)
    long = TripletTask(
        TaskType.DEDUCTION, "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t", "50", "1225"
    )
    (pad,) = scratchpads(sandbox, [long], random.Random(0))
    assert pad.endswith("\n...") and len(pad) <= SCRATCHPAD_CHARS + 4


def test_worked_steps_put_the_values_in_each_expression(sandbox):
    program = (
        "def helper(v):\n    return v - 1\n\n"
        "def f(x, s):\n    y = x * 2 + 1\n    t = 0\n    for c in s:\n        t += y\n"
        "    z = t\n    return len(s.upper()) + helper(z)"
    )
    task = TripletTask(TaskType.DEDUCTION, program, "-3, 'a'", "-5")
    (pad,) = scratchpads(sandbox, [task], random.Random(0), style="steps")
    assert pad.split("\n") == [
        "x=-3", "s='a'",
        "y = -3 * 2 + 1 = -5",
        "t=0",  # a constant: nothing to work
        "c='a'", "t = 0 + (-5) = -5",
        "z=-5",  # a bare name: nothing to work
        "v=-5", "return -6",  # the helper's run: values only
        "return len('a'.upper()) + helper(-5) = -5",
    ]  # fmt: skip
    (values,) = scratchpads(sandbox, [task], random.Random(0))
    assert values.split("\n")[2:4] == ["y=-5", "t=0"]
    # the program's own spelling (no extra parentheses around a generator), parentheses only where a
    # value would read otherwise, a name a comprehension binds left as written
    program = (
        "def f(x):\n    n = sum(1 for c in str(x) if c != '1')\n    c = n - 3\n"
        "    p = c ** 2 + c.bit_length()\n    return [c for c in range(p)][-1] - c"
    )
    (pad,) = scratchpads(sandbox, [TripletTask(TaskType.DEDUCTION, program, "12", "-1")], random.Random(0), "steps")
    assert pad.split("\n") == [
        "x=12",
        "n = sum(1 for c in str(12) if c != '1') = 1",
        "c = 1 - 3 = -2",
        "p = (-2) ** 2 + (-2).bit_length() = 6",
        "return [c for c in range(6)][-1] - c = 7",
    ]
    with pytest.raises(ValueError, match="values, steps"):
        scratchpads(sandbox, [task], random.Random(0), style="prose")


def test_a_quick_build_loads_like_any_model_and_evaluates(quick_model, tmp_path):
    out = quick_model
    for name in ("config.json", "model.safetensors", "tokenizer.json", "MODEL_CARD.md", "heldout.jsonl", "build.json"):
        assert (out / name).exists(), name
    keys = (out / "programs.sha256").read_text().split()
    assert keys == sorted(set(keys)) and all(len(key) == 16 for key in keys)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.convert_tokens_to_ids("<E>") != tokenizer.unk_token_id
    assert len(tokenizer("<D>123")["input_ids"]) == 4  # markers are one token, digits one each
    AutoModelForCausalLM.from_pretrained(out)
    result_path = tmp_path / "result.json"
    evaluated = subprocess.run(
        [sys.executable, "-m", "azr.cli", "eval", "--model", str(out), "--bench", str(out / "heldout.jsonl"),
         "--out", str(result_path), "--limit", "3", "--max-new-tokens", "8",
         "--samples", "2", "--temperature", "1.0", "--k", "1,2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = json.loads(result_path.read_text())
    assert result["template"] == "compact"  # found from the tokenizer's markers
    (bench,) = result["benchmarks"].values()
    assert set(bench["results"]) == {"deduction", "abduction", "induction"}
    assert all(0 <= r["pass@1"] <= r["pass@2"] <= 1 and r["n"] > 0 for r in bench["results"].values())
    assert all(len(task["correct"]) == 2 for task in bench["tasks"])
    assert len(bench["tasks"]) == sum(r["n"] for r in bench["results"].values())


def test_the_build_reproduces_its_model_from_the_seed(quick_model, tmp_path):
    """The same seed gives the same tasks, tokenizer and weights (on the same machine: float sums
    may differ between CPU instruction sets)."""
    again = tmp_path / "again"
    done = subprocess.run([sys.executable, "-m", "azr.cli", "build-base-model", "--out", str(again), "--quick"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("heldout.jsonl", "tokenizer.json", "config.json", "programs.sha256"):
        assert (again / name).read_bytes() == (quick_model / name).read_bytes(), name
    first, second = load_file(str(quick_model / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_the_embedded_model_loads_through_from_pretrained():
    from azr.base import heldout_path, model_path

    assert model_path() is not None, "azr/base/model is missing: the package must ship the embedded model"
    from azr.config import Config
    from azr.engine.generation import Sampling, TransformersGenerator
    from azr.engine.policy import Policy

    config = Config()
    config.model.path, config.model.device = "embedded", "cpu"
    policy = Policy(config.model)
    assert str(policy.path) == str(model_path())
    greedy = Sampling(temperature=0.0, max_new_tokens=48, stop=("<E>",))
    prompt = "<D>def f(s):\n    return s.upper()<I>'hello'<T>"
    [[completion]] = TransformersGenerator(policy, config.generation).generate([prompt], 1, greedy, 0)
    # it thinks (the run written down, from the argument's binding), then answers after <O>
    assert completion.finished and completion.text.startswith("s='hello'\n"), completion.text
    assert get_template("compact", think=True).parse_answer(TaskType.DEDUCTION, completion.text).text
    assert heldout_path() is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--out", "/tmp/x.json", "--task-types", "trivia"], "--task-types"),
        (
            ["eval", "--out", "/tmp/x.json", "--bench", "/nonexistent.jsonl", "--model", "tiny-random"],
            "no file /nonexistent.jsonl",
        ),
        (["eval", "--out", "/tmp/x.json", "--samples", "4"], "several --samples need a --temperature"),
        (["eval", "--out", "/tmp/x.json", "--k", "1,5"], "each k must be between 1 and --samples (1)"),
        (["eval", "--out", "/tmp/x.json", "--k", "five"], "give comma-separated integers"),
        (["build-base-model", "--out", "/tmp/x", "--steps", "0"], "--steps >= 1"),
        (["build-base-model", "--out", "/proc/version/model"], "cannot make the directory"),
        (["build-base-model", "--out", "/tmp/x", "--device", "gpu"], "expected cpu, cuda or cuda:N"),
        (["build-base-model", "--out", "/tmp/x", "--epochs", "0"], "--epochs > 0"),
        (["build-base-model", "--out", "/tmp/x", "--epochs", "nan"], "--epochs > 0"),
        (["build-base-model", "--out", "/tmp/x", "--device", "cuda:99"], "no such CUDA device here"),
        (["eval", "--out", "/tmp"], "give a file path in a writable directory"),
        (["eval", "--out", "/tmp/x.json", "--limit", "0"], "--limit must be >= 1"),
    ],
)
def test_bad_arguments(args, message):
    done = subprocess.run([sys.executable, "-m", "azr.cli", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
