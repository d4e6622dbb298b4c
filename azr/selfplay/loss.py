"""The policy-gradient loss (AZR paper section 3.3.5; AZR.md section 5): pure functions of tensors.

PPO's clipped surrogate with a token mean: for each response token,
`max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps))` with `ratio = exp(logp - logp_old)`, averaged
over all response tokens of the mini-batch. With one mini-batch and one epoch (the paper's
setting) the ratio is 1 up to numerics and this is plain REINFORCE with the TRR++ baseline.

Optional, off by default as in the paper: a KL penalty to a reference policy (the k3 estimator,
`exp(ref - logp) - (ref - logp) - 1`, unbiased and never negative), an entropy bonus, and
truncated importance sampling (TIS, Yao et al. 2025): when the sampler's log-probabilities differ
from the trainer's (another engine, other kernels), each token's policy term is weighted by
`min(exp(logp_old - logp_sampler), C)`, a constant of the gradient; and a weight per token on
the policy term (a wrong answer's scratchpad pushed down less: optim.scratchpad_weight).

`token_count` lets gradient accumulation give the same gradient as one big batch: each
micro-batch divides by the token count of the whole mini-batch, not its own. Given per sequence,
it is each sequence's own divisor: for a mean per (task type, role) group, averaged over the groups
(`optim.loss_mean=group`), a sequence divides by its group's token count times the number of
groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LossTerms:
    loss: torch.Tensor
    """What is differentiated: policy loss + kl_coef * kl - entropy_coef * entropy."""
    policy: float
    kl: float
    entropy: float
    clip_fraction: float
    """Fraction of tokens whose ratio was clipped (for the tokens' advantage sign)."""
    sampler_diff: float = 0.0
    """Mean |logp_old - logp_sampler| over the tokens (its share of the token mean), when the
    sampler's log-probabilities are given: how far the sampler is from the trainer."""


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_ratio: float = 0.2,
    token_count: float | torch.Tensor | None = None,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    sampler_logprobs: torch.Tensor | None = None,
    tis_cap: float = 0.0,
    token_weights: torch.Tensor | None = None,
) -> LossTerms:
    """The loss of a (micro-)batch.

    logprobs, old_logprobs, ref_logprobs, entropy, mask: [batch, tokens]; advantages: [batch].
    `mask` is 1 on response tokens. `token_count`: the divisor of the token mean (default: this
    batch's response tokens), or one per sequence [batch]. `token_weights` [batch, tokens]: a weight
    on each token's policy term (optim.scratchpad_weight); the divisor is unchanged.
    """
    mask = mask.to(logprobs.dtype)
    if isinstance(token_count, torch.Tensor):
        divisor = token_count.to(device=logprobs.device, dtype=logprobs.dtype).clamp(min=1.0).unsqueeze(-1)
    else:
        divisor = max(float(mask.sum().item()) if token_count is None else float(token_count), 1.0)
    weight = mask / divisor  # each token's share of the mean
    per_token_advantage = advantages.to(logprobs.dtype).unsqueeze(-1)
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -per_token_advantage * ratio
    clipped = -per_token_advantage * torch.clamp(ratio, 1.0 - clip_ratio, 1.0 + clip_ratio)
    per_token = torch.maximum(unclipped, clipped)
    sampler_diff = 0.0
    if sampler_logprobs is not None:
        gap = (old_logprobs - sampler_logprobs).detach()
        sampler_diff = (gap.abs() * weight).sum().item()
        if tis_cap:
            per_token = per_token * torch.clamp(torch.exp(gap), max=tis_cap)
    if token_weights is not None:
        per_token = per_token * token_weights.to(per_token.dtype)
    policy = (per_token * weight).sum()
    loss = policy
    kl_value = 0.0
    if ref_logprobs is not None and kl_coef:
        delta = ref_logprobs - logprobs
        kl = ((torch.exp(delta) - delta - 1.0) * weight).sum()
        loss = loss + kl_coef * kl
        kl_value = kl.item()
    entropy_value = 0.0
    if entropy is not None and entropy_coef:
        mean_entropy = (entropy * weight).sum()
        loss = loss - entropy_coef * mean_entropy
        entropy_value = mean_entropy.item()
    with torch.no_grad():
        was_clipped = (clipped > unclipped).to(logprobs.dtype)
        clip_fraction = (was_clipped * weight).sum().item()
    return LossTerms(loss, policy.item(), kl_value, entropy_value, clip_fraction, sampler_diff)
