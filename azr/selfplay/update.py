"""Stage 6: one policy-gradient update on the step's sequences (AZR paper section 3.3.5).

AdamW with gradient clipping; the sequences are shuffled and split into `mini_batches` optimizer
steps, each over `epochs` passes, each accumulated over micro-batches of `micro_batch_size`
sequences. Every micro-batch divides by its mini-batch's token count, so accumulation gives the
gradient of one big batch. The paper's setting is one mini-batch and one epoch: the policy that
sampled is the policy being updated, so the old log-probabilities are the current ones, detached,
and no extra forward pass is spent on them. Otherwise they are computed once, before any update.
"""

from __future__ import annotations

import copy
import logging
import random
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

from azr.config import ConfigError, OptimConfig
from azr.engine.distributed import full_norm
from azr.engine.policy import Policy
from azr.selfplay.loss import policy_loss
from azr.tasks import Role

log = logging.getLogger("azr.selfplay.update")

SAMPLER_DRIFT = 0.05
"""Mean nats a token between the sampler's and the trainer's log-probabilities past which the
update warns: the rollouts are no longer the policy's own (sampling settings, kernels, a stale
copy)."""


@dataclass(frozen=True)
class Trajectory:
    """One response to train on: its prompt and completion tokens, reward and advantage. (A
    "sample", in this project, is a logged example: samples.jsonl, `azr eval --samples`.)"""

    role: Role
    task_type: str
    prompt_ids: tuple[int, ...]
    ids: tuple[int, ...]
    reward: float
    group: Hashable
    """Its baseline group: (task type, role) in TRR++."""
    advantage: float = 0.0
    sampler_logprobs: tuple[float, ...] | None = None
    """The sampler's log-probability of each token, when kept (generation.sampler_logprobs)."""
    scratchpad: int = 0
    """How many of the completion's first tokens are a solver's scratchpad (before its answer's
    marker); 0 without one."""


