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
import os
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from azr.base import PROGRAM_KEYS
from azr.config import Config, ConfigError, as_dict
from azr.config.files import to_yaml
from azr.disk import WriteRefused, resource_problem, write_atomically
from azr.engine.distributed import Stopped, World, join, leave
from azr.engine.generation import make_generator
from azr.engine.policy import Policy, PolicyError
from azr.executor import Executor, ExecutorConfig, ExecutorError
from azr.prompts import template_for
from azr.run import checkpoint, resume, rundir
from azr.run.console import Progress, StopOnSignal
from azr.run.rundir import Manifest, RunDirError
from azr.run.runlog import RunLog, read_metrics
from azr.run.seeding import seed_buffers
from azr.run.validation import Evaluator, eval_benches
from azr.selfplay.step import SelfPlay, selfplay_step
from azr.selfplay.update import Updater
from azr.tasks.programs import read_program_keys
from azr.tasks.registry import family
from azr.tasks.store import StoreError, TaskStore
from azr.tasks.validate import ValidationConfig, Validator
from azr.tasks.verify import Verifier
from azr.userfiles import UserFileError, read_text

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
    what was committed (the last checkpoint, the store up to it) is intact.

    Under torchrun every rank calls this (azr.engine.distributed); rank 0 holds the lock, the
    store, the run log and the console, and an error on any rank stops every rank."""
    world = join()
    world.agree(lambda: _check_world(config, world))
    say = (console.print if console is not None else print) if world.is_main else _quiet
    if world.is_main and fresh and (aside := rundir.set_aside(run_dir)) is not None:
        say(f"--fresh: moved the previous run to {aside}")
    with rundir.RunLock(run_dir) if world.is_main else contextlib.nullcontext():
        try:
            outcome = _train(run_dir, config, say, console if world.is_main else None, world)
        except WriteRefused as error:
            problem: str | None = str(error)
        except (ConfigError, RunDirError, PolicyError, ExecutorError, StoreError, Stopped):
            raise
        except sqlite3.DatabaseError as error:
            if getattr(error, "sqlite_errorname", "") not in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
                raise
            raise RunDirError(
                f"{run_dir / 'tasks.db'} is damaged ({error}): restore it, or start over with --fresh"
            ) from None
        except Exception as error:
            problem = resource_problem(error, run_dir)
            if problem is None:
                raise
        else:
            leave()
            return outcome
        saved = checkpoint.complete(run_dir)
        then = f"resume from step {saved[-1][0]}" if saved else "start again"
        raise RunDirError(
            f"{problem}; what was committed is intact: free space (or fix the permissions), then run the "
            f"same command to {then}"
        )


def _check_world(config: Config, world: World) -> None:
    wanted = config.train.world_size
    if wanted and wanted != world.size:
        raise ConfigError(
            f"train.world_size={wanted} but this is {world.size} process(es): start it with torchrun --nproc_per_node "
            f"{wanted} (see the README, Scaling out), or set train.world_size={world.size} (0: any)"
        )


def _quiet(*_: object) -> None:
    """What ranks other than 0 say: nothing (rank 0 speaks for the run)."""


def _prepare(run_dir: Path, config: Config) -> tuple[resume.Start, list[tuple[str, Path | None]] | None]:
    """Rank 0's checks before the model loads: what an interrupted write left, where the run
    starts, the seed files and benchmarks it will read."""
    stray = rundir.remove_temporaries(run_dir) + checkpoint.remove_unfinished(run_dir)
    if stray:
        log.warning("removed what an interrupted write left: %s", ", ".join(str(p) for p in stray))
    start = resume.plan(run_dir, config)
    for entry in config.selfplay.seed_files:  # before minutes of model loading
        try:
            read_text(entry.split(":", 1)[1], "seed file")
        except UserFileError as error:
            raise ConfigError(f"selfplay.seed_files: {error}") from None
    return start, eval_benches(config) if config.eval.every else None


def _installed(config: Config) -> None:
    """What the task families need installed (math: math-verify), checked on every rank."""
    for name in config.selfplay.task_types:
        missing = family(name).require()
        if missing:
            raise ConfigError(f"selfplay.task_types: {missing}")


def _load(config: Config, seed: int, world: World) -> Policy:
    policy = Policy(config.model, seed, world)
    limit = config.generation.max_prompt_tokens + config.generation.max_new_tokens
    if policy.max_positions and limit > policy.max_positions:
        raise ConfigError(
            f"generation.max_prompt_tokens + max_new_tokens = {limit} exceeds the model's "
            f"{policy.max_positions} positions: lower them"
        )
    return policy


def _train(run_dir: Path, config: Config, say: Any, console: Any, world: World) -> Outcome:
    main = world.is_main
    start, benches = world.broadcast(world.on_main(_prepare, run_dir, config))
    world.agree(lambda: _installed(config))
    seed = config.train.seed
    random.seed(seed)
    torch.manual_seed(seed)
    s = config.selfplay
    stop = StopOnSignal(say=main)
    with contextlib.ExitStack() as resources:
        resources.callback(stop.restore)
        store = world.agree(
            lambda: resources.enter_context(resume.open_store(run_dir, start, s.max_tasks or None)) if main else None
        )
        policy = world.agree(lambda: _load(config, seed, world))
        manifest = world.on_main(_record_start, run_dir, config, start, store)
        updater = world.agree(lambda: Updater(policy, config.optim))
        if start.checkpoint is not None:
            world.agree(lambda: checkpoint.load(start.checkpoint[1], policy, updater))
            say(f"resuming {run_dir} from step {start.step}")
        runlog = world.on_main(_open_log, run_dir, config, start, store, say)
        if runlog is not None:
            resources.callback(runlog.close)
        executor = world.agree(lambda: resources.enter_context(Executor(_executor_config(config, world))))
        play = _selfplay(config, policy, updater, store, executor, world)  # generators start with collectives
        resources.callback(play.verifier.close)
        if hasattr(play.generator, "close"):  # an engine with processes or memory of its own
            resources.callback(play.generator.close)
        say(f"sandbox: {executor.describe()}" + (f" (on each of {world.size} ranks)" if world.size > 1 else ""))
        if start.step == 0:
            seed_buffers(play, say, stop)
            if world.max(stop.requested or 0):
                say("interrupted while seeding; run the same command to go on from there")
                return Outcome(0, world.max(stop.requested or 0))
        say(sizes(config))
        evaluate = Evaluator(play, executor, benches) if benches is not None else None
        if evaluate is not None and start.step == 0:
            metrics = evaluate()  # the base model, before any update
            world.on_main(lambda: runlog.step(0, metrics, []))
        last, stopping = start.step, 0
        with Progress(console, config.train.steps, start.step, quiet=not main) as progress:
            for step in range(start.step + 1, config.train.steps + 1):
                result = selfplay_step(play, step)
                if evaluate is not None and step % config.eval.every == 0:
                    result.metrics.update(evaluate())
                world.on_main(_log, runlog, store, step, result)
                last = step
                rundir.fault_point("step-logged", step)
                progress(step, result.metrics)
                stopping = world.max(stop.requested or 0)  # a signal that reached any rank stops them all
                if step % config.train.save_every == 0 or step == config.train.steps or stopping:
                    checkpoint.save(run_dir, step, policy, updater, config.train.keep_checkpoints)
                    manifest = world.on_main(_record_checkpoint, run_dir, store, manifest, step) or manifest
                if stopping:
                    say(f"interrupted: saved step {step}; run the same command to resume")
                    break
    if last > 0 and main:
        from azr.report.summary import summary

        say(summary(read_metrics(run_dir)))
    return Outcome(last, stopping or None)


def _open_log(run_dir: Path, config: Config, start: resume.Start, store: TaskStore, say: Any) -> RunLog:
    """Rank 0: the store cut back to the checkpoint, and the run log from there."""
    removed = store.truncate_after(start.step)
    if removed:
        say(f"dropped {removed} tasks added after step {start.step}, which the checkpoint did not see")
    return RunLog(run_dir, start.step, config.train.tensorboard, config.train.wandb_project, as_dict(config))


def _log(runlog: RunLog, store: TaskStore, step: int, result: Any) -> None:
    """Rank 0: the step's lines, then its commit in the store."""
    runlog.step(step, result.metrics, result.samples)
    store.commit_step(step)


