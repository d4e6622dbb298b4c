"""`azr eval`: pass@k of a model, or of a file of completions, on named benchmarks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from azr.cli import UsageError, add_command, add_executor_options, executor_from


def register(commands: Any) -> None:
    from azr.eval.benchmarks import SPECS

    names = "\n".join(f"  {spec.name:<15} {spec.about}" for spec in SPECS.values())
    command = add_command(
        commands,
        "eval",
        help="evaluate a model (or completions) on benchmarks: pass@k and per-task verdicts",
        description="Evaluate a model on benchmarks, generating with the training template and scoring in the "
        "sandbox, or score a file of completions made elsewhere (--completions). Writes to --out, per "
        'benchmark, {"pass@k", "n"} per task type (or for the benchmark), per-task verdicts, and the model, '
        "template, sampling and seed. Default: the embedded model on its held-out tasks, greedy.\n\n"
        f"benchmarks (NAME, or NAME=FILE for a local copy in the published format):\n{names}\n"
        "  FILE            any tasks file in the seed format",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--model", default="embedded", help="a model directory or hub id (default: embedded)")
    command.add_argument(
        "--config",
        metavar="FILE",
        help="a run's config.yaml (or a preset): evaluate with its template, chat setting, equality, sandbox limits "
        "and model dtype, as training did; options given here still win",
    )
    command.add_argument("--bench", default="heldout", metavar="NAME[=FILE],...", help="(default: heldout)")
    command.add_argument("--completions", metavar="FILE.jsonl", help='score {"task_id", "completion"} lines; no model')
    command.add_argument("--task-types", default="deduction,abduction,induction", help="of heldout and seed files")
    command.add_argument("--out", required=True, metavar="RESULT.json")
    command.add_argument(
        "--template",
        choices=["auto", "azr", "compact"],
        default="auto",
        help="auto: compact for models whose tokenizer has its markers (the embedded one), else azr",
    )
    command.add_argument("--chat", action="store_true", help="wrap prompts in the tokenizer's chat template")
    command.add_argument("--samples", type=int, default=1, help="answers per problem (pass@1 is their mean)")
    command.add_argument("--k", default="1", help="comma-separated k of pass@k, each <= --samples (default: 1)")
    command.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default)")
    command.add_argument("--max-new-tokens", type=int, help="(default: 192 for reasoning tasks, 512 for code, math)")
    command.add_argument(
        "--limit", type=int, help="the first N problems of each benchmark (of each kind for seed files)"
    )
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--device", default="auto")
    add_executor_options(command)
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from azr.eval.benchmarks import BenchmarkError, load, parse_benchmarks
    from azr.eval.harness import judge, write_result
    from azr.executor import ExecutorError
    from azr.tasks.verify import Verifier

    task_types, ks = _check(args)
    run_config = _run_config(args.config) if args.config else None
    try:
        benches = parse_benchmarks(args.bench)
    except BenchmarkError as error:
        raise UsageError(f"--bench: {error}") from None
    if args.completions and len(benches) != 1:
        raise UsageError("--completions scores one benchmark: give one --bench")
    external = _read_completions(args.completions) if args.completions else None
    results: dict[str, Any] = {}
    model = None
    try:
        with executor_from(args, run_config.executor if run_config else None) as executor:
            benchmarks = [load(name, path, executor, task_types, args.limit, args.seed) for name, path in benches]
            for benchmark in benchmarks:
                if not benchmark.problems:
                    raise UsageError(f"{benchmark.name}: no problem to evaluate ({benchmark.reasons})")
            model = None if external is not None else _Model(args, run_config)
            verifier = Verifier(executor, run_config.selfplay.equality if run_config else "strict")
            for benchmark in benchmarks:
                if model is not None:
                    completions, template = model.complete(benchmark), model.template
                else:
                    completions, template = _match(benchmark, external, ks), None  # type: ignore[arg-type]
                results[benchmark.name] = judge(benchmark, completions, template, verifier, ks)
                _print(benchmark.name, results[benchmark.name], ks)
    except (BenchmarkError, ExecutorError) as error:
        raise UsageError(str(error)) from None
    sampling: dict[str, Any] = {"k": ks}
    if model is not None:
        tokens = {b.name: model.max_new_tokens(b.kind) for b in benchmarks}
        sampling |= {"samples": args.samples, "temperature": args.temperature, "max_new_tokens": tokens}
    write_result(
        Path(args.out),
        {
            "model": args.model if model is not None else None,
            "completions": args.completions,
            "template": model.template.name if model is not None else None,
            "chat": args.chat,
            "sampling": sampling,
            "seed": args.seed,
            "benchmarks": results,
        },
    )
    return 0


def _check(args: argparse.Namespace) -> tuple[list[Any], list[int]]:
    from azr.config import is_device
    from azr.tasks.registry import PAPER

    task_types = [name.strip() for name in args.task_types.split(",") if name.strip()]
    if not set(task_types) <= set(PAPER):
        raise UsageError(f"--task-types: choose from {', '.join(PAPER)}")
    if args.samples < 1 or args.temperature < 0 or (args.max_new_tokens is not None and args.max_new_tokens < 1):
        raise UsageError("--samples and --max-new-tokens must be >= 1, --temperature >= 0")
    try:
        ks = sorted({int(k) for k in args.k.split(",") if k.strip()})
    except ValueError:
        raise UsageError(f"--k {args.k!r}: give comma-separated integers, e.g. --k 1,5,10") from None
    if not ks or ks[0] < 1 or (not args.completions and ks[-1] > args.samples):
        raise UsageError(f"--k: each k must be between 1 and --samples ({args.samples}); raise --samples for pass@k")
    if args.samples > 1 and args.temperature == 0 and not args.completions:
        raise UsageError("several --samples need a --temperature above 0 (greedy answers are all the same)")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be >= 1")
    if not -(2**63) <= args.seed < 2**63:
        raise UsageError("--seed must be a 64-bit integer")
    if not is_device(args.device):
        raise UsageError(f"--device {args.device!r}: give auto, cpu, cuda or cuda:N")
    out = Path(args.out)
    if out.is_dir() or not _writable(out.parent):
        raise UsageError(f"--out {args.out}: give a file path in a writable directory")
    return task_types, ks


class _Model:
    """The model under evaluation, its template and sampling settings."""

    def __init__(self, args: argparse.Namespace, run: Any = None) -> None:
        from azr.config import Config
        from azr.engine.generation import make_generator
        from azr.engine.policy import Policy, PolicyError
        from azr.prompts import template_for

        config = Config()
        config.model.path, config.model.device = args.model, args.device
        if run is not None:  # the run's dtype, template and chat setting; not its LoRA (--model is what to load)
            config.model.dtype = run.model.dtype
            config.selfplay.induction_inputs = run.selfplay.induction_inputs
            args.template = run.selfplay.template if args.template == "auto" else args.template
            args.chat = args.chat or run.model.chat_template
        try:
            policy = Policy(config.model, args.seed)
        except PolicyError as error:
            raise UsageError(str(error)) from None
        self.generator = make_generator(policy, config.generation)
        template = args.template
        if template == "auto":
            from azr.prompts.compact import MARKERS, THINK

            # the markers every compact model has (`<T>` came later: a model without it does not think)
            template = "compact" if set(MARKERS) - {THINK} <= set(policy.tokenizer.get_added_vocab()) else "azr"
        if args.chat and template == "compact":
            raise UsageError("--chat: the compact template has no chat form (it is for the embedded model)")
        if args.chat and not getattr(policy.tokenizer, "chat_template", None):
            raise UsageError(f"--chat: the tokenizer of {args.model} has no chat template")
        self.template = template_for(template, policy.tokenizer, n_inputs=config.selfplay.induction_inputs)
        self.chat = policy.tokenizer if args.chat else None
        self.args = args

    def max_new_tokens(self, kind: str) -> int:
        """--max-new-tokens, else by kind: an output or an input is short, a program or a derivation not."""
        return self.args.max_new_tokens or (192 if kind == "reasoning" else 512)

    def complete(self, benchmark: Any) -> list[list[str]]:
        from azr.engine.generation import Sampling
        from azr.eval.harness import generate

        args = self.args
        sampling = Sampling(args.temperature, 1.0, self.max_new_tokens(benchmark.kind))
        return generate(self.generator, self.template, benchmark, args.samples, sampling, args.seed, self.chat)


def _run_config(path: str) -> Any:
    """The config a run trained with (its config.yaml, or any config file or preset); one line if it is bad."""
    from azr.config import ConfigError
    from azr.config.files import load

    try:
        return load(path)
    except ConfigError as error:
        raise UsageError(f"--config: {error}") from None


def _read_completions(path: str) -> dict[str, list[str]]:
    """task_id -> its completions, in file order (`completion`, or EvalPlus's `solution`)."""
    from azr.cli import json_lines, open_input

    found: dict[str, list[str]] = {}
    with open_input(path) as lines:
        for number, row, problem in json_lines(lines):
            text = row.get("completion", row.get("solution")) if isinstance(row, dict) else None
            if problem or not isinstance(text, str) or "task_id" not in row:
                shown = problem or json.dumps(row)[:80]
                raise UsageError(f'{path}: line {number}: expected {{"task_id", "completion"}} ({shown})')
            found.setdefault(str(row["task_id"]), []).append(text)
    if not found:
        raise UsageError(f"{path}: no completions")
    return found


def _match(benchmark: Any, external: dict[str, list[str]], ks: list[int]) -> list[list[str]]:
    """The completions of each problem; problems without any are dropped (and counted)."""
    ids = [problem.task_id for problem in benchmark.problems]
    if len(set(ids)) < len(ids):  # a triplet asked both ways: one answer cannot serve both
        raise UsageError(
            f"{benchmark.name} asks some tasks more than one way: score one direction at a time "
            "(cruxeval-o, cruxeval-i; one --task-types for seed files)"
        )
    kept, completions = [], []
    for problem in benchmark.problems:
        texts = external.get(problem.task_id)
        if texts is None:
            benchmark.skip("no completion for the task")
            continue
        if len(texts) < ks[-1]:
            raise UsageError(f"--k {ks[-1]}: task {problem.task_id} has only {len(texts)} completions")
        kept.append(problem)
        completions.append(texts)
    if not kept:
        raise UsageError(f"no task_id of the completions is in {benchmark.name} (e.g. {next(iter(external))!r})")
    benchmark.problems = kept
    return completions


def _print(label: str, result: dict[str, Any], ks: list[int]) -> None:
    skipped = (
        f", {result['skipped_rows']} skipped: {json.dumps(result['skip_reasons'])}" if result["skipped_rows"] else ""
    )
    print(f"{label} ({result['source']}{skipped})", file=sys.stderr)
    for name, numbers in result["results"].items():
        scores = "  ".join(f"pass@{k} {numbers[f'pass@{k}']:.3f}" for k in ks)
        print(f"  {name:<15} {scores}  (n={numbers['n']})", file=sys.stderr)


def _writable(directory: Path) -> bool:
    """The directory exists (or can be made) and we may write in it."""
    import os

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)
