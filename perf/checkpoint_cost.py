"""What verifying checkpoints costs: a save with and without its checksums, and a verify, side by side.

    python perf/checkpoint_cost.py [--model embedded] [--rounds 7]

For one model (the embedded one by default) with an optimizer state that has taken a step, each
round saves a checkpoint the way `azr train` does (`checkpoint.save`: weights, optimizer, RNG
states, checksums, fsync, rename) and, as the baseline, the same files without checksums.json
(weights and state, fsync); then `checkpoint.verify` reads the saved one back. Rounds alternate
the two saves; printed: each one's mean and standard error, the paired difference, and the bytes
hashed. The cost of the per-step store marker (`TaskStore.commit_step`) is measured too.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from azr import checkpoint
from azr.config import ModelConfig, OptimConfig
from azr.engine.policy import Policy
from azr.selfplay.update import Updater
from azr.tasks.store import TaskStore


def baseline_save(root: Path, policy: Policy, updater: Updater) -> None:
    """checkpoint.save as it was before checksums: the files, fsynced, renamed into place."""
    temporary = root / "baseline.tmp"
    policy.save(temporary / "model")
    torch.save(
        {"updater": updater.state_dict(), "rng": {"python": random.getstate(), "torch": torch.get_rng_state()}},
        temporary / checkpoint.STATE_FILE,
    )
    checkpoint._sync(temporary)
    final = root / "baseline"
    if final.exists():
        shutil.rmtree(final)
    temporary.rename(final)


def mean_se(values: list[float]) -> str:
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return f"{statistics.mean(values) * 1000:8.1f} ms ± {se * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    policy = Policy(ModelConfig(path=args.model), 0)
    updater = Updater(policy, OptimConfig())
    loss = sum(p.float().pow(2).sum() for p in policy.parameters())
    loss.backward()
    updater.optimizer.step()  # so the optimizer state holds its moments
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        ours, base, verify = [], [], []
        for round_ in range(args.rounds):
            for name in ("ours", "base") if round_ % 2 == 0 else ("base", "ours"):
                started = time.perf_counter()
                if name == "ours":
                    path = checkpoint.save(root, 1, policy, updater, keep=1)
                    ours.append(time.perf_counter() - started)
                else:
                    baseline_save(root, policy, updater)
                    base.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert checkpoint.verify(path) is None
            verify.append(time.perf_counter() - started)
        hashed = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.name != checkpoint.CHECKSUMS)
        with TaskStore(root / "tasks.db") as store:
            marks = []
            for step in range(50):
                started = time.perf_counter()
                store.commit_step(step)
                marks.append(time.perf_counter() - started)
    difference = [a - b for a, b in zip(ours, base, strict=True)]
    print(f"model {args.model}: {sum(p.numel() for p in policy.model.parameters()) / 1e6:.1f}M parameters, "
          f"checkpoint {hashed / 1e6:.1f} MB hashed; {args.rounds} rounds")  # fmt: skip
    print(f"  save, baseline (no checksums)  {mean_se(base)}")
    print(f"  save, with checksums.json      {mean_se(ours)}")
    print(f"  paired difference              {mean_se(difference)}")
    print(f"  verify (resume)                {mean_se(verify)}   {hashed / statistics.mean(verify) / 1e6:.0f} MB/s")
    print(f"  store step marker, per step    {mean_se(marks)}")


if __name__ == "__main__":
    main()