def _record_checkpoint(run_dir: Path, store: TaskStore, manifest: Manifest, step: int) -> Manifest:
    """Rank 0, after a save: evicted tasks no checkpoint needs are forgotten, the manifest updated."""
    kept = tuple(found for found, _ in checkpoint.complete(run_dir))
    store.forget_evicted(kept[0])
    rundir.fault_point("checkpoint-pruned", step)
    manifest = dataclasses.replace(manifest, step=step, checkpoints=kept)
    rundir.write_manifest(run_dir, manifest)
    return manifest


def _record_start(run_dir: Path, config: Config, start: resume.Start, store: TaskStore) -> Manifest:
    """Rank 0, once the model has loaded: the resolved config, the unusable checkpoints set aside,
    and the manifest as it stands (what a crash between a save and its manifest left out)."""
    write_atomically(run_dir / "config.yaml", to_yaml(config))
    for step, why in start.skipped:  # out of the way of the step's next save
        aside = checkpoint.set_aside(run_dir, step)
        moved = f"moved to {aside}" if aside else "gone"
        log.warning("checkpoint step-%d is not usable (%s): %s; resuming from step %d", step, why, moved, start.step)
    manifest = start.manifest or Manifest(as_dict(config), store.identity or "", 0, ())
    kept = tuple(step for step, _ in checkpoint.complete(run_dir))
    manifest = dataclasses.replace(manifest, step=start.step, checkpoints=kept)
    rundir.write_manifest(run_dir, manifest)
    return manifest


