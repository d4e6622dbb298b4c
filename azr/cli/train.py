"""`azr train`: self-play training, resumable."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from azr.cli import UsageError, add_command

EPILOG = """examples:
  azr train                                              # the tiny-cpu defaults, in runs/tiny-cpu
  azr train --run-dir runs/demo                          # the same, in runs/demo
  azr train --run-dir runs/demo train.steps=40           # resume the same run, with more steps
  azr train --run-dir runs/q15 --config gpu-1.5b-lora model.path=/models/Qwen2.5-Coder-1.5B
  azr train --run-dir runs/demo --fresh                  # start over; the old run is moved aside
  azr train --help-config                                # every key, with its default

presets: tiny-cpu (default), paper-7b, gpu-1.5b-lora. Run the same command on the same
--run-dir to resume from its last checkpoint.

exit codes: 0 finished; 130 (Ctrl-C) or 143 (SIGTERM) interrupted after saving, resumable;
2 a bad argument, config or file, a run directory in use or damaged, a full or read-only disk
(one line says what to do; what was committed is intact); 1 a bug in azr (a traceback)."""


def register(commands: Any) -> None:
    command = add_command(
        commands,
        "train",
        help="self-play training (resumes when the run directory has a checkpoint)",
        description="Train a model by Absolute Zero self-play: it proposes tasks, solves them, and learns "
        "from the sandbox's verdicts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "--run-dir",
        metavar="DIR",
        help="where the run lives: config, metrics, checkpoints (default: runs/<preset name>)",
    )
    command.add_argument("--config", metavar="FILE", help="a YAML file or a preset name")
    command.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.steps=5")
    command.add_argument(
        "--fresh",
        action="store_true",
        help="start over: move what --run-dir holds to DIR.replaced-<time> first (nothing is deleted)",
    )
    command.add_argument("--help-config", action="store_true", help="print every config key with its default")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from azr.config import ConfigError
    from azr.config.files import PRESETS, describe_keys, load

    if args.help_config:
        print(describe_keys(), end="")
        return 0
    name = Path(args.config or "tiny-cpu").name
    run_dir = Path(args.run_dir or Path("runs") / (name if name in PRESETS else Path(name).stem))
    try:
        config = load(args.config, args.overrides)
    except ConfigError as error:
        raise UsageError(str(error)) from None

    from rich.console import Console

    from azr.disk import WriteRefused
    from azr.engine.distributed import Stopped
    from azr.engine.policy import PolicyError
    from azr.executor import ExecutorError
    from azr.run.rundir import RunDirError
    from azr.run.train import train
    from azr.tasks.store import StoreError

    console = Console(stderr=True)
    try:
        outcome = train(run_dir, config, console, fresh=args.fresh)
    except (ConfigError, PolicyError, ExecutorError, StoreError, RunDirError, WriteRefused, Stopped) as error:
        rank = os.environ.get("RANK", "0")
        if isinstance(error, Stopped) or getattr(error, "reported_by_rank_0", False):
            return 2  # under torchrun, rank 0 prints what stopped every rank
        raise UsageError(str(error) if rank == "0" else f"rank {rank}: {error}") from None
    if outcome.interrupted_by is not None:
        return 128 + outcome.interrupted_by  # the shell's convention: `azr train && next` stops here
    if os.environ.get("RANK", "0") == "0":  # under torchrun rank 0 speaks for every rank
        console.print(f"done: step {outcome.step}; run directory {run_dir} (the same command resumes it)")
    return 0
