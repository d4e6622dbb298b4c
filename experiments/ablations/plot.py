"""The curves of issue 15's ablation runs (the runs of table.py), one line per run: the in-run
held-out pass@1 (200 tasks a type, every `eval.every` steps), the solvers' accuracy on the step's own
tasks and the valid-proposal rate (trailing means over 10 steps).

    python experiments/ablations/plot.py [OUT.png]      # default: experiments/ablations/curves.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from table import ARMS, HERE, TYPES, files

from azr.report.plots import curves
from azr.report.summary import read_metrics


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "curves.png"
    runs = {}
    for name, *_, where in ARMS:
        path = files(where)[1]
        if path.is_file():
            runs[name] = read_metrics(path)
    panels = [(f"held-out {t} pass@1 (in run)", [f"eval/{t}/pass@1"]) for t in TYPES]
    panels += [(f"{t} solver accuracy", [f"solve/{t}/accuracy"], 10) for t in TYPES]
    panels += [(f"valid {t} proposals", [f"propose/{t}/valid_rate"], 10) for t in TYPES]
    print(curves(runs, panels, out, title="issue 15 ablations on the 0.7.0 model (seed 0 unless named)"))


if __name__ == "__main__":
    main()
