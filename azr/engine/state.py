"""Training state on disk at any world size: the model and optimizer through DCP
(`torch.distributed.checkpoint`), and the model as a Hugging Face directory.

DCP writes each rank's shards with a plan of where every piece belongs, so a state saved by N ranks
loads into M ranks (it reshards), including M = 1, where the model is not sharded at all. Names are
the model's own (`get_state_dict` maps the optimizer's state onto parameter names), so a sharded and
an unsharded run read each other's files. The scheduler's state is the same on every rank and is
written once; each rank's random state is its own.

The HF directory (`export`) is the full model gathered to rank 0 (a collective every rank joins),
loadable with `from_pretrained` by anything downstream.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from azr.engine.policy import Policy
    from azr.selfplay.update import Updater

SHARDS = "shards"
"""The DCP directory (model and optimizer), inside a checkpoint's directory."""
TRAINER = "trainer.pt"
"""The scheduler's state, written by rank 0."""


def save(directory: Path, policy: Policy, updater: Updater) -> None:
    """Every rank writes its shards of the model and optimizer, rank 0 the scheduler, and each rank
    its random state (`rng-<rank>.pt`)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    world = policy.world
    model, optimizer = get_state_dict(policy.model, updater.optimizer)
    dcp.save({"model": model, "optimizer": optimizer}, checkpoint_id=str(directory / SHARDS))
    if world.is_main:
        torch.save({"scheduler": updater.scheduler.state_dict()}, directory / TRAINER)
    torch.save({"torch": torch.get_rng_state()}, directory / f"rng-{world.rank}.pt")


def load(directory: Path, policy: Policy, updater: Updater) -> None:
    """Restore what `save` wrote, whatever the world size it was written at. A rank that had no
    counterpart then starts from rank 0's random state."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model, optimizer = get_state_dict(policy.model, updater.optimizer)
    state = {"model": model, "optimizer": optimizer}
    dcp.load(state, checkpoint_id=str(directory / SHARDS))
    set_state_dict(
        policy.model, updater.optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
    )
    updater.scheduler.load_state_dict(torch.load(directory / TRAINER, weights_only=False)["scheduler"])
    policy.refresh_copy()
    rng = directory / f"rng-{policy.world.rank}.pt"
    torch.set_rng_state(torch.load(rng if rng.exists() else directory / "rng-0.pt", weights_only=False)["torch"])


def full_state(policy: Policy) -> dict[str, torch.Tensor]:
    """Every parameter and buffer in full, on the CPU (gathered from the shards: a collective)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if policy.world.size == 1:
        return {name: tensor.detach().cpu() for name, tensor in policy.model.state_dict().items()}
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(policy.model, options=options)


def export(directory: Path, policy: Policy) -> None:
    """The model as a directory `from_pretrained` loads (for LoRA: the adapter), written by rank 0;
    every rank must call it."""
    state = full_state(policy)
    if policy.world.is_main:
        policy.model.save_pretrained(directory, state_dict=state)
        policy.tokenizer.save_pretrained(directory)
