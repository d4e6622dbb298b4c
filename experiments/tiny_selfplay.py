"""The default self-play run of the embedded model, and ablations, with held-out curves.

    python experiments/tiny_selfplay.py [--out experiments/tiny-selfplay] [--runs default,valid_reward]

Each run is `azr train` with the default preset plus its overrides and a fixed seed, with held-out
evaluation (greedy pass@1 per task type, on the first `eval.limit` tasks) before step 1 and every
few steps. Then `azr eval` scores the base model and each run's last checkpoint on the whole
held-out split, greedy and sampled (4 answers at temperature 1). Writes to --out `curves.png`
(held-out pass@1, valid-proposal rate, distinct programs and program length over the steps, one line
per run), `summary.json` (base and final numbers per run) and each run's metrics.jsonl; the run
directories (checkpoints, task stores, the `azr eval` results with every verdict) go to --runs-dir.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from azr.config.files import load
from azr.report.plots import curves
from azr.report.summary import TYPES, first_last
from azr.run.runlog import read_metrics
from azr.run.train import train

RUNS = {
    "default": [],
    "valid_reward": ["selfplay.proposer_reward=valid"],  # ablation: no learnability signal
    "reuse": ["selfplay.reuse_rollouts=true"],  # beyond the paper: train on the N_mc rollouts too
}


def _series(rows: list[dict], key: str) -> list[float]:
    return [r[key] for r in rows if r["step"] > 0 and r.get(key) is not None]


def _rolling_min(rows: list[dict], key: str, window: int = 10) -> float | None:
    values = _series(rows, key)
    means = [sum(values[i : i + window]) / window for i in range(len(values) - window + 1)]
    return round(min(means), 3) if means else None


def _first_last(rows: list[dict], key: str, window: int = 10) -> list[float]:
    """Means of the first and the last `window` steps."""
    means = first_last([r for r in rows if r["step"] > 0], key, window)
    return [round(mean, 1) for mean in means] if means else []


def heldout(model: str, out: Path) -> dict[str, dict[str, float]]:
    """`azr eval` on the whole held-out split: greedy pass@1, and sampled (4 at T=1) pass@1 per type."""
    scores: dict[str, dict[str, float]] = {}
    for mode, flags in (("greedy", []), ("sampled", ["--samples", "4", "--temperature", "1.0"])):
        path = out / f"heldout-{mode}.json"
        command = [sys.executable, "-m", "azr.cli", "eval", "--model", model, "--out", str(path), *flags]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        results = json.loads(path.read_text())["benchmarks"]["heldout"]["results"]
        scores[mode] = {t: round(results[t]["pass@1"], 3) for t in TYPES if t in results}
    return scores


def plot(metrics: dict[str, list[dict]], out: Path) -> None:
    panels: list = [(f"held-out {t} pass@1 (greedy)", [f"eval/{t}/pass@1"]) for t in TYPES]
    panels += [(f"valid proposals: {t}", [f"propose/{t}/valid_rate"], 10) for t in TYPES]
    panels += [
        ("distinct valid deduction programs / step", ["propose/deduction/distinct_programs"], 10),
        ("program length (chars), deduction", ["propose/deduction/program_chars"], 10),
        ("solver accuracy on its batch: deduction", ["solve/deduction/accuracy"], 10),
    ]
    curves(metrics, panels, out, title="self-play of the embedded model, tiny-cpu preset")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("experiments/tiny-selfplay"))
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/tiny-selfplay"))
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--replot", action="store_true", help="only redraw curves.png from --out's metrics")
    parser.add_argument("overrides", nargs="*", help="extra key=value for every run")
    args = parser.parse_args()
    if args.replot:
        names = [p.parent.name for p in sorted(args.out.glob("*/metrics.jsonl"))]
        order = [name for name in RUNS if name in names] + [name for name in names if name not in RUNS]
        plot({name: read_metrics(args.out / name) for name in order}, args.out / "curves.png")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    (args.runs_dir / "base").mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict] = {"base": heldout("embedded", args.runs_dir / "base")}
    print(json.dumps({"base": summary["base"]}), flush=True)
    metrics = {}
    for name in args.runs.split(","):
        run_dir = args.runs_dir / name
        config = load(None, [*RUNS[name], f"eval.every={args.eval_every}", *args.overrides])
        started = time.time()
        train(run_dir, config)
        minutes = round((time.time() - started) / 60, 1)
        rows = read_metrics(run_dir)
        metrics[name] = rows
        (args.out / name).mkdir(exist_ok=True)
        shutil.copy(run_dir / "metrics.jsonl", args.out / name / "metrics.jsonl")
        final = run_dir / "checkpoints" / f"step-{rows[-1]['step']}" / "model"
        evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
        summary[name] = {
            "overrides": RUNS[name] + args.overrides,
            "minutes": minutes,
            "heldout": heldout(str(final), run_dir),
            "in_training_first": {t: evals[0].get(f"eval/{t}/pass@1") for t in TYPES},
            "in_training_last": {t: evals[-1].get(f"eval/{t}/pass@1") for t in TYPES},
            "in_training_best": {t: max((r.get(f"eval/{t}/pass@1") or 0) for r in evals) for t in TYPES},
            # a rolling mean over 10 steps: one step's rate of B=8 proposals is too noisy to judge by
            "valid_rate_min_rolling10": {t: _rolling_min(rows, f"propose/{t}/valid_rate") for t in TYPES},
            "program_chars_first_last": _first_last(rows, "propose/deduction/program_chars"),
            "distinct_programs_first_last": _first_last(rows, "propose/deduction/distinct_programs"),
        }
        print(json.dumps({name: summary[name]}, indent=1), flush=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(metrics, args.out / "curves.png")
    print(f"wrote {args.out / 'curves.png'} and {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