def _executor_config(config: Config, world: World) -> ExecutorConfig:
    """The sandbox of this rank: by default the machine's cores shared among its ranks."""
    settings = dataclasses.asdict(config.executor)
    if not settings["workers"]:
        settings["workers"] = max(1, len(os.sched_getaffinity(0)) // world.local_size)
    return ExecutorConfig(**settings)


def _program_keys(config: Config, policy: Policy) -> frozenset[str]:
    """The model's pretraining programs' keys, if its directory ships them (azr.base.build)."""
    path = Path(policy.path) / PROGRAM_KEYS
    if path.is_file():
        return read_program_keys(path)
    if config.selfplay.reject_copies:
        raise ConfigError(
            f"selfplay.reject_copies: {policy.path} has no {PROGRAM_KEYS} (the keys of the programs the model was "
            "pretrained on, which the embedded model ships); set selfplay.reject_copies=false"
        )
    return frozenset()


def _selfplay(
    config: Config, policy: Policy, updater: Updater, store: TaskStore | None, executor: Executor, world: World
) -> SelfPlay:
    s = config.selfplay
    validation = ValidationConfig(
        induction_inputs=s.induction_inputs,
        hash_seeds=tuple(s.hash_seeds),  # type: ignore[arg-type]
        shift_clock=s.shift_clock,
        policy=s.runtime_policy,
        known_programs=_program_keys(config, policy),
        reject_copies=s.reject_copies,
    )
    template = template_for(s.template, policy.tokenizer, n_inputs=s.induction_inputs)
    added = policy.tokenizer.get_added_vocab()
    markers = {t: template.answer_marker(t) for t in s.task_types}
    return SelfPlay(
        config,
        make_generator(policy, config.generation),
        template,
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
        answer_markers={t: added[m] for t, m in markers.items() if m is not None and m in added},
        world=world,
    )
