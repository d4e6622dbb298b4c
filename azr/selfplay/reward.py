"""Rewards (AZR paper section 3.1, Eq. 4-6; AZR.md section 4): pure functions of numbers.

- The proposer is rewarded for *learnable* tasks: `1 - s` where `s` is the fraction of N_mc solver
  rollouts that solve the task, and 0 when the task is always or never solved (Eq. 4).
- The solver is rewarded for being correct: 1 or 0 (Eq. 5).
- Format shaping (Eq. 6, `shaping="paper"`): a well-formed response keeps its role reward, except
  that 0 becomes -0.5; a format error (or, for the proposer, a proposal that is not a valid task)
  gets -1. With `shaping="none"` the role reward is used as is, 0 for anything malformed.
"""

from __future__ import annotations

from collections.abc import Sequence

from azr.config import Shaping, choices

SHAPINGS = choices(Shaping)

FORMAT_ERROR_REWARD = -1.0
WRONG_BUT_WELL_FORMED_REWARD = -0.5


def solve_rate(correct: Sequence[bool]) -> float:
    """Fraction of rollouts that solved the task (0 for none)."""
    return sum(correct) / len(correct) if correct else 0.0


def learnability(rate: float) -> float:
    """The proposer's reward for a valid task solved at `rate` (Eq. 4)."""
    return 1.0 - rate if 0.0 < rate < 1.0 else 0.0


def accuracy(correct: bool) -> float:
    """The solver's reward (Eq. 5)."""
    return 1.0 if correct else 0.0


def shaped(role_reward: float, well_formed: bool, shaping: str = "paper") -> float:
    """The reward trained on (Eq. 6). `well_formed`: the completion followed the template and,
    for the proposer, the proposal became a valid task."""
    if shaping == "none":
        return role_reward if well_formed else 0.0
    if shaping != "paper":
        raise ValueError(f"unknown reward shaping {shaping!r}: choose one of {', '.join(SHAPINGS)}")
    if not well_formed:
        return FORMAT_ERROR_REWARD
    return role_reward if role_reward != 0.0 else WRONG_BUT_WELL_FORMED_REWARD
