"""`azr build-base-model`: rebuild the embedded model from a seed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from azr.cli import UsageError, add_command


def register(commands: Any) -> None:
    command = add_command(
        commands,
        "build-base-model",
        help="build the embedded tiny code model from a seed (about 2.5 hours on 2 CPU cores, minutes on a GPU)",
        description="Generate programs, make them tasks through the sandbox, train a tokenizer, pretrain a small "
        "Qwen2 model on the tasks' transcripts, score it on held-out tasks and write a model card. The shipped "
        "model is the output of the defaults (its pretraining and scoring ran with --device cuda).",
    )
    command.add_argument("--out", required=True, metavar="DIR", help="where the model directory goes")
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--programs", type=int, help="training programs (default 50000)")
    command.add_argument("--epochs", type=float, help="passes over the corpus in pretraining (default 4)")
    command.add_argument("--steps", type=int, help="pretraining steps (default: as many as --epochs take)")
    command.add_argument(
        "--scratchpad",
        choices=["values", "steps"],
        help="what solvers' scratchpads show of a run: worked steps, each computing line with its values put in "
        "(steps, the default), or the variables' values line by line (values)",
    )
    command.add_argument(
        "--device",
        default="cpu",
        help="where pretraining and scoring run: cpu (the default; a seed gives the same weights on the same torch "
        "build and thread count) or cuda / cuda:N (minutes on a GPU, as the shipped model was pretrained; not "
        "bit-identical to a CPU build)",
    )
    command.add_argument("--quick", action="store_true", help="a small build in a minute, to check the pipeline")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from azr.base.build import BuildConfig, build

    config = BuildConfig(seed=args.seed)
    if args.quick:
        config.programs, config.heldout_programs, config.steps, config.eval_proposals = 300, 40, 20, 4
        config.layers, config.hidden_size, config.intermediate_size, config.vocab_size = 2, 64, 128, 512
    if args.programs is not None:
        config.programs = args.programs
    if args.steps is not None:
        config.steps = args.steps
    if args.epochs is not None:
        config.epochs = args.epochs
    if args.scratchpad is not None:
        config.scratchpad = args.scratchpad
    if config.programs < 10 or (args.steps is not None and args.steps < 1) or not 0 < config.epochs < 1e6:
        raise UsageError("--programs must be >= 10, --steps >= 1 and --epochs > 0 (and finite)")
    config.device = _device(args.device)
    if not -(2**63) <= args.seed < 2**63:
        raise UsageError("--seed must be a 64-bit integer")
    from azr.executor import ExecutorError

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {args.out}: cannot make the directory ({error.strerror})") from None
    try:
        build(out, config)
    except ExecutorError as error:
        raise UsageError(str(error)) from None
    print(f"model written to {args.out} (see {args.out}/MODEL_CARD.md)")
    return 0


def _device(name: str) -> str:
    from azr.config import is_device

    if not is_device(name, auto=False):
        raise UsageError(f"--device {name}: expected cpu, cuda or cuda:N")
    from azr.engine.policy import PolicyError, resolve_device

    try:
        resolve_device(name)
    except PolicyError:
        raise UsageError(f"--device {name}: torch sees no such CUDA device here; use --device cpu") from None
    return name
