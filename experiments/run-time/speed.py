"""Generation time of transformers' `generate` against azr's decoding loop (azr/engine/decode.py),
paired in one process: the same 120 rows a self-play step's learnability and solve stages generate
(30 held-out deduction and abduction prompts x 4 samples, temperature 1, batches of 64, the
template's stops, 192 new tokens at most), each round's two engines in alternating order, in
float32 and under bfloat16 autocast.

    python experiments/run-time/speed.py [ROUNDS]      # default 4; prints one JSON line a timing
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time

import torch

from azr.config import Config, ExecutorSection
from azr.engine.generation import Sampling, TransformersGenerator, finish, generation_settings
from azr.engine.policy import Policy
from azr.eval.benchmarks import load
from azr.executor import Executor, ExecutorConfig
from azr.prompts import template_for


class GenerateEngine(TransformersGenerator):
    """The engine as it was before the loop: one `generate` call a batch, rows padded to the longest."""

    @torch.no_grad()
    def _generate(self, model, prompts, sampling, stop_ids, stop_strings):  # type: ignore[override]
        tokenizer = self.policy.tokenizer
        batch = self.policy.batch(prompts, [[] for _ in prompts])
        with self.policy.compute():
            out = model.generate(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                generation_config=generation_settings(sampling, stop_ids, tokenizer.pad_token_id),
            )  # fmt: skip
        rows = out[:, batch.prompt_width :].tolist()
        return [finish(tokenizer, p, r, stop_ids, stop_strings) for p, r in zip(prompts, rows, strict=True)]


def main(rounds: int) -> None:
    results = []
    prompts: list[str] = []
    for dtype in ("float32", "bfloat16"):
        config = Config()
        config.model.dtype = dtype
        policy = Policy(config.model, 0)
        template = template_for("compact", policy.tokenizer)
        if not prompts:
            with Executor(ExecutorConfig(**dataclasses.asdict(ExecutorSection()))) as executor:
                bench = load("heldout", None, executor, ["deduction", "abduction"], 200, 0)
            prompts = [template.render(template.solve_prompt(p.task), None) for p in bench.problems]
        engines = {"generate": GenerateEngine(policy, config.generation),
                   "decode": TransformersGenerator(policy, config.generation)}  # fmt: skip
        rng = random.Random(0)
        for round_ in range(rounds):
            chosen = rng.sample(prompts, 30)
            for name in ("generate", "decode") if round_ % 2 == 0 else ("decode", "generate"):
                started = time.perf_counter()
                out = engines[name].generate(chosen, 4, Sampling(1.0, 1.0, 192, template.stop), seed=round_)
                seconds = round(time.perf_counter() - started, 2)
                row = {"dtype": dtype, "round": round_, "engine": name, "seconds": seconds,
                       "tokens": sum(len(c.ids) for g in out for c in g),
                       "longest": max(len(c.ids) for g in out for c in g)}  # fmt: skip
                results.append(row)
                print(json.dumps(row), flush=True)
    for dtype in ("float32", "bfloat16"):
        mine = [r for r in results if r["dtype"] == dtype]
        pairs = [(g["seconds"], d["seconds"]) for g in mine for d in mine
                 if g["round"] == d["round"] and (g["engine"], d["engine"]) == ("generate", "decode")]  # fmt: skip
        ratios = [a / b for a, b in pairs]
        print(f"{dtype}: generate {sum(a for a, _ in pairs) / len(pairs):.2f} s, decode "
              f"{sum(b for _, b in pairs) / len(pairs):.2f} s, speed-up {sum(ratios) / len(ratios):.2f} "
              f"(paired ratios {min(ratios):.2f}-{max(ratios):.2f})")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
