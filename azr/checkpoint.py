"""Checkpoints: everything needed to resume a run exactly, written atomically.

    checkpoints/step-N/model/             save_pretrained: loads in transformers as is
    checkpoints/step-N/trainer_state.pt   optimizer, scheduler, RNG states, the step

A checkpoint is built in a temporary directory and renamed into place only when complete, so a
crash or SIGKILL mid-write leaves the previous checkpoints intact and no half-written one that
looks finished. The last `keep` are kept.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from azr.policy import Policy
from azr.update import Updater

_NAME = re.compile(r"^step-(\d+)$")
STATE_FILE = "trainer_state.pt"


def directory(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def complete(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints, oldest first."""
    found = []
    root = directory(run_dir)
    if root.is_dir():
        for entry in root.iterdir():
            match = _NAME.match(entry.name)
            if match and (entry / STATE_FILE).exists():
                found.append((int(match.group(1)), entry))
    return sorted(found)


def latest(run_dir: Path) -> tuple[int, Path] | None:
    found = complete(run_dir)
    return found[-1] if found else None


def save(run_dir: Path, step: int, policy: Policy, updater: Updater, keep: int) -> Path:
    root = directory(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    for stale in root.glob(".tmp-step-*"):  # left by a crash mid-save
        shutil.rmtree(stale, ignore_errors=True)
    temporary = root / f".tmp-step-{step}-{os.getpid()}"
    policy.save(temporary / "model")
    state = {
        "step": step,
        "updater": updater.state_dict(),
        "rng": {"python": random.getstate(), "torch": torch.get_rng_state()},
    }
    torch.save(state, temporary / STATE_FILE)
    _sync(temporary)
    if final.exists():  # a re-run of the same step after a resume: replace it
        shutil.rmtree(final)
    os.replace(temporary, final)
    _sync(root)
    for _, old in complete(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load(path: Path, policy: Policy, updater: Updater) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG states; returns the saved state."""
    policy.load_weights(path / "model")
    state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
    updater.load_state_dict(state["updater"])
    random.setstate(state["rng"]["python"])
    torch.set_rng_state(state["rng"]["torch"])
    return state


def _sync(path: Path) -> None:
    """fsync a directory tree's files and the directory itself, so a rename publishes data."""
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
