"""Processes working as one: the world `torchrun` starts, sharding the model across it, and the few
collectives the update needs.

`torchrun --nproc_per_node N azr ...` starts N processes ("ranks") with RANK, WORLD_SIZE and
LOCAL_RANK in their environment. Each holds a shard of every parameter (FSDP2, `fully_shard`: each
decoder layer, then the root), computes the loss of its own sequences, and the gradients are summed
across ranks. A plain `azr train` is a world of one: the same code, no process group, and every
collective the identity.

Lessons the ecosystem paid for (../shared/docs/SCALE-OUT.md has the references):
- a token-mean loss divides by the *global* token count (per-rank means change the gradient), and
  FSDP's gradient reduction is then a sum, not its default mean;
- every rank runs the same number of forward and backward passes, or the collectives hang: a rank
  with fewer sequences runs zero-weight passes;
- LoRA and gradient checkpointing are applied before sharding;
- under FSDP2 the gradient norm is a DTensor: `full_tensor()` before reading it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the ranks."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    """The ranks on this machine (they share its cores and GPUs)."""
    sharded: bool = False
    """Started by torchrun, with a process group: the model is sharded (FSDP2) and checkpoints are
    coordinated (DCP), even at world size 1. False: a plain process, nothing sharded."""

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that owns the task store, the run log and every random draw of a step."""
        return self.rank == 0

    def device(self, requested: str) -> str:
        """The device of this rank: with several ranks on CUDA, its own GPU (LOCAL_RANK)."""
        if self.sharded and requested in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested

    def sum(self, value: float) -> float:
        """The sum of `value` over the ranks."""
        if self.size == 1:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
        torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    def max(self, value: int) -> int:
        """The largest `value` of any rank."""
        if self.size == 1:
            return int(value)
        tensor = torch.tensor([int(value)], dtype=torch.int64, device=_collective_device())
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return int(tensor.item())

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if self.size == 1:
            return [value]
        found: list[Any] = [None] * self.size
        torch.distributed.all_gather_object(found, value)
        return found

    def share(self, items: Sequence[T]) -> list[T]:
        """This rank's contiguous share of `items` (the first ranks hold one more when the count
        does not divide)."""
        per, extra = divmod(len(items), self.size)
        start = self.rank * per + min(self.rank, extra)
        return list(items[start : start + per + (self.rank < extra)])

    def across(self, items: Sequence[T], work: Callable[[list[T]], list[Any]]) -> list[Any]:
        """`work` (a list in, one result per item out) on this rank's share of `items`; every rank's
        results, in the order of `items`, on every rank."""
        mine = self.share(items)
        done = work(mine) if mine or self.size == 1 else []
        return [result for part in self.gather(done) for result in part]

    def agree(self, work: Callable[[], T]) -> T:
        """`work()` on this rank, as one step of all of them: when it raises on any rank, it raises
        on every rank. A failing rank raises its error; rank 0 raises the first failing rank's (it
        reports it); the others raise `Stopped`. A rank failing alone would leave the others waiting
        in their next collective."""
        if self.size == 1:
            return work()
        try:
            value, failure = work(), None
        except Exception as error:
            value, failure = None, error
        failures = self.gather(None if failure is None else _portable(failure, self.rank))
        if not any(found is not None for found in failures):
            return value
        if failure is not None:
            if not self.is_main:
                with contextlib.suppress(AttributeError):  # rank 0 says it: this rank need not
                    failure.reported_by_rank_0 = True  # type: ignore[attr-defined]
            raise failure
        if self.is_main:
            raise next(found for found in failures if found is not None)
        raise Stopped(f"rank {self.rank}: stopped, as another rank failed (rank 0 says why)")

    def on_main(self, work: Callable[..., T], *args: Any) -> T | None:
        """`work(*args)` on rank 0 alone (None elsewhere), agreed: if it raises, every rank raises."""
        return self.agree(lambda: work(*args) if self.is_main else None)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value`, on every rank."""
        if self.size == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


class Stopped(Exception):
    """This rank stops because another failed (`World.agree`); rank 0 reports that rank's error."""


def _portable(error: Exception, rank: int) -> Exception:
    """`error` as it can travel to the other ranks (pickled): itself, or its message."""
    try:
        return pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"rank {rank}: {type(error).__name__}: {error}")


def join() -> World:
    """The world this process is in (torchrun's environment, even of one process), its process
    group started once: NCCL on CUDA, else gloo. Without torchrun, a plain world of one."""
    env = os.environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return World()
    world = World(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0")),
                  int(env.get("LOCAL_WORLD_SIZE", "1")), sharded=True)  # fmt: skip
    if not torch.distributed.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(world.local_rank)
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return world


def leave() -> None:
    """Leave the process group, once every rank is done with it (a rank tearing its group down
    while another still talks to it can abort the other)."""
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def _collective_device() -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def shard(model: torch.nn.Module, compute_dtype: torch.dtype, world: World) -> torch.nn.Module:
    """FSDP2 over the ranks: each decoder layer, then the root. Parameters keep their storage dtype
    (float32 for what trains) and compute in `compute_dtype`; gradients are reduced in float32 and
    summed, as the loss is already divided by the global token count. Across several machines,
    HSDP: each machine holds a whole sharded copy, and the machines' gradients are all-reduced, so
    the weights' all-gathers stay on each machine's fast links."""
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

    precision = MixedPrecisionPolicy(
        param_dtype=None if compute_dtype == torch.float32 else compute_dtype, reduce_dtype=torch.float32
    )
    mesh = None
    machines = world.size // world.local_size
    if machines > 1 and world.size % world.local_size == 0:
        from torch.distributed.device_mesh import init_device_mesh

        kind = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
        mesh = init_device_mesh(kind, (machines, world.local_size), mesh_dim_names=("replicate", "shard"))
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=precision)
    fully_shard(model, mesh=mesh, mp_policy=precision)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)  # plain SUM: gloo has no pre-multiplied sum
    return model


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks of a transformers model (the classes it names in `_no_split_modules`),
    through any wrapper (PEFT)."""
    names = next((set(m._no_split_modules) for m in model.modules() if getattr(m, "_no_split_modules", None)), set())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(f"{type(model).__name__} names no decoder layer class (_no_split_modules): cannot shard it")
    return layers


def full_norm(norm: torch.Tensor) -> float:
    """A gradient norm as a number: under FSDP2, clip_grad_norm_ returns a DTensor."""
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
