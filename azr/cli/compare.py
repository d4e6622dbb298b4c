"""`azr compare`: two `azr eval` results, task by task, with the noise of the difference."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from azr.cli import UsageError, add_command

EPILOG = """example:
  azr eval --model runs/demo/checkpoints/step-0/model --out base.json     # (or the base model)
  azr eval --model runs/demo/checkpoints/step-60/model --out after.json
  azr compare base.json after.json --out compare.json

Per benchmark and group (task type): both pass@1 scores on the tasks both files scored, their
paired difference with a bootstrap 95% interval (tasks resampled), McNemar's exact p on the tasks
that flipped (solved: more than half a task's samples right), and how many flipped each way; --out
also lists the flipped tasks by id."""


def register(commands: Any) -> None:
    command = add_command(
        commands,
        "compare",
        help="compare two `azr eval --out` results task by task: differences, 95%% intervals, McNemar",
        description="Compare two evaluations of the same tasks (files written by `azr eval --out`), paired by task.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("base", metavar="BASE.json", help="the evaluation to compare against (e.g. the base model)")
    command.add_argument("after", metavar="AFTER.json", help="the evaluation compared (e.g. after training)")
    command.add_argument("--out", metavar="FILE.json", help="also write every number and the flipped tasks here")
    command.add_argument("--resamples", type=int, default=10_000, metavar="N", help="bootstrap resamples (10000)")
    command.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (0)")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from azr.eval.compare import CompareError, compare, only_in_one, table

    if args.resamples < 100:
        raise UsageError("--resamples must be >= 100")
    base, after = _read(args.base), _read(args.after)
    try:
        comparisons = compare(base, after, args.resamples, args.seed, (args.base, args.after))
        missing = only_in_one(base, after)
    except CompareError as error:
        raise UsageError(str(error)) from None
    if not comparisons:
        raise UsageError("the two files share no scored task: compare evaluations of the same benchmark")
    for name in missing:
        print(f"note: {name} is in one file only: left out")
    if base.get("sampling") != after.get("sampling"):
        print(f"note: sampled differently (base {base.get('sampling')}, after {after.get('sampling')})")
    print(table(comparisons))
    if args.out:
        report = {"base": args.base, "after": args.after, "resamples": args.resamples, "seed": args.seed,
                  "comparisons": [c.row() for c in comparisons]}  # fmt: skip
        try:
            Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        except OSError as error:
            raise UsageError(f"--out {args.out}: {error.strerror or error}") from None
    return 0


def _read(path: str) -> dict[str, Any]:
    from azr.userfiles import UserFileError, read_text

    try:
        text = read_text(path, "evaluation file")
    except UserFileError as error:
        raise UsageError(str(error)) from None
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        raise UsageError(f"{path} is not JSON: give a file written by `azr eval --out`") from None
    if not isinstance(found, dict) or not isinstance(found.get("benchmarks"), dict):
        raise UsageError(f"{path} holds no benchmarks: give a file written by `azr eval --out`")
    return found
