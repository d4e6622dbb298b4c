"""Where a self-play step's time goes, and our generation path against plain `generate`.

    python perf/train_step.py [--steps 3] [key=value ...]

Runs a few steps of the default preset (or the overrides given) in a temporary run directory and
prints the time split per step: generation, the sandbox (validation and verification), the update
(log-probabilities, backward, optimizer), the rest. Then, on the same model, the same prompts and
batch size, it times `TransformersGenerator` (ours: grouping by length, stop handling, decoding)
against a bare `model.generate` call on the same padded batch: the baseline.

    python perf/train_step.py --backends [key=value ...]

Instead: the generation backends `transformers` and `transformers-cb` (continuous batching) side by
side, on the same model, prompts, sampling and batch size, in tokens/s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from azr.config.files import load
from azr.engine.generation import Sampling, TransformersGenerator, make_generator
from azr.engine.policy import Policy
from azr.run.runlog import read_metrics
from azr.run.train import train


def step_split(steps: int, overrides: list[str]) -> None:
    with tempfile.TemporaryDirectory() as run_dir:
        config = load(None, [f"train.steps={steps}", "train.tensorboard=false", "eval.every=0", *overrides])
        started = time.perf_counter()
        train(Path(run_dir), config)
        total = time.perf_counter() - started
        metrics = read_metrics(Path(run_dir))
    print(f"\n{steps} steps in {total:.1f} s (with start-up and seeding)")
    keys = ["generate", "executor", "update", "step"]
    print(f"{'step':>4} " + " ".join(f"{k:>9}" for k in keys) + "  gen tok/s  executor share")
    for row in metrics:
        times = {k: row[f"time/{k}"] for k in keys}
        share = times["executor"] / times["step"]
        print(
            f"{row['step']:>4} "
            + " ".join(f"{times[k]:>8.2f}s" for k in keys)
            + f"  {row['tokens/per_second']:>9.0f}  {share:>13.1%}"
        )
    shares = [row["time/executor"] / row["time/step"] for row in metrics]
    print(f"executor share of a step: mean {statistics.mean(shares):.1%} (target < 10%)")


def _texts(prompts: int) -> list[str]:
    return [f"<D>def f(x):\n    return x * {i} + {'1' * (i % 7)}<I>{i}<O>" for i in range(prompts)]


def _rate(run: Callable[[], int], repeats: int) -> float:
    """Median tokens/s of `run` (which returns the tokens it sampled), after one run to warm up."""
    run()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        tokens = run()
        samples.append(tokens / (time.perf_counter() - started))
    return statistics.median(samples)


def backends_side_by_side(overrides: list[str], prompts: int = 24, new_tokens: int = 64, repeats: int = 3) -> None:
    config = load(None, overrides)
    policy = Policy(config.model)
    texts = _texts(prompts)
    sampling = Sampling(temperature=1.0, max_new_tokens=new_tokens)
    rates = {}
    for backend in ("transformers", "transformers-cb"):
        generator = make_generator(policy, replace(config.generation, backend=backend))
        rates[backend] = _rate(
            lambda g=generator: sum(len(c.ids) for group in g.generate(texts, 1, sampling, seed=0) for c in group),
            repeats,
        )
    print(f"\ngeneration backends, {prompts} prompts x {new_tokens} new tokens, batch {config.generation.batch_size}, "
          f"model {config.model.path} on {policy.device}:")  # fmt: skip
    for name, rate in rates.items():
        print(f"  {name:<16} {rate:>9.0f} tokens/s")
    print(f"  ratio cb / hf    {rates['transformers-cb'] / rates['transformers']:>9.2f}")


def generation_versus_plain(overrides: list[str], prompts: int = 24, new_tokens: int = 64, repeats: int = 3) -> None:
    config = load(None, overrides)
    policy = Policy(config.model)
    texts = _texts(prompts)
    sampling = Sampling(temperature=1.0, max_new_tokens=new_tokens)  # no stop: every row runs to the end
    ours = TransformersGenerator(policy, config.generation)
    encoded = policy.encode(texts, config.generation.max_prompt_tokens)

    eos = policy.tokenizer.eos_token_id

    def plain() -> int:
        batch = policy.batch(encoded, [[] for _ in encoded])
        with torch.no_grad():
            out = policy.model.generate(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, do_sample=True, temperature=1.0,
                top_k=0, max_new_tokens=new_tokens, eos_token_id=eos, pad_token_id=policy.tokenizer.pad_token_id,
            )  # fmt: skip
        # the tokens each row really sampled: through its EOS, as ours counts them
        rows = out[:, batch.prompt_width :].tolist()
        return sum(row.index(eos) + 1 if eos in row else len(row) for row in rows)

    def azr() -> int:
        return sum(len(c.ids) for group in ours.generate(texts, 1, sampling, seed=0) for c in group)

    rates = {name: _rate(run, repeats) for name, run in (("plain generate", plain), ("azr generation", azr))}
    print(f"\ngeneration, {prompts} prompts x {new_tokens} new tokens, batch {config.generation.batch_size}, "
          f"model {config.model.path} on {policy.device}:")  # fmt: skip
    for name, rate in rates.items():
        print(f"  {name:<15} {rate:>9.0f} tokens/s")
    print(f"  ratio           {rates['azr generation'] / rates['plain generate']:>9.2f} (target >= 0.90)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--backends", action="store_true", help="time transformers against transformers-cb only")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.backends:
        backends_side_by_side(args.overrides)
        return
    step_split(args.steps, args.overrides)
    generation_versus_plain(args.overrides)


if __name__ == "__main__":
    main()
