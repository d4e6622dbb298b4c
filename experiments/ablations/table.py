"""The ablation table of issue 15: every option measured on the 0.7.0 embedded model, one row per
run, from the committed files (`azr compare` of the run's step-60 model against the base, and the
run's metrics.jsonl), so the table in README.md can be recomputed.

    python experiments/ablations/table.py            # markdown table on stdout
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

from azr.report.summary import read_metrics

HERE = Path(__file__).resolve().parent
EXPERIMENTS = HERE.parent

# (name in the curves, label, overrides, where): `where` is DIR/NAME for DIR/compare-base-NAME.json
# (`azr compare` against the base) and DIR/metrics-NAME.jsonl; seed 0 unless the overrides say otherwise.
ARMS = [
    ("generate", "default of azr 0.7.0 (HF `generate`, eval every 10 steps)", "", "base-scale/cpu/default"),
    ("default", "**default** (azr 0.8.0)", "", "run-time/default2"),
    ("seed 1", "default, second seed", "train.seed=1", "run-time/seed1"),
    ("bfloat16", "bfloat16 (`generate` engine)", "model.dtype=bfloat16", "run-time/bf16-generate"),
    ("reuse", "solver on its learnability rollouts", "selfplay.reuse_rollouts=true selfplay.baseline=prompt",
     "run-time/reuse"),
    ("group", "a mean per (type, role) group", "optim.loss_mean=group", "ablations/group"),
    ("partial", "induction partial credit", "selfplay.partial_credit=true", "ablations/partial"),
    ("reject copies", "copies rejected", "selfplay.reject_copies=true", "ablations/reject-copies"),
    ("n_mc 8", "8 learnability rollouts a task", "selfplay.n_mc=8", "ablations/n_mc8"),
    ("lr 1e-4", "scratchpad spared, lr 1e-4", "optim.scratchpad_weight=0 optim.lr=1e-4", "ablations/lr1e-4"),
    ("lr 1e-4, seed 1", "the same, second seed", "optim.scratchpad_weight=0 optim.lr=1e-4 train.seed=1",
     "ablations/lr1e-4-seed1"),
]  # fmt: skip


def files(where: str) -> tuple[Path, Path]:
    """The arm's `azr compare` against the base and its metrics.jsonl."""
    folder, name = where.rsplit("/", 1)
    return EXPERIMENTS / folder / f"compare-base-{name}.json", EXPERIMENTS / folder / f"metrics-{name}.jsonl"


COLUMNS = [("heldout", "deduction"), ("heldout", "abduction"), ("heldout", "induction"),
           ("ordinary.jsonl", "deduction"), ("ordinary.jsonl", "abduction")]  # fmt: skip
TYPES = ("deduction", "abduction", "induction")


def cell(row: dict) -> str:
    star = "**" if row["low"] > 0 else ""
    return (
        f"{100 * row['after']:.1f} ({star}{100 * row['difference']:+.1f}{star} "
        f"[{100 * row['low']:+.1f}, {100 * row['high']:+.1f}])"
    )


def health(path: Path) -> str:
    steps = [r for r in read_metrics(path) if "time/step" in r]

    def avg(key: str) -> float:
        return mean(r[key] for r in steps if key in r)

    valid = "/".join(f"{avg(f'propose/{t}/valid_rate'):.2f}" for t in TYPES)
    # With selfplay.reject_copies a copy is rejected, not valid: count the rejections instead (a
    # rejection reason is logged only in the steps that had one).
    rejected = any(f"propose/{TYPES[0]}/rejected/copy" in r for r in steps)

    def share(task_type: str) -> float:
        if rejected:
            return mean(r.get(f"propose/{task_type}/rejected/copy", 0.0) for r in steps)
        return avg(f"propose/{task_type}/copies")

    copies = "/".join(f"{100 * share(t):.0f}%" for t in TYPES[:2]) + (" rejected" if rejected else "")
    return f"{valid} | {copies} | {avg('time/step'):.1f}"


def main() -> None:
    base = json.loads(files(ARMS[1][3])[0].read_text())["comparisons"]
    scores = {(c["benchmark"], c["group"]): c["base"] for c in base}
    head = ["run", "overrides", "held-out deduction", "abduction", "induction (69)", "probe deduction",
            "probe abduction", "valid (ded/abd/ind)", "copies (ded/abd)", "s a step"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    print("| base (azr 0.7.0) | | " + " | ".join(f"{100 * scores[c]:.1f}" for c in COLUMNS) + " | | | |")
    for _, label, overrides, where in ARMS:
        compare, metrics = files(where)
        if not compare.is_file():
            continue
        found = {(c["benchmark"], c["group"]): c for c in json.loads(compare.read_text())["comparisons"]}
        cells = " | ".join(cell(found[c]) for c in COLUMNS)
        print(f"| {label} | {f'`{overrides}`' if overrides else ''} | {cells} | {health(metrics)} |")


if __name__ == "__main__":
    main()
