"""The trained weights as the plain Hugging Face model names them: full tensors, LoRA merged.

A sampler that holds its own copy of the model (each rank's generation copy, a vLLM engine) is
brought up to date from these after every update. Under FSDP2 each tensor is gathered from the
shards as it is read (a collective: every rank iterates, in the same order). With LoRA the
adapters are merged functionally, W + (alpha / r) B A, into a new tensor: PEFT's
`merge_adapter` would write into the sharded base weights in place, which under FSDP2 are DTensors
it does not handle, and would have to be undone before the next update.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from azr.engine.policy import Policy

_PEFT_PREFIX = "base_model.model."


def merged_weights(policy: Policy, dtype: torch.dtype | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for every entry of the plain model's state dict, on the policy's device, in
    `dtype` (default: as stored). Every rank must iterate all of it."""
    model = policy.model
    state = model.state_dict()
    scales = _lora_scales(model) if policy.config.lora.enabled else {}
    for key, tensor in state.items():
        if ".lora_" in key:
            continue
        full = _full(tensor)
        prefix = key.removesuffix(".base_layer.weight")
        if prefix != key and prefix in scales:
            adapter_a = _full(state[f"{prefix}.lora_A.default.weight"])
            adapter_b = _full(state[f"{prefix}.lora_B.default.weight"])
            scale, transposed = scales[prefix]
            delta = (adapter_b.float() @ adapter_a.float()) * scale
            full = (full.float() + (delta.T if transposed else delta)).to(full.dtype)
        name = key.removeprefix(_PEFT_PREFIX).replace(".base_layer.", ".")
        yield name, full.to(dtype) if dtype is not None else full


def buckets(weights: Iterable[tuple[str, torch.Tensor]], limit: int) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """`weights` in consecutive groups of about `limit` bytes (a group closes once it reaches it):
    few transfers, and little memory held twice."""
    bucket: list[tuple[str, torch.Tensor]] = []
    size = 0
    for name, tensor in weights:
        bucket.append((name, tensor))
        size += tensor.numel() * tensor.element_size()
        if size >= limit:
            yield bucket
            bucket, size = [], 0
    if bucket:
        yield bucket


def sampler_copy(policy: Policy) -> torch.nn.Module:
    """A plain model of the policy's architecture in its compute dtype, on its device, frozen,
    holding the policy's current merged weights (refresh it with `load_merged`)."""
    from transformers import AutoModelForCausalLM

    copy = AutoModelForCausalLM.from_config(policy.model.config, dtype=policy.compute_dtype).to(policy.device)
    copy.eval()
    copy.requires_grad_(False)
    load_merged(copy, policy)
    return copy


def load_merged(copy: torch.nn.Module, policy: Policy) -> None:
    """The policy's current weights into `copy` (a collective under FSDP2: every rank calls it)."""
    copy.load_state_dict(dict(merged_weights(policy, policy.compute_dtype)))


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor: gathered from its shards when it is a DTensor."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor.detach()


def _lora_scales(model: torch.nn.Module) -> dict[str, tuple[float, bool]]:
    """For each LoRA-wrapped module, by state-dict prefix: alpha / r (or PEFT's own scaling, as
    configured: rsLoRA) and whether its weight is stored transposed (GPT-2's Conv1D)."""
    from peft.tuners.lora import LoraLayer

    from azr.engine.policy import PolicyError

    scales = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and len(getattr(module, "lora_embedding_A", {})):
            raise PolicyError(
                f"model.lora.target_modules adapts an embedding ({name}): the sampler's merged copy handles linear "
                "layers only; target the linear layers (e.g. all-linear)"
            )
        if isinstance(module, LoraLayer) and "default" in module.scaling:
            scales[name] = (float(module.scaling["default"]), bool(getattr(module, "fan_in_fan_out", False)))
    return scales
