"""`azr build-base-model`: the embedded model, rebuilt from a seed.

    1. tasks: random programs (programs.py) made into tasks through the sandbox (corpus.py); a
       held-out set from another seed, sharing no normalised program with them;
    2. a byte-level BPE tokenizer trained on the transcripts, the compact markers as special
       tokens, digits split one by one;
    3. pretraining of a small Qwen2 model on the transcripts of all six (role, task type) pairs,
       for a fixed number of steps (not minutes, so that a seed reproduces the weights);
    4. held-out scores (greedy pass@1 per task type, the valid-proposal rate) and a model card.

Everything is written to one directory that `from_pretrained` loads as is; the shipped model is
`azr/base/model/`. Same seed, same torch build and thread count: the same weights.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from azr.base import PROGRAM_KEYS
from azr.base.corpus import MAX_OUTPUT_CHARS, TaskSet, make_tasks, transcripts
from azr.base.scratchpad import SCRATCHPAD_CHARS, STYLES, scratchpads
from azr.executor import Executor, ExecutorConfig
from azr.prompts.compact import MARKERS
from azr.tasks import TaskType, TripletTask
from azr.tasks.programs import entry_function, normalized, program_key
from azr.tasks.registry import PAPER
from azr.tasks.seeds import export_row

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", *MARKERS]


@dataclass
class BuildConfig:
    """How the embedded model is built. The defaults are the shipped model's recipe: about 2.5 hours on
    2 CPU cores, of which 20 minutes of corpus; `device="cuda"` pretrains in minutes (the shipped
    weights were pretrained so)."""

    seed: int = 0
    programs: int = 50_000
    """Training programs (each gives 1-3 triplets, or one induction task)."""
    heldout_programs: int = 300
    induction_inputs: int = 4
    """Inputs per induction task (the tiny-cpu preset's selfplay.induction_inputs)."""
    scratchpad: str = "steps"
    """What solvers' scratchpads show of a run (azr.base.scratchpad): `steps` (each computing line of
    `f` also with its values put in its expression: the shipped model) or `values` (the variables'
    values, line by line)."""
    scratchpad_chars: int = SCRATCHPAD_CHARS
    """Longest scratchpad (an abduction attempt: half); a longer one is cut with `...`."""
    vocab_size: int = 4096
    hidden_size: int = 256
    layers: int = 6
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 768
    context: int = 256
    """Tokens per training sequence; transcripts are packed (a few proposals run longer and wrap)."""
    steps: int = 0
    """Optimizer steps; 0: as many as `epochs` passes over the corpus take."""
    epochs: float = 4.0
    """Passes over the corpus. 4 against azr 0.6's 1.2: held-out deduction +13.8 points, induction
    +46 (experiments/base-scale); the corpus stays the same, so more passes cost no sandbox time."""
    batch_size: int = 32
    """Sequences of `context` tokens per optimizer step."""
    lr: float = 1.5e-3
    warmup_steps: int = 100
    weight_decay: float = 0.1
    bf16: bool = True
    """bfloat16 autocast (about 1.6x faster on CPU; the weights stay float32)."""
    eval_proposals: int = 64
    """Proposals per type sampled to measure the valid-proposal rate."""
    eval_max_new_tokens: int = 192
    """Longest answer or proposal when scoring (azr eval's default for reasoning benchmarks)."""
    device: str = "cpu"
    """Where pretraining and scoring run: `cpu` (a seed gives the same weights on the same torch build
    and thread count) or `cuda`/`cuda:N` (minutes instead of hours; the weights differ from a CPU
    build's in the last bits, and greedy scores by a few tasks: experiments/base-scale)."""


@dataclass(frozen=True)
class Corpus:
    """Stage 1's output: what every model built from one seed is trained and scored on."""

    train: TaskSet
    heldout: TaskSet
    texts: list[str]
    """The training transcripts, in the order the tokenizer and pretraining read them."""
    data: dict[str, Any]
    """Counts for the model card."""


def build(out: Path, config: BuildConfig, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the model into `out`; returns the numbers written to the model card."""
    started = time.time()
    corpus = make_corpus(out, config, say)
    return train_model(out, corpus, config, say, started)


def make_corpus(out: Path, config: BuildConfig, say: Callable[[str], None] = print) -> Corpus:
    """Stage 1: tasks, held-out tasks and scratchpads through the sandbox, the transcripts; writes
    `heldout.jsonl` and the program keys into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    random.seed(config.seed)
    say(f"1/4 tasks from {config.programs} programs (and {config.heldout_programs} held out)")
    with Executor(ExecutorConfig(timeout=2.0, memory_mb=512)) as executor:
        train = make_tasks(executor, config.seed, config.programs, induction_inputs=config.induction_inputs)
        seen = {normalized(t.program) for t in (*train.triplets, *train.inductions)}
        heldout = make_tasks(
            executor, config.seed + 1_000_003, config.heldout_programs,
            induction_inputs=config.induction_inputs, exclude=seen,
        )  # fmt: skip
        pads = scratchpads(
            executor, train.triplets, random.Random(config.seed + 1), config.scratchpad, config.scratchpad_chars
        )
    _write_heldout(out / "heldout.jsonl", heldout)
    write_program_keys(out / PROGRAM_KEYS, train)
    texts = transcripts(train, random.Random(config.seed), pads=pads)
    data = {
        "train_triplets": len(train.triplets), "train_induction": len(train.inductions),
        "heldout_triplets": len(heldout.triplets), "heldout_induction": len(heldout.inductions),
        "transcripts": len(texts), "max_output_chars": MAX_OUTPUT_CHARS,
        "scratchpad": config.scratchpad, "scratchpad_chars": config.scratchpad_chars,
        "scratchpads_cut": sum(pad.endswith("...") for pad in pads),
        "mean_scratchpad_chars": round(sum(map(len, pads)) / max(1, len(pads)), 1),
    }  # fmt: skip
    say(f"   {data}")
    return Corpus(train, heldout, texts, data)


def train_model(
    out: Path, corpus: Corpus, config: BuildConfig, say: Callable[[str], None] = print, started: float | None = None
) -> dict[str, Any]:
    """Stages 2-4 on a corpus: tokenizer, pretraining, scores and the model card, into `out`.
    `started` is when the build began (the card's whole build time); None: now."""
    started = time.time() if started is None else started
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    report: dict[str, Any] = {"config": asdict(config), "data": corpus.data}

    say("2/4 tokenizer")
    tokenizer = train_tokenizer(corpus.texts, config.vocab_size)
    tokenizer.save_pretrained(out)

    model, curve, tokens, seconds = pretrain(corpus.texts, tokenizer, config, say)
    steps = curve[-1][0]
    # Shipped in bfloat16: half the size, and the held-out scores barely move (checked: greedy
    # pass@1 within 0.002 of float32's). Loading upcasts to the float32 that training keeps.
    model.to("cpu", torch.bfloat16).save_pretrained(out)
    report["pretraining"] = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokens_in_corpus": tokens,
        "steps": steps,
        "epochs": round(steps * config.batch_size * (config.context + 1) / tokens, 2),
        "tokens_trained": steps * config.batch_size * config.context,
        "seconds": round(seconds),
        "tokens_per_second": round(steps * config.batch_size * config.context / seconds),
        "loss": curve,
    }

    say("4/4 held-out scores")
    report["heldout"] = score(out, corpus.heldout, corpus.train, config)
    say(f"   {report['heldout']}")
    report["build_seconds"] = round(time.time() - started)
    (out / "build.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card(report))
    return report


def write_program_keys(path: Path, tasks: TaskSet) -> None:
    keys = sorted({program_key(t.program) for t in (*tasks.triplets, *tasks.inductions)})
    path.write_text("".join(key + "\n" for key in keys))


def _write_heldout(path: Path, tasks: TaskSet) -> None:
    rows = [export_row(t) for t in (*tasks.triplets, *tasks.inductions)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    # Digits one by one: numbers then share tokens, which helps a small model with arithmetic.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>", pad_token="<|pad|>")


def pretrain(
    texts: list[str], tokenizer: PreTrainedTokenizerFast, config: BuildConfig, say: Callable[[str], None]
) -> tuple[Any, list[list[float]], int, float]:
    """Causal language modelling on the transcripts, packed into blocks of `context` tokens. Returns
    the model, its loss curve ([step, loss] pairs), the corpus's size in tokens, and the seconds."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.set_num_threads(os.cpu_count() or 1)
    device = torch.device(config.device)
    eos = tokenizer.eos_token_id
    flat: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        flat += [*ids, eos]
    width = config.context + 1
    blocks = torch.tensor(flat[: len(flat) // width * width]).view(-1, width)
    steps = config.steps or max(1, math.ceil(config.epochs * len(blocks) / config.batch_size))
    say(f"3/4 pretraining, {steps} steps of {config.batch_size} x {config.context} tokens ({len(flat):,} in all)")
    model_config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers, num_attention_heads=config.heads, num_key_value_heads=config.kv_heads,
        max_position_embeddings=4096, tie_word_embeddings=True, eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=eos,
    )  # fmt: skip
    torch.manual_seed(config.seed)
    model = Qwen2ForCausalLM(model_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay)

    def schedule(step: int) -> float:  # linear warm-up, cosine down to a tenth
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    order = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(config.seed))
    position, curve, started, recent = 0, [], time.time(), []
    model.train()
    for step in range(steps):
        if position + config.batch_size > len(order):  # a new epoch, reshuffled
            order = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(config.seed + step))
            position = 0
        batch = blocks[order[position : position + config.batch_size]].to(device)
        position += config.batch_size
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            logits = model(input_ids=batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        recent.append(loss.item())
        if (step + 1) % 50 == 0 or step + 1 == steps:
            mean = sum(recent) / len(recent)
            recent = []
            curve.append([step + 1, round(mean, 4)])
            rate = (step + 1) * config.batch_size * config.context / (time.time() - started)
            say(f"   step {step + 1}/{steps}  loss {mean:.3f}  {rate:.0f} tokens/s")
    return model, curve, len(flat), time.time() - started


def score(model_dir: Path, heldout: TaskSet, train: TaskSet, config: BuildConfig) -> dict[str, Any]:
    """Greedy pass@1 per task type on the held-out tasks, and how often proposals are valid."""
    from azr.config import Config
    from azr.engine.generation import Sampling, TransformersGenerator
    from azr.engine.policy import Policy
    from azr.eval.harness import evaluate
    from azr.prompts import get_template
    from azr.selfplay.propose import propose
    from azr.tasks.store import TaskStore
    from azr.tasks.validate import ValidationConfig, Validator, rejection_counts
    from azr.tasks.verify import Verifier

    settings = Config()
    settings.model.path = str(model_dir)
    settings.model.device = config.device
    policy = Policy(settings.model)
    generator = TransformersGenerator(policy, settings.generation)
    template = get_template("compact", n_inputs=config.induction_inputs, think=True)
    tasks = [*heldout.triplets, *[_flip(t) for t in heldout.triplets], *heldout.inductions]
    result: dict[str, Any] = {}
    with Executor(ExecutorConfig(timeout=2.0, memory_mb=512)) as executor:
        greedy = Sampling(temperature=0.0, max_new_tokens=config.eval_max_new_tokens, stop=template.stop)
        scored = evaluate(generator, template, Verifier(executor), tasks, 1, greedy, 0)
        result["pass@1_greedy"] = {k: round(v["pass@1"], 4) for k, v in scored["results"].items()}
        short: dict[str, list[bool]] = {}
        for task, row in zip(tasks, scored["tasks"], strict=True):
            if task.task_type != TaskType.INDUCTION and statements(task.program) <= 2:
                short.setdefault(task.task_type, []).append(row["correct"][0])
        result["pass@1_greedy_short"] = {k: round(sum(v) / len(v), 4) for k, v in sorted(short.items())}
        result["short_tasks"] = {k: len(v) for k, v in sorted(short.items())}
        validator = Validator(executor, ValidationConfig(induction_inputs=config.induction_inputs), seed=0)
        with tempfile.TemporaryDirectory() as scratch, TaskStore(Path(scratch) / "tasks.db") as store:
            store.add(train.triplets[:200])
            sampling = Sampling(max_new_tokens=config.eval_max_new_tokens, stop=template.stop)
            proposed = propose(
                generator, template, store, list(PAPER), config.eval_proposals, 2, sampling,
                random.Random(config.seed), config.seed,
            )  # fmt: skip
            validations = validator.validate([p.proposal for p in proposed])
            result["valid_proposals"] = {}
            for task_type in PAPER:
                mine = [v for p, v in zip(proposed, validations, strict=True) if p.task_type is task_type]
                result["valid_proposals"][task_type] = round(sum(v.valid for v in mine) / len(mine), 4)
            result["rejections"] = rejection_counts(validations)
    return result


def statements(program: str) -> int:
    """Statements in `f`'s body, its `return` included (nested blocks count once): a program's size
    as a person reads it. A helper's body is not counted."""
    import ast

    try:
        tree = ast.parse(program)
    except SyntaxError:
        return 0
    f = entry_function(tree)
    return len(f.body) if f is not None else 0


def _flip(task: TripletTask) -> TripletTask:
    """The same triplet asked the other way (held-out triplets serve both directions)."""
    other = TaskType.ABDUCTION if task.task_type == TaskType.DEDUCTION else TaskType.DEDUCTION
    return TripletTask(other, task.program, task.input, task.output, task.imports, task.step, task.source)


def _on(config: dict[str, Any]) -> str:
    device = config.get("device", "cpu")
    return "this machine" if device == "cpu" else f"a GPU (`--device {device}`)"


def model_card(report: dict[str, Any]) -> str:
    c, d, p, h = report["config"], report["data"], report["pretraining"], report["heldout"]
    return f"""# The embedded base model

A tiny code model trained from synthetic programs only, shipped with azr so that self-play runs
for real on a laptop CPU. Rebuild it with `azr build-base-model --out DIR --seed {c["seed"]}`.

## Data
Random Python functions from `azr/base/programs.py`, of two kinds: statement templates over ints,
strings and lists (arithmetic, comparisons, string methods, slicing, comprehensions, loops,
conditionals, helpers), and ordinary-style functions written as people write small ones
(`azr/base/ordinary.py`: one argument with an everyday name, one or two operations in a `return`,
an `if`, or a short loop; bools among the results; words, capitals and digits among the inputs).
They are made into tasks through the sandbox: {d["train_triplets"]:,} deduction/abduction triplets
and {d["train_induction"]:,} induction tasks, outputs at most {d["max_output_chars"]} characters,
written as {d["transcripts"]:,} transcripts of all six (role, task type) pairs in the `compact`
template ({p["tokens_in_corpus"]:,} tokens).

**Solvers think before they answer.** A solver's transcript has a scratchpad after `<T>`, then its
answer: for deduction the program's run as the sandbox's trace mode records it,
{STYLES[c["scratchpad"]]}; for abduction a candidate input and its run, half
the time after a wrong candidate whose run ends elsewhere; induction's is empty. Scratchpads are cut
at {d["scratchpad_chars"]} characters with `...` ({d["scratchpads_cut"]:,} were; mean
{d["mean_scratchpad_chars"]} characters).

Held out (another seed, no shared normalised program): {d["heldout_triplets"]} triplets,
{d["heldout_induction"]} induction tasks, in `heldout.jsonl`; each triplet is scored both ways
(deduction and abduction). The pretraining programs' keys are in `programs.sha256` (16 hex digits
of the SHA-256 of each normalised program), so a run can count or reject proposals that copy them
(`selfplay.reject_copies`).

## Model
Qwen2 architecture, {p["parameters"]:,} parameters: hidden {c["hidden_size"]}, {c["layers"]} layers,
{c["heads"]} heads ({c["kv_heads"]} key/value), MLP {c["intermediate_size"]}, vocabulary {c["vocab_size"]}
(byte-level BPE, digits split, the compact markers as special tokens), tied embeddings.

## Training
{p["steps"]} steps of {c["batch_size"]} x {c["context"]} tokens ({p["tokens_trained"]:,} tokens, {p["epochs"]} epochs),
AdamW lr {c["lr"]} (warm-up {c["warmup_steps"]}, cosine to a tenth), weight decay {c["weight_decay"]},
bfloat16 autocast: {p["seconds"]} s at {p["tokens_per_second"]:,} tokens/s on {_on(c)}. Final loss
{p["loss"][-1][1]}. The whole build (tasks and traces, tokenizer, pretraining, scores) took
{report["build_seconds"]} s.{report.get("where", "")}

## Held-out scores
Greedy pass@1: {", ".join(f"{k} {v:.3f}" for k, v in h["pass@1_greedy"].items())}.
On the programs of one or two statements (`f`'s body, its `return` included):
{", ".join(f"{k} {v:.3f} ({h['short_tasks'][k]} tasks)" for k, v in h["pass@1_greedy_short"].items())}.
Valid proposals (sampled at temperature 1, {c["eval_proposals"]} per type):
{", ".join(f"{k} {v:.2f}" for k, v in h["valid_proposals"].items())}.

## What it can and cannot do
It has only ever seen the programs of one generator: it writes and reads those, and nothing else
(no natural language beyond the generator's phrases). It is a base for showing self-play at work on
a CPU, not a code model to use.
"""