class Updater:
    """One update (stage 6) on this rank's trajectories. With several ranks (azr.engine.distributed)
    the result is that of one process holding every rank's trajectories: the token mean divides by
    the global token count, gradients are summed, and every rank runs as many passes as the busiest
    (zero-weight ones where it has nothing left), so that the collectives meet."""

    def __init__(self, policy: Policy, config: OptimConfig) -> None:
        self.policy = policy
        self.config = config
        self.world = policy.world
        self.optimizer = torch.optim.AdamW(
            policy.parameters(), lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay
        )
        warmup = config.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda done: min(1.0, (done + 1) / warmup) if warmup else 1.0
        )
        self.reference = self._reference() if config.kl_coef else None

    def _reference(self) -> torch.nn.Module | None:
        """The initial policy, frozen, for the KL penalty. With LoRA it is the base model itself
        (adapters disabled), so it costs no memory."""
        if self.policy.config.lora.enabled:
            return None
        if self.world.sharded:
            raise ConfigError(
                "optim.kl_coef under torchrun: a sharded reference model is not built yet; set optim.kl_coef=0 "
                "(the paper's setting) or train in one plain process"
            )
        reference = copy.deepcopy(self.policy.model)
        reference.eval()
        for parameter in reference.parameters():
            parameter.requires_grad_(False)
        return reference

    def update(self, trajectories: Sequence[Trajectory], seed: int) -> dict[str, float]:
        """Train on `trajectories`; returns the update's statistics."""
        config, world = self.config, self.world
        if not world.sum(len(trajectories)):
            return {}
        order = list(range(len(trajectories)))
        random.Random(seed).shuffle(order)
        mini_batches = [order[i :: config.mini_batches] for i in range(config.mini_batches)]
        counts = [world.sum(sum(len(trajectories[i].ids) for i in mini)) for mini in mini_batches]
        mini_batches, counts = [m for m, n in zip(mini_batches, counts, strict=True) if n], [n for n in counts if n]
        on_policy = config.mini_batches == 1 and config.epochs == 1
        old = None if on_policy else self._logprobs(trajectories)
        totals: dict[str, float] = dict.fromkeys(
            ("loss", "policy", "kl", "entropy", "clip_fraction", "sampler_logp_diff"), 0.0
        )
        norms = []
        self.policy.model.train()
        for _ in range(config.epochs):
            for mini, token_count in zip(mini_batches, counts, strict=True):
                groups = self._group_divisors(trajectories, mini) if config.loss_mean == "group" else None
                self.optimizer.zero_grad(set_to_none=True)
                micros = [
                    mini[start : start + config.micro_batch_size]
                    for start in range(0, len(mini), config.micro_batch_size)
                ]
                for index in range(world.max(len(micros))):
                    if index >= len(micros):  # this rank is done: a pass that moves nothing, for the collectives
                        self._idle_pass(with_grad=True)
                        continue
                    micro = micros[index]
                    old_micro = None if old is None else [old[i] for i in micro]
                    divisor = token_count if groups is None else torch.tensor([groups[i] for i in micro])
                    terms = self._loss([trajectories[i] for i in micro], old_micro, divisor)
                    terms.loss.backward()
                    for key, value in (("loss", terms.loss.item()), ("policy", terms.policy), ("kl", terms.kl),
                                       ("entropy", terms.entropy), ("clip_fraction", terms.clip_fraction),
                                       ("sampler_logp_diff", terms.sampler_diff)):  # fmt: skip
                        totals[key] += value
                norms.append(full_norm(torch.nn.utils.clip_grad_norm_(self.policy.parameters(), config.grad_clip)))
                self.optimizer.step()
                self.scheduler.step()
        updates = config.epochs * len(mini_batches)
        # KL and entropy are computed only when their coefficient is on: a logged 0 would read as a measurement.
        skipped = {"kl"} if not config.kl_coef else set()
        skipped |= {"entropy"} if not config.entropy_coef else set()
        if not world.sum(sum(t.sampler_logprobs is not None for t in trajectories)):
            skipped.add("sampler_logp_diff")
        # Each rank's terms are its share of the global token mean: their sum over ranks is the whole.
        stats = {key: world.sum(value) / updates for key, value in totals.items() if key not in skipped}
        stats["grad_norm"] = sum(norms) / len(norms)
        stats["lr"] = self.scheduler.get_last_lr()[0]
        stats["sequences"] = world.sum(len(trajectories))
        stats["tokens"] = world.sum(sum(len(s.ids) for s in trajectories))
        if stats.get("sampler_logp_diff", 0.0) > SAMPLER_DRIFT:
            log.warning(
                "the sampler's log-probabilities are %.3f nats a token from the trainer's (over %.2f): rollouts are "
                "off-policy; check the sampling settings (top_p=1, top_k off) or set optim.tis_cap",
                stats["sampler_logp_diff"], SAMPLER_DRIFT,
            )  # fmt: skip
        self.policy.weights_changed()  # the sampler's weights (a copy, or vLLM's) follow
        return stats

    def _group_divisors(self, trajectories: Sequence[Trajectory], mini: Sequence[int]) -> dict[int, float]:
        """For `optim.loss_mean=group`, each sequence's divisor: its (task type, role) group's token
        count in the mini-batch, over every rank, times the number of groups."""
        mine: dict[tuple[str, str], int] = defaultdict(int)
        for i in mini:
            mine[_group(trajectories[i])] += len(trajectories[i].ids)
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for part in self.world.gather(dict(mine)):
            for key, count in part.items():
                counts[key] += count
        present = [key for key, count in counts.items() if count]
        return {i: float(counts[_group(trajectories[i])] * len(present)) for i in mini}

    def _idle_pass(self, with_grad: bool) -> None:
        """A forward (and backward) pass of one token that contributes nothing: a rank with fewer
        sequences than another still takes part in every all-gather and reduce-scatter."""
        pad = self.policy.tokenizer.pad_token_id
        batch = self.policy.batch([[pad]], [[pad]])
        with torch.set_grad_enabled(with_grad):
            logprobs, _ = self.policy.logprobs(batch)
            if with_grad:
                (logprobs.sum() * 0.0).backward()

    def _loss(
        self, trajectories: Sequence[Trajectory], old: Sequence[torch.Tensor] | None, token_count: float | torch.Tensor
    ):
        config = self.config
        batch = self.policy.batch([s.prompt_ids for s in trajectories], [s.ids for s in trajectories])
        logprobs, entropy = self.policy.logprobs(batch, with_entropy=bool(config.entropy_coef))
        mask = batch.completion_mask
        if old is None:
            old_logprobs = logprobs.detach()
        else:
            old_logprobs = torch.zeros_like(logprobs)
            for row, values in enumerate(old):
                old_logprobs[row, : len(values)] = values
        reference = self._reference_logprobs(batch) if config.kl_coef else None
        advantages = torch.tensor([s.advantage for s in trajectories], device=logprobs.device)
        sampler = None
        if any(t.sampler_logprobs is not None for t in trajectories):
            sampler = old_logprobs.detach().clone()  # a token without the sampler's number: no correction
            for row, t in enumerate(trajectories):
                if t.sampler_logprobs is not None:
                    sampler[row, : len(t.sampler_logprobs)] = torch.tensor(t.sampler_logprobs, dtype=sampler.dtype)
        return policy_loss(
            logprobs, old_logprobs, advantages, mask, config.clip_ratio, token_count,
            ref_logprobs=reference, kl_coef=config.kl_coef, entropy=entropy, entropy_coef=config.entropy_coef,
            sampler_logprobs=sampler, tis_cap=config.tis_cap, token_weights=self._token_weights(trajectories, mask),
        )  # fmt: skip

    def _token_weights(self, trajectories: Sequence[Trajectory], mask: torch.Tensor) -> torch.Tensor | None:
        """optim.scratchpad_weight on the scratchpad tokens of the answers with a negative advantage."""
        weight = self.config.scratchpad_weight
        if weight == 1.0 or not any(t.scratchpad and t.advantage < 0 for t in trajectories):
            return None
        weights = torch.ones(mask.shape, device=mask.device)
        for row, t in enumerate(trajectories):
            if t.advantage < 0:
                weights[row, : t.scratchpad] = weight
        return weights

    @torch.no_grad()
    def _reference_logprobs(self, batch) -> torch.Tensor:
        if self.reference is None:  # LoRA: the base model is the adapters switched off
            with self.policy.model.disable_adapter():
                return self.policy.logprobs(batch)[0]
        current, self.policy.model = self.policy.model, self.reference
        try:
            return self.policy.logprobs(batch)[0]
        finally:
            self.policy.model = current

    @torch.no_grad()
    def _logprobs(self, trajectories: Sequence[Trajectory]) -> list[torch.Tensor]:
        """Log-probabilities of every sample under the current weights, before any update."""
        result = []
        size = self.config.micro_batch_size
        micros = [trajectories[start : start + size] for start in range(0, len(trajectories), size)]
        for index in range(self.world.max(len(micros))):
            if index >= len(micros):
                self._idle_pass(with_grad=False)
                continue
            micro = micros[index]
            batch = self.policy.batch([s.prompt_ids for s in micro], [s.ids for s in micro])
            logprobs, _ = self.policy.logprobs(batch)
            result += [logprobs[i, : len(s.ids)].detach() for i, s in enumerate(micro)]
        return result

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def _group(trajectory: Trajectory) -> tuple[str, str]:
    """The (task type, role) a sequence's loss is averaged in, under optim.loss_mean=group."""
    return trajectory.task_type, trajectory.role.value
