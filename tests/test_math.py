"""Rewards, TRR++ advantages and the loss, against numbers worked out by hand."""

import math

import pytest
import torch

from azr.eval.harness import pass_at_k
from azr.selfplay.advantages import group_advantages
from azr.selfplay.loss import policy_loss
from azr.selfplay.reward import accuracy, learnability, shaped, solve_rate

# -- rewards ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("correct", "rate", "reward"),
    [
        ([True, False, False, False], 0.25, 0.75),  # hard but learnable: high reward
        ([True, True, True, False], 0.75, 0.25),
        ([True] * 8, 1.0, 0.0),  # too easy
        ([False] * 8, 0.0, 0.0),  # impossible (or unsolvable by this solver)
        ([], 0.0, 0.0),
    ],
)
def test_learnability(correct, rate, reward):
    assert solve_rate(correct) == rate
    assert learnability(rate) == reward


@pytest.mark.parametrize(
    ("role_reward", "well_formed", "paper", "none"),
    [
        (1.0, True, 1.0, 1.0),  # a correct answer
        (0.75, True, 0.75, 0.75),  # a learnable task
        (0.0, True, -0.5, 0.0),  # wrong answer / task too easy or impossible, but well formed
        (0.0, False, -1.0, 0.0),  # format error, or an invalid proposal
        (1.0, False, -1.0, 0.0),  # a role reward cannot rescue a malformed response
    ],
)
def test_format_shaping(role_reward, well_formed, paper, none):
    assert shaped(role_reward, well_formed, "paper") == paper
    assert shaped(role_reward, well_formed, "none") == none


def test_accuracy_and_unknown_shaping():
    assert (accuracy(True), accuracy(False)) == (1.0, 0.0)
    with pytest.raises(ValueError, match="choose one of paper, none"):
        shaped(1.0, True, "eq7")


# -- TRR++ -----------------------------------------------------------------------------------------


def test_one_baseline_per_group_with_uneven_groups():
    rewards = [1, 0, 0, 1, 1, 0, 0, 0.5, 0.3, 0.3]
    groups = ["a", "a", "a", "a", "b", "b", "b", "c", "d", "d"]
    adv = group_advantages(rewards, groups)
    # a: mean 1/2, std 1/2 -> +-1
    assert adv[:4] == pytest.approx([1, -1, -1, 1], abs=1e-5)
    # b: [1, 0, 0]: mean 1/3, variance (4/9 + 1/9 + 1/9) / 3 = 2/9, std sqrt(2)/3
    std = math.sqrt(2) / 3
    assert adv[4:7] == pytest.approx([(2 / 3) / std, (-1 / 3) / std, (-1 / 3) / std], abs=1e-5)
    assert adv[4] == pytest.approx(math.sqrt(2), abs=1e-5)
    # c: a lone member; d: zero variance: no signal, and never nan
    assert adv[7:] == [0.0, 0.0, 0.0]


def test_token_weighted_statistics():
    # rewards [1, 0] with 3 and 1 tokens: mean 3/4; variance (3 * 1/16 + 9/16) / 4 = 3/16
    adv = group_advantages([1, 0], ["g", "g"], lengths=[3, 1], stats="token")
    std = math.sqrt(3 / 16)
    assert adv == pytest.approx([0.25 / std, -0.75 / std], abs=1e-5)
    assert adv == pytest.approx([1 / math.sqrt(3), -math.sqrt(3)], abs=1e-5)
    # per-sample statistics of the same pair: +-1
    assert group_advantages([1, 0], ["g", "g"]) == pytest.approx([1, -1], abs=1e-5)


def test_empty_and_bad_inputs():
    assert group_advantages([], []) == []
    assert group_advantages([5.0], ["x"]) == [0.0]
    with pytest.raises(ValueError, match="need one length"):
        group_advantages([1, 0], ["g", "g"], stats="token")
    with pytest.raises(ValueError, match="choose one of sample, token"):
        group_advantages([1], ["g"], stats="batch")


# -- the loss --------------------------------------------------------------------------------------


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_ratio_one_is_reinforce():
    logp = t([math.log(0.5), math.log(0.25)])
    terms = policy_loss(logp, logp.clone(), torch.tensor([2.0], dtype=torch.float64), t([1, 1]))
    assert terms.loss.item() == pytest.approx(-2.0)  # -A on every token, token mean
    assert terms.clip_fraction == 0.0


def test_clipping_by_hand():
    old = t([math.log(0.2), math.log(0.4)])
    new = old + t([math.log(1.5), math.log(0.5)])  # ratios 1.5 and 0.5
    mask = t([1, 1])
    # A = +2: token 1 max(-3, -2.4) = -2.4 (clipped), token 2 max(-1, -1.6) = -1 -> mean -1.7
    positive = policy_loss(new, old, torch.tensor([2.0], dtype=torch.float64), mask, clip_ratio=0.2)
    assert positive.loss.item() == pytest.approx(-1.7)
    assert positive.clip_fraction == pytest.approx(0.5)
    # A = -1: token 1 max(1.5, 1.2) = 1.5, token 2 max(0.5, 0.8) = 0.8 (clipped) -> mean 1.15
    negative = policy_loss(new, old, torch.tensor([-1.0], dtype=torch.float64), mask, clip_ratio=0.2)
    assert negative.loss.item() == pytest.approx(1.15)
    assert negative.clip_fraction == pytest.approx(0.5)


