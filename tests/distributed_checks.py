"""Checks that run under torchrun, launched by tests/test_distributed.py, which compares what they
write. Not a test file itself: `python -m torch.distributed.run --nproc_per_node N
tests/distributed_checks.py CHECK OUT`."""

import sys
from pathlib import Path

import torch

from azr.config import ModelConfig, OptimConfig
from azr.engine import state
from azr.engine.distributed import World, join, leave
from azr.engine.policy import Policy
from azr.engine.state import full_state
from azr.selfplay.update import Trajectory, Updater
from azr.tasks import Role, TaskType


def trajectories() -> list[Trajectory]:
    """Eight sequences of uneven lengths (prompts 3-5 tokens, completions 2-8), half with a
    negative advantage."""
    generator = torch.Generator().manual_seed(0)
    made = []
    for i in range(8):
        prompt = tuple(torch.randint(20, 1000, (3 + i % 3,), generator=generator).tolist())
        ids = tuple(torch.randint(20, 1000, (2 + (i * 5) % 7,), generator=generator).tolist())
        made.append(
            Trajectory(Role.SOLVE, TaskType.DEDUCTION, prompt, ids, 0.0, "g", advantage=(-1) ** i * (1 + i / 8))
        )
    return made


def setup() -> tuple[World, Policy, Updater, list[Trajectory]]:
    world = join()
    torch.manual_seed(0)
    policy = Policy(ModelConfig(path="tiny-random", device="cpu"), seed=0, world=world)
    updater = Updater(policy, OptimConfig(lr=1e-3, micro_batch_size=3, entropy_coef=0.01, warmup_steps=3))
    return world, policy, updater, trajectories()


def share(world: World, every: list[Trajectory], layout: str = "even") -> list[Trajectory]:
    """This rank's sequences: `even` (rank r holds the r-th share), `lopsided` (rank 0 holds them
    all, the others none)."""
    if layout == "even":
        size = len(every) // world.size
        return every[world.rank * size : (world.rank + 1) * size]
    return every if world.is_main else []


def update(layout: str, out: str) -> None:
    """Two updates on the eight sequences, split across the ranks by `layout`. Rank 0 writes the
    full parameters before and after, and the statistics."""
    world, policy, updater, every = setup()
    mine = share(world, every, layout)
    initial = copies(full_state(policy))
    stats = [updater.update(mine, seed) for seed in (1, 2)]
    state = copies(full_state(policy))
    if world.is_main:
        torch.save({"initial": initial, "state": state, "stats": stats}, out)
    leave()


def save_after_one(directory: str, out: str) -> None:
    """One update, then the training state saved (DCP) and the model exported to DIRECTORY/model."""
    world, policy, updater, every = setup()
    updater.update(share(world, every), 1)
    state.save(Path(directory), policy, updater)
    state.export(Path(directory) / "model", policy)
    full = copies(full_state(policy))
    if world.is_main:
        torch.save({"state": full}, out)
    leave()


def resume_and_update(directory: str, out: str) -> None:
    """The state of `save_after_one` loaded (at whatever world size), then the second update."""
    world, policy, updater, every = setup()
    state.load(Path(directory), policy, updater)
    updater.update(share(world, every), 2)
    full = copies(full_state(policy))
    if world.is_main:
        torch.save({"state": full, "lr": updater.scheduler.get_last_lr()[0]}, out)
    leave()


def copies(found: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in found.items()}


CHECKS = {"update": update, "save": save_after_one, "resume": resume_and_update}

if __name__ == "__main__":
    check, argument, out = sys.argv[1:4]
    CHECKS[check](argument, out)
