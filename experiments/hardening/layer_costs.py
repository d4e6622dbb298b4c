"""What each new validation layer costs on its own: one executor, the same proposals, each layer on and off.

    python experiments/hardening/layer_costs.py [--rounds 3] [--programs 256]

Validates the generated programs of perf/executor_throughput.py four ways, in alternating
rounds: without the run-time policy and the clock offset, with either, with both (what training
uses). Prints proposals validated per second, each round and the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "perf"))

from executor_throughput import generated_programs

from azr.executor import Executor, ExecutorConfig
from azr.tasks import TaskType, TripletProposal
from azr.tasks.validate import ValidationConfig, Validator

WAYS = {
    "neither": ValidationConfig(policy=False, shift_clock=False),
    "policy only": ValidationConfig(shift_clock=False),
    "clock offset only": ValidationConfig(policy=False),
    "both (training)": ValidationConfig(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--programs", type=int, default=256)
    args = parser.parse_args()
    proposals = [TripletProposal(TaskType.DEDUCTION, r.program, r.input) for r in generated_programs(args.programs)]
    rates: dict[str, list[float]] = {way: [] for way in WAYS}
    with Executor(ExecutorConfig()) as executor:
        print(f"sandbox: {executor.describe()}")
        for _ in range(args.rounds):
            for way, config in WAYS.items():
                validator = Validator(executor, config)
                validator.validate(proposals[:4])  # this way's worker groups started
                started = time.perf_counter()
                validator.validate(proposals)
                rates[way].append(len(proposals) / (time.perf_counter() - started))
    for way, seen in rates.items():
        rounds = ", ".join(f"{rate:.0f}" for rate in seen)
        print(f"{way:>18}: median {statistics.median(seen):6.1f} validations/s  (rounds {rounds})")


if __name__ == "__main__":
    main()
