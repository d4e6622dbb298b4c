"""Each run's speed and health from its metrics.jsonl: mean seconds a step and their split, the
evaluations' time, valid proposals, distinct programs and copies of pretraining programs (means
over the 60 steps), and the in-run held-out pass@1 (step 0 -> last evaluation).

    python experiments/run-time/summary.py metrics-A.jsonl [metrics-B.jsonl ...]
"""

from __future__ import annotations

import sys
from pathlib import Path
from statistics import mean

from azr.report.summary import read_metrics

TYPES = ("deduction", "abduction", "induction")


def summary(path: Path) -> str:
    rows = read_metrics(path)
    steps = [r for r in rows if "time/step" in r]
    evals = [r for r in rows if "eval/deduction/pass@1" in r]

    def avg(key: str) -> float:
        return mean(r[key] for r in steps if key in r)

    def per_type(key: str, types: tuple[str, ...] = TYPES) -> str:
        return "/".join(f"{avg(key.format(t)):.2f}" for t in types)

    eval_seconds = sum(r["time/eval"] for r in evals)
    held = " ".join(f"{t[:3]} {evals[0][f'eval/{t}/pass@1']:.3f}->{evals[-1][f'eval/{t}/pass@1']:.3f}" for t in TYPES)
    return "\n".join([
        f"{path.name}: {len(steps)} steps",
        f"  s/step {avg('time/step'):.1f} (generate {avg('time/generate'):.1f}, of which learnability "
        f"{avg('time/learnability'):.1f}; update {avg('time/update'):.1f}; executor {avg('time/executor'):.1f}); "
        f"tokens/step {avg('tokens/generated'):.0f}; {len(evals)} evaluations, {eval_seconds:.0f} s",
        f"  valid {per_type('propose/{}/valid_rate')}  distinct {per_type('propose/{}/distinct_programs')}  "
        f"copies {per_type('propose/{}/copies', TYPES[:2])}  solver accuracy {per_type('solve/{}/accuracy')}",
        f"  in-run held-out {held}",
    ])  # fmt: skip


if __name__ == "__main__":
    print("\n".join(summary(Path(p)) for p in sys.argv[1:]))
