"""The default self-play run of the embedded model, and ablations, with held-out curves.

    python experiments/tiny_selfplay.py --out experiments/tiny-selfplay [--runs default,valid_reward]

Each run is `azr train` with the default preset plus its overrides, a fixed seed, and held-out
evaluation (greedy pass@1 per task type) before step 1 and every few steps. Writes each run's
directory, `curves.png` (held-out pass@1, valid-proposal rate, distinct programs and program length
over the steps, one line per run) and `summary.json` (base and final numbers per run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from azr.config import load
from azr.plots import curves
from azr.runlog import read_metrics
from azr.train import train

RUNS = {
    "default": [],
    "valid_reward": ["selfplay.proposer_reward=valid"],  # ablation: no learnability signal
    "no_reuse": ["selfplay.reuse_rollouts=false"],  # ablation: the paper's discarded rollouts
}
TYPES = ("deduction", "abduction", "induction")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("experiments/tiny-selfplay"))
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("overrides", nargs="*", help="extra key=value for every run")
    args = parser.parse_args()
    summary = {}
    metrics = {}
    for name in args.runs.split(","):
        run_dir = args.out / name
        config = load(None, [*RUNS[name], f"eval.every={args.eval_every}", *args.overrides])
        started = time.time()
        train(run_dir, config)
        rows = read_metrics(run_dir)
        metrics[name] = rows
        evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
        summary[name] = {
            "overrides": RUNS[name] + args.overrides,
            "minutes": round((time.time() - started) / 60, 1),
            "base": {t: evals[0].get(f"eval/{t}/pass@1") for t in TYPES},
            "final": {t: evals[-1].get(f"eval/{t}/pass@1") for t in TYPES},
            "best": {t: max((r.get(f"eval/{t}/pass@1") or 0) for r in evals) for t in TYPES},
            "valid_rate_min": min(
                sum(r.get(f"propose/{t}/valid_rate", 0) for t in TYPES) / 3 for r in rows if r["step"] > 0
            ),
        }
        print(json.dumps({name: summary[name]}, indent=1), flush=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    panels = [(f"held-out {t} pass@1 (greedy)", [f"eval/{t}/pass@1"]) for t in TYPES]
    panels += [(f"valid proposals: {t}", [f"propose/{t}/valid_rate"]) for t in TYPES]
    panels += [
        ("distinct valid deduction programs / step", ["propose/deduction/distinct_programs"]),
        ("program length (chars), deduction", ["propose/deduction/program_chars"]),
        ("solver accuracy on its batch: deduction", ["solve/deduction/accuracy"]),
    ]
    curves(metrics, panels, args.out / "curves.png", title="self-play of the embedded model, tiny-cpu preset")
    print(f"wrote {args.out / 'curves.png'} and {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
