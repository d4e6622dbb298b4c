"""Checkpoints: everything needed to resume a run exactly, written atomically, at any world size.

    checkpoints/step-N/model/             save_pretrained: loads in transformers as is
    checkpoints/step-N/shards/            the model's trained weights and the optimizer (DCP)
    checkpoints/step-N/trainer_state.pt   the step, the scheduler, rank 0's Python RNG state
    checkpoints/step-N/rng-<rank>.pt      each rank's torch RNG state
    checkpoints/step-N/checksums.json     size and sha256 of every file above, written last

A checkpoint is built in a temporary directory and renamed into place only when complete, so a
crash or SIGKILL mid-write leaves the previous checkpoints intact and no half-written one that
looks finished. With several ranks, every rank writes its shards into rank 0's temporary
directory; rank 0 alone exports the model, writes the checksums and renames. The last `keep` are
kept. What happens to it later (a truncated copy, a deleted file, a bad disk) the checksums catch:
`usable` returns the newest checkpoint that verifies. A checkpoint resumes at another world size
(azr.engine.state: DCP reshards).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from azr.disk import WriteRefused, resource_problem, sync_directory, unused_name
from azr.engine import state as training_state
from azr.engine.distributed import Stopped
from azr.engine.policy import Policy, PolicyError
from azr.run.rundir import fault_point
from azr.selfplay.update import Updater

_NAME = re.compile(r"^step-(\d+)$")
STATE_FILE = training_state.TRAINER
CHECKSUMS = "checksums.json"


def directory(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def complete(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints saved (renamed into place whole), oldest first; whether
    they are still intact is `verify`'s question."""
    found = []
    root = directory(run_dir)
    if root.is_dir():
        for entry in root.iterdir():
            match = _NAME.match(entry.name)
            if match and entry.is_dir():
                found.append((int(match.group(1)), entry))
    return sorted(found)


def usable(run_dir: Path) -> tuple[tuple[int, Path] | None, list[tuple[int, str]]]:
    """The newest checkpoint whose files verify, and (step, why) for each newer one skipped."""
    skipped = []
    for step, path in reversed(complete(run_dir)):
        problem = verify(path)
        if problem is None:
            return (step, path), skipped
        skipped.append((step, problem))
    return None, skipped


def save(run_dir: Path, step: int, policy: Policy, updater: Updater, keep: int) -> Path:
    """Write step `step`'s checkpoint and keep the newest `keep`; every rank calls it. On any
    failure (of any rank: each part is agreed, so no rank is left waiting in a collective) the
    half-written one is removed and the error raised on every rank (a WriteRefused when the disk
    refused a write): the older checkpoints are untouched."""
    world = policy.world
    root = directory(run_dir)
    final = root / f"step-{step}"
    temporary = root / f".tmp-step-{step}"
    try:
        temporary = world.broadcast(world.on_main(_temporary, root, step))
        training_state.save(temporary, policy, updater, {"step": step, "rng": {"python": random.getstate()}})
        training_state.export(temporary / "model", policy)
        world.on_main(_seal, temporary)
    except Exception as error:
        if isinstance(error, Stopped):  # another rank failed: rank 0 says why
            raise
        problem = resource_problem(error, temporary)  # asked before the space is given back
        if world.is_main:
            shutil.rmtree(temporary, ignore_errors=True)
        if problem is None:
            raise
        raise WriteRefused(problem.replace(str(temporary), str(final))) from error
    except BaseException:
        if world.is_main:
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    fault_point("checkpoint-written", step)
    world.on_main(_publish, run_dir, temporary, final, keep, step)
    return final


