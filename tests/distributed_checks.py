"""Checks that run under torchrun, launched by tests/test_distributed.py, which compares what they
write. Not a test file itself: `python -m torch.distributed.run --nproc_per_node N
tests/distributed_checks.py CHECK OUT`."""

import sys

import torch

from azr.config import ModelConfig, OptimConfig
from azr.engine.distributed import join, leave
from azr.engine.policy import Policy
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


def update(layout: str, out: str) -> None:
    """Two updates on the eight sequences, split across the ranks by `layout`: `even` (rank r holds
    the r-th share), `lopsided` (rank 0 holds them all, the others none). Rank 0 writes the full
    parameters and the statistics."""
    world = join()
    torch.manual_seed(0)
    policy = Policy(ModelConfig(path="tiny-random", device="cpu"), seed=0, world=world)
    updater = Updater(policy, OptimConfig(lr=1e-3, micro_batch_size=3, entropy_coef=0.01))
    every = trajectories()
    if layout == "even":
        share = len(every) // world.size
        mine = every[world.rank * share : (world.rank + 1) * share]
    else:
        mine = every if world.is_main else []
    initial = full_state(policy, world.size)
    stats = [updater.update(mine, seed) for seed in (1, 2)]
    state = full_state(policy, world.size)
    if world.is_main:
        torch.save({"initial": initial, "state": state, "stats": stats}, out)
    leave()


def full_state(policy: Policy, ranks: int) -> dict[str, torch.Tensor]:
    """Every parameter in full (gathered from the shards, a collective), as copies."""
    if ranks > 1:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(policy.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        state = policy.model.state_dict()
    return {name: tensor.detach().clone() for name, tensor in state.items()}


CHECKS = {"update": update}

if __name__ == "__main__":
    check, argument, out = sys.argv[1:4]
    CHECKS[check](argument, out)
