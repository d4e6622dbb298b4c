"""`azr eval`: pass@1 of a model on a file of tasks, per task type."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from azr.cli import UsageError, add_command, add_executor_options, executor_from


def register(commands: Any) -> None:
    command = add_command(
        commands,
        "eval",
        help="evaluate a model as a solver on a file of tasks (pass@k per task type)",
        description="Evaluate a model on a file of tasks in the seed format (snippet, input, output; induction "
        'rows with inputs, outputs, message). Writes per task type {"pass@k", "n"} and the per-task verdicts '
        "to --out as JSON. Defaults: the embedded model on its own held-out tasks, greedy.",
    )
    command.add_argument("--model", default="embedded", help="a model directory or hub id (default: embedded)")
    command.add_argument("--bench", help="tasks file (default: the embedded model's held-out set)")
    command.add_argument("--task-types", default="deduction,abduction,induction", help="comma-separated")
    command.add_argument("--out", required=True, metavar="RESULT.json")
    command.add_argument("--template", choices=["azr", "compact"], default="compact")
    command.add_argument("--samples", type=int, default=1, help="answers per task (pass@1 is their mean)")
    command.add_argument("--k", default="1", help="comma-separated k of pass@k, each <= --samples (default: 1)")
    command.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default)")
    command.add_argument("--max-new-tokens", type=int, default=128)
    command.add_argument("--limit", type=int, help="at most this many rows of each kind")
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--device", default="auto")
    add_executor_options(command, timeout=5.0)
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from azr.base import heldout_path
    from azr.config import Config
    from azr.evaluate import evaluate, load_benchmark, write_result
    from azr.executor import ExecutorError
    from azr.generation import Sampling, TransformersGenerator
    from azr.policy import Policy, PolicyError
    from azr.prompts import get_template
    from azr.tasks import TaskType
    from azr.verify import Verifier

    try:
        task_types = [TaskType(name.strip()) for name in args.task_types.split(",") if name.strip()]
    except ValueError:
        raise UsageError("--task-types: choose from deduction, abduction, induction") from None
    if args.samples < 1 or args.temperature < 0 or args.max_new_tokens < 1:
        raise UsageError("--samples and --max-new-tokens must be >= 1, --temperature >= 0")
    try:
        ks = sorted({int(k) for k in args.k.split(",") if k.strip()})
    except ValueError:
        raise UsageError(f"--k {args.k!r}: give comma-separated integers, e.g. --k 1,5,10") from None
    if not ks or ks[0] < 1 or ks[-1] > args.samples:
        raise UsageError(f"--k: each k must be between 1 and --samples ({args.samples}); raise --samples for pass@k")
    if args.samples > 1 and args.temperature == 0:
        raise UsageError("several --samples need a --temperature above 0 (greedy answers are all the same)")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be >= 1")
    out = Path(args.out)
    if out.is_dir() or not _writable(out.parent):
        raise UsageError(f"--out {args.out}: give a file path in a writable directory")
    bench = Path(args.bench) if args.bench else heldout_path()
    if bench is None or not bench.is_file():
        raise UsageError(f"no benchmark file {args.bench or '(the embedded held-out set is not installed)'}")
    config = Config()
    config.model.path, config.model.device = args.model, args.device
    try:
        policy = Policy(config.model, args.seed)
        with executor_from(args) as executor:
            benchmark = load_benchmark(bench, task_types, executor, args.limit, args.seed)
            if not benchmark.tasks:
                raise UsageError(f"{bench}: no valid task of the requested types ({benchmark.reasons})")
            template = get_template(args.template)
            sampling = Sampling(args.temperature, 1.0, args.max_new_tokens, template.stop)
            generator = TransformersGenerator(policy, config.generation)
            result = evaluate(
                generator, template, Verifier(executor), benchmark.tasks, args.samples, sampling, args.seed, ks
            )
    except (PolicyError, ExecutorError) as error:
        raise UsageError(str(error)) from None
    except UnicodeDecodeError:
        raise UsageError(f"{bench}: not UTF-8 text (one JSON object per line)") from None
    result = {
        "model": args.model,
        "bench": str(bench),
        "template": args.template,
        "sampling": {
            "samples": args.samples,
            "k": ks,
            "temperature": args.temperature,
            "max_new_tokens": args.max_new_tokens,
        },
        "seed": args.seed,
        "skipped_rows": benchmark.skipped,
        **result,
    }
    write_result(out, result)
    for name, numbers in result["results"].items():
        scores = "  ".join(f"pass@{k} {numbers[f'pass@{k}']:.3f}" for k in ks)
        print(f"{name:<10} {scores}  (n={numbers['n']})", file=sys.stderr)
    return 0


def _writable(directory: Path) -> bool:
    """The directory exists (or can be made) and we may write in it."""
    import os

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)
