"""Training state on disk at any world size: the model and optimizer through DCP
(`torch.distributed.checkpoint`), and the model as a Hugging Face directory.

DCP writes each rank's shards with a plan of where every piece belongs, so a state saved by N ranks
loads into M ranks (it reshards), including M = 1, where the model is not sharded at all. Names are
the model's own (`get_state_dict` maps the optimizer's state onto parameter names), so a sharded and
an unsharded run read each other's files. Only what trains is written (with LoRA, the adapters: the
frozen base comes from model.path again). The scheduler's state is the same on every rank and is
written once, by rank 0, with whatever else the caller keeps there; each rank's random state is
its own.

The HF directory (`export`) is the full model gathered to rank 0 (a collective every rank joins),
loadable with `from_pretrained` by anything downstream.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from azr.engine.policy import Policy
    from azr.selfplay.update import Updater

SHARDS = "shards"
"""The DCP directory (model and optimizer), inside a checkpoint's directory."""
TRAINER = "trainer_state.pt"
"""The scheduler's state and the caller's, written by rank 0."""


def save(directory: Path, policy: Policy, updater: Updater, trainer: dict[str, Any]) -> None:
    """Every rank writes its shards of the model and optimizer and its random state
    (`rng-<rank>.pt`); rank 0 writes the scheduler's state and `trainer`. A collective; a failure on
    any rank (a full disk) raises on every rank (DCP coordinates its own writes; the others are
    agreed), so none is left waiting."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    world = policy.world
    model, optimizer = get_state_dict(policy.model, updater.optimizer, options=_trained())
    shards = str(directory / SHARDS)
    with _one_process(world.sharded), _as_exception():
        dcp.save({"model": model, "optimizer": optimizer}, checkpoint_id=shards, no_dist=not world.sharded)

    def rest() -> None:
        if world.is_main:
            torch.save({**trainer, "scheduler": updater.scheduler.state_dict()}, directory / TRAINER)
        torch.save({"torch": torch.get_rng_state()}, directory / f"rng-{world.rank}.pt")

    world.agree(rest)


def load(directory: Path, policy: Policy, updater: Updater) -> dict[str, Any]:
    """Restore what `save` wrote, whatever the world size it was written at, and return rank 0's
    `trainer`. A rank that had no counterpart then starts from rank 0's random state."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    world = policy.world
    model, optimizer = get_state_dict(policy.model, updater.optimizer, options=_trained())
    state = {"model": model, "optimizer": optimizer}
    with _one_process(world.sharded), _as_exception():
        dcp.load(state, checkpoint_id=str(directory / SHARDS), no_dist=not world.sharded)
    set_state_dict(
        policy.model, updater.optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"],
        options=_trained(),
    )  # fmt: skip
    trainer = torch.load(directory / TRAINER, map_location="cpu", weights_only=False)
    updater.scheduler.load_state_dict(trainer.pop("scheduler"))
    policy.weights_changed()
    rng = directory / f"rng-{world.rank}.pt"
    torch.set_rng_state(torch.load(rng if rng.exists() else directory / "rng-0.pt", weights_only=False)["torch"])
    return trainer


@contextlib.contextmanager
def _one_process(sharded: bool) -> Iterator[None]:
    """Without a process group DCP warns that it assumes one process, which it is."""
    with warnings.catch_warnings():
        if not sharded:
            warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)
        yield


@contextlib.contextmanager
def _as_exception() -> Iterator[None]:
    """DCP's failures as an Exception caused by the first failing rank's error (DCP raises a
    BaseException, which `except Exception` and the callers' checks of a full disk would miss)."""
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        yield
    except CheckpointException as error:
        rank = min(error.failures)
        cause = error.failures[rank][0]
        raise RuntimeError(f"DCP failed on rank {rank}: {type(cause).__name__}: {cause}") from cause


def _trained() -> Any:
    """The parameters that train (all, or LoRA's adapters), and their optimizer state. Loading
    with strict=False lets the frozen ones be absent; DCP itself fails on any trained one missing."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(ignore_frozen_params=True, strict=False)


def full_state(policy: Policy) -> dict[str, torch.Tensor]:
    """Every parameter and buffer in full, on the CPU (gathered from the shards: a collective)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if not policy.world.sharded:
        return {name: tensor.detach().cpu() for name, tensor in policy.model.state_dict().items()}
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(policy.model, options=options)


def export(directory: Path, policy: Policy) -> None:
    """The model as a directory `from_pretrained` loads (for LoRA: the adapter), written by rank 0;
    every rank must call it (the gathering is a collective; a failed write raises on every rank)."""
    world = policy.world
    if not world.sharded:
        policy.save(directory)
        return
    state = full_state(policy)

    def write() -> None:
        if world.is_main:
            policy.model.save_pretrained(directory, state_dict=state)
            policy.tokenizer.save_pretrained(directory)

    world.agree(write)
