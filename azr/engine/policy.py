"""The policy: one causal language model and its tokenizer, in both roles (AZR paper section 3).

Any Hugging Face causal LM loads here by directory or hub id (`AutoModelForCausalLM`), or the
locally built `tiny-random`. Optional LoRA through PEFT, gradient checkpointing, dtype and device
from the config. `logprobs` computes per-token log-probabilities of completions in micro-batches:
prompts are left-padded and completions right-padded, so every completion starts at the same
column and the positions match what `generate` saw.

Precision: `model.dtype` is the dtype of the computation. The weights being trained are kept in
float32 and the forward passes run under autocast: an AdamW step at lr 1e-6 is smaller than
bfloat16 can represent on most weights, so bfloat16 weights would barely move. With LoRA the frozen
base weights are stored in `model.dtype` and the adapters in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from azr.config import ModelConfig
from azr.engine.distributed import World, shard

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class PolicyError(RuntimeError):
    """The model cannot be loaded or used as configured; the message says why."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PolicyError(f"model.device={name} but no CUDA device is available: use model.device=cpu")
    if name.startswith("cuda:") and int(name.partition(":")[2]) >= torch.cuda.device_count():
        raise PolicyError(f"model.device={name} but torch sees {torch.cuda.device_count()} CUDA devices")
    return torch.device(name)


EMBEDDED = "embedded"


def resolve_path(path: str, seed: int) -> str:
    """`tiny-random` (built on first use), `embedded` (shipped in the package), or as given."""
    if path == "tiny-random":
        from azr.engine import tiny

        return str(tiny.path(seed))
    if path == EMBEDDED:
        from azr.base import model_path

        found = model_path()
        if found is None:
            raise PolicyError("the embedded model is not in this install: build it with `azr build-base-model`")
        return str(found)
    return path


@dataclass(frozen=True)
class TokenBatch:
    """Prompts left-padded to one width, completions right-padded to another."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    completion_mask: torch.Tensor
    """[batch, completion width]: 1 on completion tokens."""
    prompt_width: int


class Policy:
    def __init__(self, config: ModelConfig, seed: int = 0, world: World | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.config = config
        self.world = world or World()
        """The ranks the model is sharded across (azr.engine.distributed); one: not sharded."""
        self.device = resolve_device(self.world.device(config.device))
        self.path = resolve_path(config.path, seed)
        self.compute_dtype = _DTYPES[config.dtype]
        weights = self.compute_dtype if config.lora.enabled else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            kwargs = {"dtype": weights}
            if config.attn_implementation:
                kwargs["attn_implementation"] = config.attn_implementation
            self.model = AutoModelForCausalLM.from_pretrained(self.path, **kwargs)
        except (OSError, ValueError, ImportError) as error:
            raise PolicyError(f"cannot load model.path={config.path!r}: {str(error).splitlines()[0]}") from None
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None)
        self.model.to(self.device)
        if config.lora.enabled:
            self.model = _with_lora(self.model, config)
        if config.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
            if config.lora.enabled:
                self.model.enable_input_require_grads()
        self._copy: torch.nn.Module | None = None
        self.listeners: list[Callable[[], None]] = []
        """Called after every change of the weights (`weights_changed`): samplers that hold their own
        copy of them (vLLM) push the new ones."""
        if self.world.sharded:  # after LoRA and checkpointing, which FSDP2 must see already applied
            self.model = shard(self.model, self.compute_dtype, self.world)

    def compute(self) -> contextlib.AbstractContextManager:
        """The precision of forward passes: autocast to model.dtype over float32 weights."""
        if self.compute_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.compute_dtype)

    # -- tokens --------------------------------------------------------------------------------

    def encode(self, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
        """Token ids of each text, cut from the left to `max_tokens` (the end of a prompt matters
        most: it asks for the answer)."""
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [ids[-max_tokens:] for ids in encoded]

    def batch(self, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]]) -> TokenBatch:
        pad = self.tokenizer.pad_token_id
        prompt_width = max(len(p) for p in prompts)
        completion_width = max((len(c) for c in completions), default=0)
        rows, masks, completion_masks = [], [], []
        for prompt, completion in zip(prompts, completions, strict=True):
            left, right = prompt_width - len(prompt), completion_width - len(completion)
            rows.append([pad] * left + list(prompt) + list(completion) + [pad] * right)
            masks.append([0] * left + [1] * (len(prompt) + len(completion)) + [0] * right)
            completion_masks.append([1] * len(completion) + [0] * right)
        return TokenBatch(
            torch.tensor(rows, device=self.device),
            torch.tensor(masks, device=self.device),
            torch.tensor(completion_masks, device=self.device),
            prompt_width,
        )

    # -- log-probabilities ---------------------------------------------------------------------

    def logprobs(
        self, batch: TokenBatch, with_entropy: bool = False, model: torch.nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-token log-probabilities [batch, completion width] of the completion tokens under
        the current weights (and their entropies), with gradients if enabled by the caller.
        `model`: another module to compute them with (the generation copy)."""
        positions = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)
        width = batch.completion_mask.shape[1]
        # Logits at column j predict token j + 1: the completion's predictors are the `width`
        # columns from the last prompt column on. Only those are computed (the vocabulary is big).
        with self.compute():
            output = (model or self.model)(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=positions,
                logits_to_keep=width + 1,
            )
        logits = output.logits[:, :width].float()
        targets = batch.input_ids[:, batch.prompt_width : batch.prompt_width + width]
        normaliser = torch.logsumexp(logits, dim=-1)
        chosen = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - normaliser
        entropy = None
        if with_entropy:
            probabilities = torch.softmax(logits, dim=-1)
            entropy = normaliser - (probabilities * logits).sum(-1)
        return chosen, entropy

    # -- generation across ranks -------------------------------------------------------------

    def generation_model(self) -> torch.nn.Module:
        """What `generate` runs on: the policy itself, or, with several ranks, this rank's own
        unsharded copy in `model.dtype`, brought up to date after every update. (HF `generate` on a
        model sharded by hand deadlocks when ranks decode different lengths: transformers only
        syncs the ranks for models it shards itself.) The copy is made by the first call, which with
        several ranks is a collective: every rank makes its generator at the same point."""
        if not self.world.sharded:
            return self.model
        if self._copy is None:
            from azr.engine.weights import sampler_copy

            self._copy = sampler_copy(self)
        return self._copy

    def weights_changed(self) -> None:
        """After an update or a checkpoint load, on every rank: the generation copy (if any) is
        refreshed from the shards (a collective; LoRA merged), and every listener is told."""
        if self._copy is not None:
            from azr.engine.weights import load_merged

            load_merged(self._copy, self)
        for listener in self.listeners:
            listener()

    # -- saving --------------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """A directory `transformers` loads as is (for LoRA: the adapter, which loads with PEFT
        installed on top of the base model named in it)."""
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    def load_weights(self, directory: Path) -> None:
        """Restore weights saved by `save` into this policy."""
        if self.config.lora.enabled:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(self.model, load_file(str(directory / "adapter_model.safetensors")))
            return
        from transformers import AutoModelForCausalLM

        loaded = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
        self.model.load_state_dict(loaded.state_dict())

    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]


def _with_lora(model: torch.nn.Module, config: ModelConfig) -> torch.nn.Module:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise PolicyError("model.lora.enabled needs PEFT: pip install 'azr[lora]'") from None
    targets = config.lora.target_modules
    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",")],
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, lora)
    except (ValueError, TypeError) as error:
        raise PolicyError(f"model.lora: {str(error).splitlines()[0]}") from None