def _temporary(root: Path, step: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    temporary = root / f".tmp-step-{step}-{os.getpid()}"
    temporary.mkdir()
    return temporary


def _seal(temporary: Path) -> None:
    """Rank 0, once every rank's files are written: the checksums, and everything on disk."""
    _write_checksums(temporary)
    _sync(temporary)


def _publish(run_dir: Path, temporary: Path, final: Path, keep: int, step: int) -> None:
    """Rank 0: the checkpoint renamed into place, and the oldest beyond `keep` pruned."""
    root = temporary.parent
    if final.exists():  # a re-run of the same step after a resume: replace it
        shutil.rmtree(final)
    os.replace(temporary, final)
    sync_directory(root)
    fault_point("checkpoint-renamed", step)
    for _, old in complete(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def set_aside(run_dir: Path, step: int) -> Path | None:
    """Move a checkpoint that did not verify out of the way (it is no longer `complete`), where it
    can be looked at or deleted; returns where (None: it was not there)."""
    path = directory(run_dir) / f"step-{step}"
    if not path.exists():
        return None
    aside = unused_name(path.with_name(f"damaged-step-{step}"))
    os.rename(path, aside)
    return aside


def remove_unfinished(run_dir: Path) -> list[Path]:
    """Delete the temporary directories of saves a crash cut short; returns them."""
    root = directory(run_dir)
    stale = list(root.glob(".tmp-step-*")) if root.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def verify(path: Path) -> str | None:
    """None when every file listed in the checkpoint's checksums.json has its size and sha256;
    else what is wrong, first problem only. A file that cannot be read (permissions, an I/O
    error) raises its OSError: that says nothing about the checkpoint."""
    try:
        listed = json.loads((path / CHECKSUMS).read_bytes())["files"]
        entries = [(name, int(entry["bytes"]), str(entry["sha256"])) for name, entry in listed.items()]
    except FileNotFoundError:
        return f"{CHECKSUMS} is missing"
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        return f"{CHECKSUMS} is damaged ({type(error).__name__})"
    if not any(name == STATE_FILE for name, _, _ in entries):
        return f"{CHECKSUMS} does not list {STATE_FILE}"
    outside = [name for name, _, _ in entries if not (path / name).resolve().is_relative_to(path.resolve())]
    if outside:
        return f"{CHECKSUMS} names a file outside the checkpoint: {outside[0]}"
    for name, size, _ in entries:
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != size:
            return f"{name} has {file.stat().st_size} bytes, not {size}"
    digests = _sha256s([path / name for name, _, _ in entries])
    for (name, _, digest), found in zip(entries, digests, strict=True):
        if found != digest:
            return f"{name} does not match its checksum"
    return None


def load(path: Path, policy: Policy, updater: Updater) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG states, whatever the world size that saved
    them; returns rank 0's trainer state."""
    if not (path / training_state.SHARDS).is_dir():
        return _load_unsharded(path, policy, updater)
    trainer = training_state.load(path, policy, updater)
    random.setstate(trainer["rng"]["python"])
    return trainer


def _load_unsharded(path: Path, policy: Policy, updater: Updater) -> dict[str, Any]:
    """A checkpoint of azr 0.3 (the weights in model/, the optimizer's state by parameter number)."""
    if policy.world.sharded:
        raise PolicyError(f"{path} was written by azr 0.3, without shards: resume it in one process (plain azr train)")
    policy.load_weights(path / "model")
    state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
    updater.load_state_dict(state["updater"])
    random.setstate(state["rng"]["python"])
    torch.set_rng_state(state["rng"]["torch"])
    return state


def _write_checksums(path: Path) -> None:
    files = sorted(f for f in path.rglob("*") if f.is_file())
    listed = {str(f.relative_to(path)): {"bytes": f.stat().st_size, "sha256": digest}
              for f, digest in zip(files, _sha256s(files), strict=True)}  # fmt: skip
    (path / CHECKSUMS).write_text(json.dumps({"files": listed}, indent=1), encoding="utf-8")


def _sha256s(files: list[Path]) -> list[str]:
    """The files' sha256, several at once: hashlib releases the GIL, and a large model's weights
    come in shards (sha256 runs at about 0.8 GB/s a core)."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(_sha256, files))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _sync(path: Path) -> None:
    """fsync a directory tree's files and its directories, so a rename publishes data."""
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    for folder in [*(d for d in path.rglob("*") if d.is_dir()), path]:
        sync_directory(folder)