def test_token_mean_over_the_whole_batch_and_the_mask():
    logp = t([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    mask = t([1, 1, 0], [1, 0, 0])  # 3 response tokens in all
    advantages = torch.tensor([1.0, -2.0], dtype=torch.float64)
    # (-1 - 1 + 2) / 3 = 0: each token weighs the same, whichever response it is in
    assert policy_loss(logp, logp, advantages, mask).loss.item() == pytest.approx(0.0)
    # with an outside token count (a micro-batch of a larger mini-batch): divided by it
    assert policy_loss(logp[:1], logp[:1], advantages[:1], mask[:1], token_count=3).loss.item() == pytest.approx(-2 / 3)


def test_a_mean_per_group_by_hand():
    """optim.loss_mean=group: rows 1-2 are one group (2 + 1 tokens), row 3 another (4 tokens). The
    token mean is (-1 - 1 + 2 - 4 x 0.5) / 7 = -2/7; the group mean averages (-1 - 1 + 2) / 3 = 0
    and (4 x -0.5) / 4 = -0.5 into -0.25: each row divides by its group's tokens x 2 groups."""
    logp = t([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0])
    mask = t([1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1])
    advantages = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    assert policy_loss(logp, logp, advantages, mask).loss.item() == pytest.approx(-2 / 7)
    per_group = torch.tensor([3.0 * 2, 3.0 * 2, 4.0 * 2], dtype=torch.float64)
    assert policy_loss(logp, logp, advantages, mask, token_count=per_group).loss.item() == pytest.approx(-0.25)
    # a micro-batch holding row 3 alone, with the divisors of the whole mini-batch: its share, -0.25
    alone = policy_loss(logp[2:], logp[2:], advantages[2:], mask[2:], token_count=per_group[2:])
    assert alone.loss.item() == pytest.approx(-0.25)


def test_gradient_is_minus_advantage_over_tokens():
    logp = torch.tensor([[-1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    terms = policy_loss(logp, logp.detach(), torch.tensor([3.0], dtype=torch.float64), t([1, 1]))
    terms.loss.backward()
    assert logp.grad[0].tolist() == pytest.approx([-1.5, -1.5])  # d/dlogp of -A * ratio / 2


def test_token_weights_by_hand():
    """optim.scratchpad_weight: A = -1, ratio 1, weights [0, 0.5, 1] on 3 tokens -> terms 0, 0.5, 1,
    token mean 0.5 (the divisor stays 3); the gradient is -A * weight / 3 per token."""
    logp = torch.tensor([[-1.0, -2.0, -0.5]], dtype=torch.float64, requires_grad=True)
    weights = t([0.0, 0.5, 1.0])
    terms = policy_loss(logp, logp.detach(), torch.tensor([-1.0], dtype=torch.float64), t([1, 1, 1]),
                        token_weights=weights)  # fmt: skip
    assert terms.loss.item() == pytest.approx(0.5)
    terms.loss.backward()
    assert logp.grad[0].tolist() == pytest.approx([0.0, 0.5 / 3, 1 / 3])


def test_kl_and_entropy_terms():
    logp = t([0.0, 0.0])
    ref = t([math.log(2), 0.0])  # k3: exp(d) - d - 1 = 2 - ln 2 - 1 on token 1, 0 on token 2
    entropy = t([1.0, 3.0])
    zero = torch.tensor([0.0], dtype=torch.float64)
    terms = policy_loss(logp, logp, zero, t([1, 1]), ref_logprobs=ref, kl_coef=0.5, entropy=entropy, entropy_coef=0.1)
    kl = (1 - math.log(2)) / 2
    assert terms.kl == pytest.approx(kl)
    assert terms.entropy == pytest.approx(2.0)
    assert terms.loss.item() == pytest.approx(0.5 * kl - 0.1 * 2.0)
    # off by default: the same call without coefficients is the policy term alone
    assert policy_loss(logp, logp, zero, t([1, 1]), ref_logprobs=ref, entropy=entropy).loss.item() == 0.0


def test_truncated_importance_sampling_by_hand():
    """TIS: the trainer's old log-probs [-1, -2], the sampler's [-1.5, -1] -> weights exp(0.5) =
    1.6487, capped at 1.5, and exp(-1) = 0.3679; A = 1, ratio 1: the token terms -1.5 and -0.3679,
    mean -0.93394; the gradient is each term over the 2 tokens; the sampler is 0.75 nats a token away."""
    logp = torch.tensor([[-1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    sampler = t([-1.5, -1.0])
    terms = policy_loss(
        logp, logp.detach(), torch.tensor([1.0], dtype=torch.float64), t([1, 1]), sampler_logprobs=sampler, tis_cap=1.5
    )
    assert terms.loss.item() == pytest.approx(-(1.5 + math.exp(-1.0)) / 2)
    terms.loss.backward()
    assert logp.grad[0].tolist() == pytest.approx([-0.75, -math.exp(-1.0) / 2])
    assert terms.sampler_diff == pytest.approx(0.75)
    # without a cap the sampler's numbers are only measured: the loss is REINFORCE's
    plain = policy_loss(
        logp.detach(), logp.detach(), torch.tensor([1.0], dtype=torch.float64), t([1, 1]), sampler_logprobs=sampler
    )
    assert plain.loss.item() == pytest.approx(-1.0) and plain.sampler_diff == pytest.approx(0.75)


# -- pass@k ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 1, 1, 1 / 5),  # pass@1 is the fraction correct
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (200, 1, 100, 0.5),  # C(199,100)/C(200,100) = 100/200
        (4, 0, 2, 0.0),
        (4, 3, 2, 1.0),  # fewer wrong answers than k: every draw of k holds a correct one
        (1, 1, 1, 1.0),
    ],
)
def test_pass_at_k_by_hand(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_bad_counts():
    for n, c, k in ((4, 5, 1), (4, 2, 5), (4, 2, 0), (4, -1, 1)):
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)
