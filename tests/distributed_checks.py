"""Checks that run under torchrun, launched by tests/test_distributed.py, which compares what they
write. Not a test file itself: `python -m torch.distributed.run --nproc_per_node N
tests/distributed_checks.py CHECK OUT`."""

import hashlib
import os
import re
import sys
from pathlib import Path

import torch

from azr.config import Config, ModelConfig, OptimConfig
from azr.engine import state
from azr.engine.distributed import World, join, leave
from azr.engine.generation import Completion, Sampling, TransformersGenerator
from azr.engine.policy import Policy
from azr.engine.state import full_state
from azr.executor import Executor, ExecutorConfig
from azr.prompts import get_template
from azr.selfplay.step import SelfPlay, selfplay_step
from azr.selfplay.update import Trajectory, Updater
from azr.tasks import Role, TaskType, TripletProposal
from azr.tasks.seeds import identity_proposals
from azr.tasks.store import TaskStore
from azr.tasks.validate import Validator
from azr.tasks.verify import Verifier

KINDS = [(TaskType.DEDUCTION, Role.SOLVE), (TaskType.ABDUCTION, Role.SOLVE), (TaskType.DEDUCTION, Role.PROPOSE)]


def trajectories() -> list[Trajectory]:
    """Eight sequences of uneven lengths (prompts 3-5 tokens, completions 2-8), half with a
    negative advantage, in three (task type, role) groups."""
    generator = torch.Generator().manual_seed(0)
    made = []
    for i in range(8):
        prompt = tuple(torch.randint(20, 1000, (3 + i % 3,), generator=generator).tolist())
        ids = tuple(torch.randint(20, 1000, (2 + (i * 5) % 7,), generator=generator).tolist())
        kind, role = KINDS[i % 3]
        made.append(Trajectory(role, kind, prompt, ids, 0.0, "g", advantage=(-1) ** i * (1 + i / 8)))
    return made


def setup(lora: bool = False, loss_mean: str = "token") -> tuple[World, Policy, Updater, list[Trajectory]]:
    world = join()
    torch.manual_seed(0)
    model = ModelConfig(path="tiny-random", device="cpu")
    if lora:
        model.lora.enabled, model.lora.r, model.lora.alpha = True, 4, 8
    policy = Policy(model, seed=0, world=world)
    optim = OptimConfig(lr=1e-3, micro_batch_size=3, entropy_coef=0.01, warmup_steps=3, loss_mean=loss_mean)
    updater = Updater(policy, optim)
    return world, policy, updater, trajectories()


def share(world: World, every: list[Trajectory], layout: str = "even") -> list[Trajectory]:
    """This rank's sequences: `even` (rank r holds the r-th share; `group`: so, with a loss mean per
    group), `lopsided` (rank 0 holds them all, the others none)."""
    if layout in ("even", "group"):
        size = len(every) // world.size
        return every[world.rank * size : (world.rank + 1) * size]
    return every if world.is_main else []


def update(layout: str, out: str) -> None:
    """Two updates on the eight sequences, split across the ranks by `layout`. Rank 0 writes the
    full parameters before and after, and the statistics."""
    world, policy, updater, every = setup(loss_mean="group" if layout == "group" else "token")
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
    state.save(Path(directory), policy, updater, {})
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


def lora(directory: str, out: str) -> None:
    """LoRA under FSDP2: two updates, the adapter exported to DIRECTORY, and rank 0 writes the
    adapters' parameters and its generation copy's weights (the merge of the shards)."""
    world, policy, updater, every = setup(lora=True)
    for seed in (1, 2):
        updater.update(share(world, every), seed)
    state.export(Path(directory), policy)
    adapters = {name: tensor for name, tensor in copies(full_state(policy)).items() if "lora_" in name}
    generated = copies(policy.generation_model().state_dict())
    if world.is_main:
        torch.save({"adapters": adapters, "copy": generated}, out)
    leave()


