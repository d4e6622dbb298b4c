"""Compare two runs' metrics.jsonl step by step, leaving out what a clock measures.

    python experiments/task-families/compare_runs.py RUN_A RUN_B

Prints, per step, how many metrics were compared and which differ (with both values); exits 1 if
any does. Timings (`time`, `time/*`, `tokens/per_second`) differ from run to run and are not compared.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CLOCKED = ("time", "tokens/per_second")


def metrics(run: Path) -> dict[int, dict[str, float]]:
    rows = (json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip())
    return {row["step"]: {k: v for k, v in row.items() if not k.startswith(CLOCKED)} for row in rows}


def main(a: str, b: str) -> int:
    left, right = metrics(Path(a)), metrics(Path(b))
    differ = 0
    for step in sorted(set(left) | set(right)):
        x, y = left.get(step, {}), right.get(step, {})
        changed = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
        differ += len(changed)
        print(f"step {step:>3}: {len(set(x) | set(y)):>3} metrics, {len(changed)} differ")
        for key in changed:
            print(f"    {key}: {x.get(key)} vs {y.get(key)}")
    print("identical" if not differ else f"{differ} differences")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
