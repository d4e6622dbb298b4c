"""`azr report`: a static HTML page about a run directory, with plots of its metrics."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from azr.cli import UsageError, add_command


def register(commands: Any) -> None:
    command = add_command(
        commands,
        "report",
        help="write an HTML report of a run: plots, summary, task store, samples, config",
        description="Write index.html and its PNG plots for a run directory made by `azr train`: rewards and "
        "accuracies, proposals (valid and rejected), store growth and diversity, validation scores, timings and "
        "the policy update; the text summary; the task store per type; sample proposals and answers; the config. "
        "Prints the page's path and the summary. Lines of metrics.jsonl or samples.jsonl that are not JSON are "
        "skipped.",
    )
    command.add_argument("--run-dir", required=True, metavar="DIR", help="the run directory")
    command.add_argument("--out", metavar="DIR", help="where to write the report (default: DIR/report)")
    command.add_argument("--samples", type=int, default=2, metavar="N", help="samples per step, role and type (2)")
    command.add_argument(
        "--steps", type=int, default=20, metavar="N", help="steps with samples shown, evenly spaced (20)"
    )
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from azr.report.summary import read_metrics, summary, write_report

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"no run directory {run_dir}")
    if not (run_dir / "metrics.jsonl").is_file():
        raise UsageError(f"no metrics.jsonl in {run_dir}: give a run directory made by `azr train`")
    if args.samples < 0 or args.steps < 1:
        raise UsageError("--samples must be >= 0 and --steps >= 1")
    out = Path(args.out) if args.out else run_dir / "report"
    try:
        index = write_report(run_dir, out, args.samples, args.steps)
    except OSError as error:
        hint = "" if args.out else ": give --out DIR to write it elsewhere"
        raise UsageError(f"cannot write the report to {out}: {error.strerror or error}{hint}") from None
    print(f"report: {index}")
    print(summary(read_metrics(run_dir / "metrics.jsonl")))
    return 0
