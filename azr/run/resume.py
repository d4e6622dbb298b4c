"""What a rerun of `azr train` on a run directory starts from, and why it refuses when it cannot.

A run is what its manifest (run.json, azr/run/rundir.py) says it is: a config, a task store, and its
checkpoints. Rerunning the same command resumes from the newest checkpoint that verifies, with the
store cut back to that step. Everything that would make the resumed run differ from an unbroken
one is refused in one line that says what is missing and what to do, never a silent start from
nothing: a changed algorithm, a missing or foreign tasks.db, a store that lost commits (a deleted
-wal file), no checkpoint that verifies, trained state without a manifest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azr.config import Config, ConfigError, as_dict
from azr.config.files import from_yaml
from azr.run import checkpoint
from azr.run.rundir import MANIFEST, MUTABLE, Manifest, RunDirError, read_manifest
from azr.tasks.store import StoreError, TaskStore

log = logging.getLogger("azr.run.train")

_RESTORE = "restore it, or start over with --fresh (the old run is kept beside the new one)"


@dataclass(frozen=True)
class Start:
    """Where a run (re)starts."""

    manifest: Manifest | None
    """None: a new run (its manifest is written once the model has loaded)."""
    checkpoint: tuple[int, Path] | None
    """(step, path) of the checkpoint to load; None: from step 0."""
    skipped: tuple[tuple[int, str], ...] = ()
    """Newer checkpoints that did not verify, with why: a resume goes on without them."""

    @property
    def step(self) -> int:
        return self.checkpoint[0] if self.checkpoint is not None else 0


def plan(run_dir: Path, requested: Config) -> Start:
    """The start of a run in `run_dir` asked for with `requested`; a RunDirError or ConfigError
    (one line) when resuming it would not continue the run it holds."""
    manifest = read_manifest(run_dir)
    found = checkpoint.complete(run_dir)
    if manifest is None:
        if found or (run_dir / "metrics.jsonl").exists():
            raise RunDirError(
                f"{run_dir} holds checkpoints or metrics but no {MANIFEST} (deleted, or written by azr before "
                f"0.2): {_RESTORE}"
            )
        return Start(None, None)
    check_config(run_dir, manifest, requested)
    try:
        chosen, skipped = checkpoint.usable(run_dir)
    except OSError as error:  # unreadable is not damaged: nothing is skipped or moved
        raise RunDirError(f"cannot read {error.filename}: {error.strerror}; fix that and run again") from None
    on_disk = {step for step, _ in found}
    lost = [(step, f"missing, though {MANIFEST} lists it") for step in manifest.checkpoints if step not in on_disk]
    skipped = sorted([*skipped, *((s, why) for s, why in lost if chosen is None or s > chosen[0])], reverse=True)
    if chosen is None and (manifest.checkpoints or found):
        problems = "; ".join(f"step-{step}: {why}" for step, why in skipped)
        raise RunDirError(f"no checkpoint of {run_dir} is usable ({problems}): restore one, or start over with --fresh")
    return Start(manifest, chosen, tuple(skipped))


def check_config(run_dir: Path, manifest: Manifest, requested: Config) -> None:
    """Only `train.*` (but the seed) may differ from what the run started with. config.yaml, the
    copy to read, must say the same: a hand-edited one is refused rather than silently replaced."""
    changed = first_change(manifest.config, as_dict(requested))
    if changed is not None:
        name, before, after = changed
        raise ConfigError(
            f"{run_dir} was started with {name}={before!r}, not {after!r}; only train.* (but the seed) "
            "may change when resuming: use the same config, a new --run-dir, or --fresh to start over"
        )
    copy = run_dir / "config.yaml"
    if not copy.is_file():
        return  # rewritten from the config asked for
    try:
        edited = first_change(manifest.config, as_dict(from_yaml(copy.read_bytes())))
    except (ConfigError, OSError) as error:
        raise ConfigError(
            f"{copy} cannot be read ({error}): fix it, or remove it ({MANIFEST} holds the config)"
        ) from None
    if edited is not None:
        name, before, after = edited
        raise ConfigError(
            f"{copy} was edited ({name}={after!r}; the run started with {before!r}), but only train.* may change "
            f"on resume: restore it, or remove it ({MANIFEST} holds the config); to change it, start a new run"
        )


def first_change(saved: dict[str, Any], wanted: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first key outside `MUTABLE` (or train.seed) whose value differs: (name, saved, wanted)."""
    fixed = [(section, values) for section, values in saved.items() if section not in MUTABLE]
    pairs = [(f"{section}.{key}", value, wanted.get(section, {}).get(key, "(no such key)"))
             for section, values in fixed for key, value in values.items()]  # fmt: skip
    pairs.append(("train.seed", saved.get("train", {}).get("seed"), wanted.get("train", {}).get("seed")))
    return next(((name, before, after) for name, before, after in pairs if before != after), None)


def open_store(run_dir: Path, start: Start, max_tasks: int | None) -> TaskStore:
    """The run's task store, checked (read-only, so a refusal changes nothing) against the
    manifest. A new run creates it; a resume never does: a missing store is an error, not empty
    buffers."""
    path = run_dir / "tasks.db"
    if start.manifest is not None:
        if not path.is_file():
            raise RunDirError(f"{path} is missing: the run's task buffers are gone; {_RESTORE}")
        try:
            with TaskStore(path, readonly=True) as store:
                _check_store(store, start)
        except StoreError as error:
            raise RunDirError(f"{error}; {_RESTORE}") from None
    return TaskStore(path, max_tasks)


def _check_store(store: TaskStore, start: Start) -> None:
    assert start.manifest is not None
    problem = store.damage()
    if problem is not None:
        raise RunDirError(f"{store.path} is damaged ({problem}); {_RESTORE}")
    if store.identity != start.manifest.store_id:
        raise RunDirError(
            f"{store.path} is not this run's task store (its id is {store.identity}, {MANIFEST} names "
            f"{start.manifest.store_id}): {_RESTORE}"
        )
    if start.step and (store.step or 0) < start.step:
        raise RunDirError(
            f"{store.path} lost commits: it holds steps up to {store.step or 0}, the checkpoint is step {start.step} "
            f"(was its -wal file deleted, or not copied with it?): restore both, or start over with --fresh"
        )
