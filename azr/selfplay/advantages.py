"""Task-Relative REINFORCE++ advantages (AZR paper section 3.3.5, Eq. 8; AZR.md section 5).

One baseline per group, where a group is a (task type, role) pair in the paper, so six baselines:
`A = (r - mean) / (std + eps)`, the same advantage on every token of the response. No critic.

- `stats="sample"` (the paper): mean and standard deviation over the group's responses.
- `stats="token"` (the authors' code): each response weighs as many times as it has tokens, so
  longer responses pull the baseline harder.

The standard deviation is the group's own (population, divided by N). A group with one member, or
whose rewards are all equal, gets advantage 0: it carries no signal, and it must never be nan.
Other groupings (e.g. per prompt, GRPO-style) are a matter of the `groups` the caller passes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence

from azr.config import AdvantageStats, choices

STATS = choices(AdvantageStats)


def group_advantages(
    rewards: Sequence[float],
    groups: Sequence[Hashable],
    lengths: Sequence[int] | None = None,
    stats: str = "sample",
    eps: float = 1e-6,
) -> list[float]:
    """Normalised advantages, one per response, each against its own group's statistics.

    `lengths` (response token counts) are needed with `stats="token"`.
    """
    if len(rewards) != len(groups):
        raise ValueError("rewards and groups differ in length")
    if stats not in STATS:
        raise ValueError(f"unknown advantage statistics {stats!r}: choose one of {', '.join(STATS)}")
    if stats == "token" and (lengths is None or len(lengths) != len(rewards)):
        raise ValueError("token-weighted statistics need one length per response")
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    advantages = [0.0] * len(rewards)
    for indices in members.values():
        weights = [float(lengths[i]) if stats == "token" else 1.0 for i in indices]  # type: ignore[index]
        total = sum(weights)
        if len(indices) < 2 or total <= 0:
            continue
        mean = sum(w * rewards[i] for w, i in zip(weights, indices, strict=True)) / total
        variance = sum(w * (rewards[i] - mean) ** 2 for w, i in zip(weights, indices, strict=True)) / total
        std = math.sqrt(variance)
        if std < 1e-12:
            continue
        for i in indices:
            advantages[i] = (rewards[i] - mean) / (std + eps)
    return advantages