def full_disk(directory: str, out: str) -> None:
    """A checkpoint save whose export fails on rank 0 alone (a full disk), while the other ranks
    have written their part: every rank gets the error (rank 0 the disk's, the others `Stopped`)
    instead of waiting in the next collective. Each rank writes what it raised to OUT.<rank>."""
    import errno

    from azr.run import checkpoint

    world, policy, updater, _ = setup()
    if world.is_main:

        def full(*_: object, **__: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        policy.model.save_pretrained = full
    try:
        checkpoint.save(Path(directory), 1, policy, updater, keep=2)
        raised = None
    except Exception as error:
        raised = (type(error).__name__, str(error))
    torch.save({"raised": raised}, f"{out}.{world.rank}")
    leave()


def copies(found: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in found.items()}


def respond(prompt: str, k: int) -> str:
    """A scripted model whose every answer is a function of (prompt, k) alone, so that it writes the
    same whichever rank it runs on: proposals `x + a` with an input, some malformed or failing;
    answers right two times in three."""
    h = int(hashlib.sha256(f"{prompt}:{k}".encode()).hexdigest(), 16)
    if prompt.endswith("<PD>"):
        return "no end marker" if h % 3 == 2 else f"def f(x):\n    return x + {h % 50}<I>{h % 97}<E>"
    if prompt.endswith("<PA>"):
        return (
            "def f(x):\n    return x / 0<I>1<E>" if h % 3 == 2 else f"def f(x):\n    return x + {h % 50}<I>{h % 89}<E>"
        )
    plus = re.search(r"return x \+ (\d+)", prompt)
    right = h % 3 != 0
    if h % 5 == 0:
        return "cut off"
    if prompt.startswith("<D>"):
        given = re.search(r"<I>(.*)<O>$", prompt).group(1)
        value = str(int(given) + int(plus.group(1))) if plus else given
        return (value if right or not plus else value + "0") + "<E>"
    if prompt.startswith("<A>"):
        output = re.search(r"<O>(.*)<I>$", prompt).group(1)
        value = str(int(output) - int(plus.group(1))) if plus else output
        return (value if right else "'nope'") + "<E>"
    raise AssertionError(f"unscripted prompt {prompt!r}")


class Scripted:
    def generate(self, prompts, n, sampling, seed):
        return [
            [Completion((1,), (5 + k, 6, 7)[: 1 + len(p) % 3], respond(p, k), True) for k in range(n)] for p in prompts
        ]


def steps(directory: str, out: str) -> None:
    """Two self-play steps (deduction and abduction, reused rollouts, an update on the tiny model)
    with the scripted model; rank 0 writes the store's rows, the trajectories, metrics and weights."""
    world, policy, updater, _ = setup()
    config = Config()
    config.selfplay.task_types = ["deduction", "abduction"]
    config.selfplay.batch_size, config.selfplay.n_mc, config.selfplay.references = 4, 3, 1
    config.selfplay.reuse_rollouts = True
    with Executor(ExecutorConfig(timeout=5, workers=1)) as executor:
        validator = Validator(executor)
        store = None
        if world.is_main:
            store = TaskStore(Path(directory) / "tasks.db")
            seeds = identity_proposals() + [
                TripletProposal(task_type, f"def f(x):\n    return x + {a}", str(a + 1))
                for task_type, a in (("deduction", 1), ("deduction", 2), ("abduction", 3), ("abduction", 4))
            ]
            store.add([v.task for v in validator.validate(seeds, step=0, source="seed")])
        verifier = Verifier(executor)
        play = SelfPlay(config, Scripted(), get_template("compact"), store, validator, verifier, updater, world=world)
        results = [selfplay_step(play, step) for step in (1, 2)]
        weights = copies(full_state(policy))
        if world.is_main:
            rows = store.rows(max_step=None)
            trained = [[(t.role.value, t.task_type, t.reward, t.advantage, t.ids) for t in r.trained] for r in results]
            clocked = ("time", "tokens/per_second")
            metrics = [{k: v for k, v in r.metrics.items() if not k.startswith(clocked)} for r in results]
            torch.save({"rows": rows, "trained": trained, "metrics": metrics, "state": weights}, out)
            store.close()
    leave()


def generation(layout: str, out: str) -> None:
    """One update, then greedy generation on each rank's own copy of the model: rank 0 three prompts,
    rank 1 one, one at a time (so the ranks run different numbers of forward passes); rank 0 writes
    every completion."""
    world, policy, updater, every = setup()
    updater.update(share(world, every), 1)
    prompts = ["def f(x):\n    return", "import", "x = [1, 2", "class A:\n"]
    mine = prompts if world.size == 1 else (prompts[:3] if world.is_main else prompts[3:])
    settings = Config().generation
    settings.batch_size = 1  # rank 0 runs three generate calls, rank 1 one: a sharded model would hang
    generator = TransformersGenerator(policy, settings)
    done = generator.generate(mine, 1, Sampling(0.0, 1.0, 12), seed=0)
    found = [(c.ids, c.text) for part in world.gather(done) for [c] in part]
    if world.is_main:
        torch.save({"completions": found}, out)
    leave()


CHECKS = {
    "full_disk": full_disk,
    "lora": lora,
    "update": update,
    "save": save_after_one,
    "resume": resume_and_update,
    "steps": steps,
    "generate": generation,
}

if __name__ == "__main__":
    check, argument, out = sys.argv[1:4]
    CHECKS[check](argument, out)
    # The results are written and the group is left: skip the interpreter's finalization, where
    # gloo's worker threads still holding tensors have aborted a rank now and then (SIGABRT,
    # "terminate called without an active exception"; pytorch PR 179291 describes the race).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
