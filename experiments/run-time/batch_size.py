"""Why padding cost so much: with HF `generate` (the engine before azr/engine/decode.py), the same
120 solver rows (30 held-out prompts x 4 samples at temperature 1) in batches of several sizes, in
alternating order, one process. Equal times for 32-128 rows a batch mean a decoding step costs in
proportion to its rows, padding included.

    python experiments/run-time/batch_size.py 8 16 32 64 96 128      # one line a timing: round size seconds tokens
"""

from __future__ import annotations

import dataclasses
import random
import sys
import time
from dataclasses import replace

from speed import GenerateEngine  # the engine as it was

from azr.config import Config, ExecutorSection
from azr.engine.generation import Sampling
from azr.engine.policy import Policy
from azr.eval.benchmarks import load
from azr.executor import Executor, ExecutorConfig
from azr.prompts import template_for


def main(sizes: list[int], rounds: int = 2) -> None:
    config = Config()
    policy = Policy(config.model, 0)
    template = template_for("compact", policy.tokenizer)
    with Executor(ExecutorConfig(**dataclasses.asdict(ExecutorSection()))) as executor:
        bench = load("heldout", None, executor, ["deduction", "abduction"], 200, 0)
    prompts = [template.render(template.solve_prompt(p.task), None) for p in bench.problems]
    rng = random.Random(0)
    for round_ in range(rounds):
        chosen = rng.sample(prompts, 30)
        for size in sizes if round_ % 2 == 0 else sizes[::-1]:
            engine = GenerateEngine(policy, replace(config.generation, batch_size=size))
            started = time.perf_counter()
            out = engine.generate(chosen, 4, Sampling(1.0, 1.0, 192, template.stop), seed=round_)
            seconds = time.perf_counter() - started
            print(round_, size, round(seconds, 2), sum(len(c.ids) for g in out for c in g), flush=True)


if __name__ == "__main__":
    main([int(size) for size in sys.argv[1:]] or [8, 16, 32, 64, 96, 128])
