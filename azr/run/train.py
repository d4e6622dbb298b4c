"""`azr train`: set up a run directory, seed the buffers, run self-play steps, checkpoint, resume.

The run directory is a contract (README, "The run directory"):

    config.yaml      the resolved config          metrics.jsonl   one JSON object per step
    tasks.db         the task store (SQLite)      samples.jsonl   proposals and answers to read
    tensorboard/     event files                  checkpoints/    step-N/{model/, trainer_state.pt,
    run.json         the manifest (azr/run/rundir.py)                     checksums.json}

Running the same command on the same directory resumes from the newest checkpoint that verifies
(azr/run/resume.py checks the rerun against the manifest): the weights, optimizer and scheduler come
back, the task buffers are cut back to what they were at that step, and the log lines of steps
the crash lost are dropped, to be written again. Ctrl-C (or SIGTERM) finishes the current step,
saves, and exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from azr.config import Config, ConfigError, as_dict, to_yaml
from azr.engine import checkpoint
from azr.engine.generation import Sampling, TransformersGenerator
from azr.engine.policy import Policy, PolicyError
from azr.executor import Executor, ExecutorConfig, ExecutorError
from azr.prompts import get_template
from azr.run import resume, rundir
from azr.run.rundir import Manifest, RunDirError, WriteRefused
from azr.run.runlog import RunLog, read_metrics
from azr.selfplay.propose import propose
from azr.selfplay.step import SelfPlay, selfplay_step, stage_seed
from azr.selfplay.update import Updater
from azr.tasks.registry import family
from azr.tasks.seeds import identity_proposals, read_rows
from azr.tasks.store import StoreError, TaskStore
from azr.tasks.validate import ValidationConfig, Validator, rejection_counts
from azr.tasks.verify import Verifier
from azr.userfiles import UserFileError, read_text, split_lines

log = logging.getLogger("azr.run.train")


def sizes(config: Config) -> str:
    """What one step costs, printed before step 1."""
    s, g = config.selfplay, config.generation
    types = len(s.task_types)
    proposer = s.batch_size * types
    learnability = proposer * s.n_mc
    solver = s.batch_size * types
    inputs_per_proposal = s.induction_inputs if "induction" in s.task_types else 1
    executor = 2 * proposer * inputs_per_proposal + learnability * inputs_per_proposal // 2 + solver * 2
    tokens = (proposer + learnability + solver) * (g.max_new_tokens + g.max_prompt_tokens // 4)
    trained = proposer + solver + (learnability if s.reuse_rollouts else 0)
    return (
        f"per step: {proposer} proposals + up to {learnability} learnability rollouts + {solver} solver "
        f"answers generated; {trained} sequences trained on; up to ~{executor} sandboxed runs; "
        f"up to ~{tokens:,} tokens through the model"
    )


@dataclass(frozen=True)
class Outcome:
    step: int
    """The last step completed (and saved)."""
    interrupted_by: int | None = None
    """The signal (SIGINT, SIGTERM) that stopped the run after a clean save; None: it finished."""


def train(run_dir: Path, config: Config, console: Any = None, fresh: bool = False) -> Outcome:
    """Run (or resume) training in `run_dir`, as its only writer. `fresh` first moves what the
    directory holds aside. A full or read-only disk is a RunDirError saying where and how to go on:
    what was committed (the last checkpoint, the store up to it) is intact."""
    say = console.print if console is not None else print
    if fresh and (aside := rundir.set_aside(run_dir)) is not None:
        say(f"--fresh: moved the previous run to {aside}")
    with rundir.RunLock(run_dir):
        try:
            return _train(run_dir, config, say, console)
        except WriteRefused as error:
            problem: str | None = str(error)
        except (ConfigError, RunDirError, PolicyError, ExecutorError, StoreError):
            raise
        except sqlite3.DatabaseError as error:
            if getattr(error, "sqlite_errorname", "") not in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
                raise
            raise RunDirError(
                f"{run_dir / 'tasks.db'} is damaged ({error}): restore it, or start over with --fresh"
            ) from None
        except Exception as error:
            problem = rundir.resource_problem(error, run_dir)
            if problem is None:
                raise
        saved = checkpoint.complete(run_dir)
        then = f"resume from step {saved[-1][0]}" if saved else "start again"
        raise RunDirError(
            f"{problem}; what was committed is intact: free space (or fix the permissions), then run the "
            f"same command to {then}"
        )


def _train(run_dir: Path, config: Config, say: Any, console: Any) -> Outcome:
    stray = rundir.remove_temporaries(run_dir) + checkpoint.remove_unfinished(run_dir)
    if stray:
        log.warning("removed what an interrupted write left: %s", ", ".join(str(p) for p in stray))
    start = resume.plan(run_dir, config)
    for entry in config.selfplay.seed_files:  # before minutes of model loading
        try:
            read_text(entry.split(":", 1)[1], "seed file")
        except UserFileError as error:
            raise ConfigError(f"selfplay.seed_files: {error}") from None
    for name in config.selfplay.task_types:  # what a family needs installed (math: math-verify)
        missing = family(name).require()
        if missing:
            raise ConfigError(f"selfplay.task_types: {missing}")
    benches = _eval_benches(config) if config.eval.every else None
    seed = config.train.seed
    random.seed(seed)
    torch.manual_seed(seed)
    s = config.selfplay
    stop = _StopOnSignal()
    with contextlib.ExitStack() as resources:
        resources.callback(stop.restore)
        store = resources.enter_context(resume.open_store(run_dir, start, s.max_tasks or None))
        policy = Policy(config.model, seed)
        limit = config.generation.max_prompt_tokens + config.generation.max_new_tokens
        if policy.max_positions and limit > policy.max_positions:
            raise ConfigError(
                f"generation.max_prompt_tokens + max_new_tokens = {limit} exceeds the model's "
                f"{policy.max_positions} positions: lower them"
            )
        rundir.write_atomically(run_dir / "config.yaml", to_yaml(config))
        for step, why in start.skipped:  # out of the way of the step's next save
            aside = checkpoint.set_aside(run_dir, step)
            moved = f"moved to {aside}" if aside else "gone"
            log.warning(
                "checkpoint step-%d is not usable (%s): %s; resuming from step %d", step, why, moved, start.step
            )
        manifest = start.manifest or Manifest(as_dict(config), store.identity or "", 0, ())
        kept = tuple(step for step, _ in checkpoint.complete(run_dir))
        manifest = dataclasses.replace(manifest, step=start.step, checkpoints=kept)
        rundir.write_manifest(run_dir, manifest)  # what a crash between save and manifest left out
        updater = Updater(policy, config.optim)
        if start.checkpoint is not None:
            checkpoint.load(start.checkpoint[1], policy, updater)
            say(f"resuming {run_dir} from step {start.step}")
        removed = store.truncate_after(start.step)
        if removed:
            say(f"dropped {removed} tasks added after step {start.step}, which the checkpoint did not see")
        runlog = RunLog(run_dir, start.step, config.train.tensorboard, config.train.wandb_project, as_dict(config))
        resources.callback(runlog.close)
        executor = resources.enter_context(Executor(ExecutorConfig(**dataclasses.asdict(config.executor))))
        play = _selfplay(config, policy, updater, store, executor)
        resources.callback(play.verifier.close)
        say(f"sandbox: {executor.describe()}")
        if start.step == 0:
            seed_buffers(play, say, stop)
            if stop.requested:
                say("interrupted while seeding; run the same command to go on from there")
                return Outcome(0, stop.requested)
        say(sizes(config))
        evaluate = _Evaluator(play, executor, benches) if benches is not None else None
        if evaluate is not None and start.step == 0:
            runlog.step(0, evaluate(), [])  # the base model, before any update
        last = start.step
        with _progress(console, config.train.steps, start.step) as progress:
            for step in range(start.step + 1, config.train.steps + 1):
                result = selfplay_step(play, step)
                if evaluate is not None and step % config.eval.every == 0:
                    result.metrics.update(evaluate())
                runlog.step(step, result.metrics, result.samples)
                store.commit_step(step)
                last = step
                rundir.fault_point("step-logged", step)
                progress(step, result.metrics)
                if step % config.train.save_every == 0 or step == config.train.steps or stop.requested:
                    checkpoint.save(run_dir, step, policy, updater, config.train.keep_checkpoints)
                    kept = tuple(found for found, _ in checkpoint.complete(run_dir))
                    store.forget_evicted(kept[0])
                    rundir.fault_point("checkpoint-pruned", step)
                    manifest = dataclasses.replace(manifest, step=step, checkpoints=kept)
                    rundir.write_manifest(run_dir, manifest)
                if stop.requested:
                    say(f"interrupted: saved step {step}; run the same command to resume")
                    break
    if last > 0:
        from azr.report.summary import summary

        say(summary(read_metrics(run_dir)))
    return Outcome(last, stop.requested)


def _selfplay(config: Config, policy: Policy, updater: Updater, store: TaskStore, executor: Executor) -> SelfPlay:
    s = config.selfplay
    validation = ValidationConfig(
        induction_inputs=s.induction_inputs,
        hash_seeds=tuple(s.hash_seeds),  # type: ignore[arg-type]
        shift_clock=s.shift_clock,
        policy=s.runtime_policy,
    )
    return SelfPlay(
        config,
        TransformersGenerator(policy, config.generation),
        get_template(s.template, n_inputs=s.induction_inputs),
        store,
        Validator(executor, validation, seed=config.train.seed),
        Verifier(
            executor,
            s.equality,
            validation.filter,
            hash_seed=s.hash_seeds[0],
            policy=s.runtime_policy,
            clock=1 if s.shift_clock else 0,
        ),
        updater,
        chat=policy.tokenizer if config.model.chat_template else None,
    )


def seed_buffers(play: SelfPlay, say: Any, stop: Any = None) -> None:
    """Before step 1 (AZR.md section 6): seed files when configured; else the identity triplet,
    then the model's own proposals until each buffer holds seed_factor x B tasks. Each round is
    committed with its number, so a run stopped while seeding goes on where it was, with the same
    draws; a finished seeding is not repeated."""
    s = play.config.selfplay
    validator, store = play.validator, play.store
    if store.meta("seeding") == "done":
        return
    if s.seed_files:
        for entry in s.seed_files:
            task_type, path = entry.split(":", 1)
            proposals = list(read_rows(split_lines(read_text(path, "seed file")), task_type))
            validations = validator.validate(proposals, step=0, source=f"seed:{Path(path).name}")
            added = store.add([v.task for v in validations if v.task is not None])
            say(f"seeded {sum(added)} {task_type} tasks from {path} ({rejection_counts(validations)})")
        store.add([], meta={"seeding": "done"})
        return
    store.add([v.task for v in validator.validate(identity_proposals(), step=0, source="identity") if v.task])
    target = s.seed_factor * s.batch_size
    first = int(store.meta("seeding_rounds") or 0)
    for round_ in range(first, s.max_seed_rounds):
        short = [t for t in play.task_types if store.count(t) < target]
        if not short or (stop is not None and stop.requested):
            break
        seed = stage_seed(play.config.train.seed, "seeding", round_)
        proposed = propose(
            play.generator, play.template, store, short, s.batch_size, s.references, play.sampling(),
            random.Random(seed), stage_seed(play.config.train.seed, "seeding", round_, "propose"), play.chat,
        )  # fmt: skip
        validations = validator.validate([p.proposal for p in proposed], step=0, source="seeding")
        store.add([v.task for v in validations if v.task is not None], meta={"seeding_rounds": str(round_ + 1)})
    counts = {t: store.count(t) for t in play.task_types}
    if stop is None or not stop.requested:
        store.add([], meta={"seeding": "done"})
    if any(n < target for n in counts.values()):
        log.warning(
            "seeding stopped after %d rounds short of %d tasks per buffer: %s. Training goes on; a buffer "
            "that is empty skips its solver batch until the model proposes valid tasks of that type.",
            s.max_seed_rounds, target, counts,
        )  # fmt: skip
    say(f"buffers: {counts}")


def _eval_benches(config: Config) -> list[tuple[str, Path | None]]:
    """eval.bench as (name, file) pairs, checked before the model loads."""
    import importlib.util

    from azr.base import heldout_path
    from azr.eval.benchmarks import SPECS, BenchmarkError, parse_benchmarks

    try:
        benches = parse_benchmarks(config.eval.bench or "heldout")
    except BenchmarkError as error:
        raise ConfigError(f"eval.bench: {error}") from None
    if sum(name in ("heldout", "file") for name, _ in benches) > 1:
        raise ConfigError("eval.bench: at most one of heldout and seed files (each logs as eval/<type>/pass@1)")
    for name, path in benches:
        if name != "file" and SPECS[name].kind != "reasoning":
            raise ConfigError(
                f"eval.bench: {name} is not a reasoning benchmark; training validates on heldout, cruxeval*"
            )
        if path is not None and not path.exists():
            raise ConfigError(f"eval.bench: no file {path}")
        if path is not None and path.suffix != ".gz":  # read now, not after minutes of model loading
            try:
                read_text(path, "benchmark file")
            except UserFileError as error:
                raise ConfigError(f"eval.bench: {error}") from None
        if name == "heldout" and path is None and heldout_path() is None:
            raise ConfigError("eval.bench: the embedded held-out set is not installed; give heldout=FILE")
        if name not in ("heldout", "file") and path is None and importlib.util.find_spec("datasets") is None:
            raise ConfigError(f"eval.bench: give {name}=FILE (or pip install datasets to fetch it from the hub)")
    return benches


class _Evaluator:
    """Greedy pass@1 on fixed reasoning benchmarks (the held-out tasks by default; CRUXEval when
    configured), loaded and checked once. The held-out set and seed files log as
    eval/<type>/pass@1, a named benchmark as eval/<name>/<type>/pass@1."""

    def __init__(self, play: SelfPlay, executor: Executor, benches: list[tuple[str, Path | None]]) -> None:
        from azr.eval.benchmarks import BenchmarkError, load

        config = play.config.eval
        types = list(config.task_types)
        self.benchmarks = []
        for name, path in benches:
            try:
                benchmark = load(name, path, executor, types, config.limit, play.config.train.seed)
            except BenchmarkError as error:
                raise ConfigError(f"eval.bench: {error}") from None
            benchmark.problems = [p for p in benchmark.problems if p.task.task_type in types]
            if not benchmark.problems:
                raise ConfigError(f"eval.bench: no task of eval.task_types in {name} ({benchmark.reasons})")
            prefix = "eval/" if name in ("heldout", "file") else f"eval/{name}/"
            self.benchmarks.append((prefix, benchmark))
        self.play = play
        self.sampling = Sampling(0.0, 1.0, config.max_new_tokens, play.template.stop)

    def __call__(self) -> dict[str, float]:
        from azr.eval.harness import generate, judge

        started = time.perf_counter()
        metrics = {}
        play = self.play
        for prefix, benchmark in self.benchmarks:
            completions = generate(play.generator, play.template, benchmark, 1, self.sampling, 0, play.chat)
            result = judge(benchmark, completions, play.template, play.verifier, [1])
            metrics.update({f"{prefix}{name}/pass@1": numbers["pass@1"] for name, numbers in result["results"].items()})
        metrics["time/eval"] = time.perf_counter() - started
        return metrics


class _StopOnSignal:
    """The first Ctrl-C (or SIGTERM) asks the loop to stop after the current step; the second
    stops at once."""

    def __init__(self) -> None:
        self.requested: int | None = None
        """The signal that asked to stop; None until one does."""
        self._previous = {}
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no handler
                self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number: int, frame: Any) -> None:
        if self.requested:
            print("\nazr: stopped; the last checkpoint stands (run the same command to resume)", file=sys.stderr)
            if number == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + number)  # the shell's code for the signal, as for the first one
        self.requested = number
        print("\nazr: finishing this step, then saving (Ctrl-C again to stop now)", file=sys.stderr)

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class _progress:
    """A rich progress bar with the step's key numbers; plain lines without a console."""

    def __init__(self, console: Any, total: int, start: int) -> None:
        self.console, self.total, self.start = console, total, start

    def __enter__(self) -> Any:
        if self.console is None:
            return lambda step, metrics: print(f"step {step}/{self.total} {_summary(metrics)}", flush=True)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(), TimeRemainingColumn(),
            TextColumn("{task.description}"), console=self.console,
        )  # fmt: skip
        self.bar.start()
        task = self.bar.add_task("", total=self.total, completed=self.start)

        def update(step: int, metrics: dict[str, float]) -> None:
            self.bar.update(task, completed=step, description=_summary(metrics))

        return update

    def __exit__(self, *_: object) -> None:
        if self.console is not None:
            self.bar.stop()


def _summary(metrics: dict[str, float]) -> str:
    def mean(prefix: str, suffix: str) -> float | None:
        values = [v for k, v in metrics.items() if k.startswith(prefix) and k.endswith(suffix) and v is not None]
        return sum(values) / len(values) if values else None

    parts = []
    valid = mean("propose/", "/valid_rate")
    accuracy = mean("solve/", "/accuracy")
    if valid is not None:
        parts.append(f"valid {valid:.2f}")
    if accuracy is not None:
        parts.append(f"solved {accuracy:.2f}")
    parts.append(f"{metrics.get('time/step', 0):.1f}s/step")
    return "  ".join(parts)
