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
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from azr.config import Config, ConfigError, as_dict
from azr.config.files import to_yaml
from azr.disk import WriteRefused, resource_problem, write_atomically
from azr.engine.distributed import requested_size
from azr.engine.generation import TransformersGenerator
from azr.engine.policy import Policy, PolicyError
from azr.executor import Executor, ExecutorConfig, ExecutorError
from azr.prompts import get_template
from azr.run import checkpoint, resume, rundir
from azr.run.console import Progress, StopOnSignal
from azr.run.rundir import Manifest, RunDirError
from azr.run.runlog import RunLog, read_metrics
from azr.run.seeding import seed_buffers
from azr.run.validation import Evaluator, eval_benches
from azr.selfplay.step import SelfPlay, selfplay_step
from azr.selfplay.update import Updater
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
    what was committed (the last checkpoint, the store up to it) is intact."""
    ranks = requested_size()
    if ranks > 1:  # the update is ready for several ranks (azr.engine.distributed); the step is not yet
        raise ConfigError(
            f"azr train on {ranks} ranks (torchrun --nproc_per_node > 1): self-play across ranks is not built yet; "
            "run one process (plain `azr train`)"
        )
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
            problem = resource_problem(error, run_dir)
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
    benches = eval_benches(config) if config.eval.every else None
    seed = config.train.seed
    random.seed(seed)
    torch.manual_seed(seed)
    s = config.selfplay
    stop = StopOnSignal()
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
        write_atomically(run_dir / "config.yaml", to_yaml(config))
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
        evaluate = Evaluator(play, executor, benches) if benches is not None else None
        if evaluate is not None and start.step == 0:
            runlog.step(0, evaluate(), [])  # the base model, before any update
        last = start.step
        with Progress(console, config.train.steps, start.step) as progress:
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
