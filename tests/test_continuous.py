"""`generation.backend=transformers-cb` (azr/engine/continuous.py) against the reference backend,
`TransformersGenerator`, on the tiny random model on the CPU: the same completions (greedy), the same
cuts (EOS, stop strings, max_new_tokens), n per prompt in order, reproducible samples, and
log-probabilities only when asked.

The tiny model as initialised repeats one token whatever it reads; its weights are widened here so
that greedy paths vary from token to token, and a wrong position, cache page or prompt cut shows."""

import pytest
import torch

from azr.config import GenerationConfig, ModelConfig
from azr.engine.continuous import PAGE_SIZE, ContinuousBatchingGenerator
from azr.engine.generation import Sampling, TransformersGenerator, make_generator
from azr.engine.policy import Policy

MAX_PROMPT = 96
PROMPTS = [
    "<D>def f(x):\n    return x * 3<I>",
    "<PD>",
    "import os\nprint(os.getcwd())\n" * 12,  # longer than MAX_PROMPT: cut from the left
    "class A:\n    def __init__(self, a, b):\n        self.a = a\n        self.b = b\n" * 3,  # over a page
    "<A>x<O>1<I>",
]


def _widened(policy: Policy) -> Policy:
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in policy.model.parameters():
            parameter.normal_(0.0, 0.3)
    policy.weights_changed()
    return policy


@pytest.fixture(scope="module")
def policy():
    return _widened(Policy(ModelConfig(path="tiny-random", device="cpu")))


@pytest.fixture(scope="module")
def pair(policy):
    """(reference, continuous batching) with 2 sequences at a time: 5 prompts queue for the slots."""
    settings = {"batch_size": 2, "max_prompt_tokens": MAX_PROMPT}
    reference = TransformersGenerator(policy, GenerationConfig(**settings))
    continuous = make_generator(policy, GenerationConfig(backend="transformers-cb", **settings))
    assert isinstance(continuous, ContinuousBatchingGenerator)
    return reference, continuous


def _same(left, right):
    assert [[(c.prompt_ids, c.ids, c.text, c.finished) for c in group] for group in left] == [
        [(c.prompt_ids, c.ids, c.text, c.finished) for c in group] for group in right
    ]


def test_greedy_completions_are_the_reference_ones(policy, pair):
    encoded = policy.encode(PROMPTS, MAX_PROMPT)
    assert len(encoded[2]) == MAX_PROMPT and len(encoded[3]) > PAGE_SIZE
    greedy = Sampling(temperature=0.0, max_new_tokens=40)
    reference, continuous = (g.generate(PROMPTS, 1, greedy, seed=0) for g in pair)
    _same(reference, continuous)
    assert len({t for group in continuous for t in group[0].ids}) > 10  # varied paths, not one repeated token
    assert all(not group[0].finished and len(group[0].ids) == 40 for group in continuous)  # cut: unfinished
    assert [group[0].prompt_ids for group in continuous] == [tuple(ids) for ids in encoded]


def test_stops_cut_where_the_reference_cuts(policy, pair):
    """A one-token stop, a stop string of several tokens, and EOS, each taken from the greedy path
    so that it is met in the middle of it."""
    tokenizer = policy.tokenizer

    def tokens(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    prompts = PROMPTS[:3]
    greedy = Sampling(temperature=0.0, max_new_tokens=30)
    [[free]] = pair[0].generate(prompts[:1], 1, greedy, seed=0)
    single = next(t for t in free.ids[3:] if tokens(tokenizer.decode([t])) == [t])
    pairs = (tokenizer.decode(list(free.ids[i : i + 2])) for i in range(3, len(free.ids) - 1))
    several = next(text for text in pairs if len(tokens(text)) > 1)
    for stop in (tokenizer.decode([single]), several):
        reference, continuous = (g.generate(prompts, 1, Sampling(0.0, 1.0, 30, (stop,)), seed=0) for g in pair)
        _same(reference, continuous)
        first = continuous[0][0]
        assert first.finished and len(first.ids) < 30 and stop in first.text
    original = tokenizer.eos_token
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(single)
    try:
        reference, continuous = (g.generate(prompts, 1, greedy, seed=0) for g in pair)
    finally:
        tokenizer.eos_token = original
    _same(reference, continuous)
    first = continuous[0][0]
    assert first.finished and first.ids[-1] == single and first.text == tokenizer.decode(list(first.ids[:-1]))


def test_n_completions_per_prompt_in_prompt_order(policy, pair):
    greedy = Sampling(temperature=0.0, max_new_tokens=12)
    reference = pair[0].generate(PROMPTS, 1, greedy, seed=0)
    continuous = pair[1].generate(PROMPTS, 3, greedy, seed=0)
    assert [len(group) for group in continuous] == [3] * len(PROMPTS)
    _same([group * 3 for group in reference], continuous)
    sampled = pair[1].generate(PROMPTS, 3, Sampling(max_new_tokens=12), seed=0)
    encoded = policy.encode(PROMPTS, MAX_PROMPT)
    assert [{c.prompt_ids for c in group} for group in sampled] == [{tuple(ids)} for ids in encoded]
    assert all(len({c.ids for c in group}) > 1 for group in sampled)  # sampled: the n differ
    assert pair[1].generate(PROMPTS, 0, greedy, seed=0) == [[] for _ in PROMPTS]


def test_samples_are_reproducible_from_the_seed(pair):
    sampling = Sampling(temperature=1.0, top_p=0.9, max_new_tokens=16)
    first, again, other = (pair[1].generate(PROMPTS, 2, sampling, seed) for seed in (7, 7, 8))
    _same(first, again)
    assert [[c.ids for c in g] for g in first] != [[c.ids for c in g] for g in other]


def test_logprobs_only_when_asked_and_as_the_reference_computes_them(pair):
    greedy = Sampling(temperature=0.0, max_new_tokens=10)
    assert all(c.logprobs is None for group in pair[1].generate(PROMPTS, 1, greedy, seed=0) for c in group)
    asked = Sampling(temperature=0.0, max_new_tokens=10, logprobs=True)
    reference, continuous = (g.generate(PROMPTS, 1, asked, seed=0) for g in pair)
    _same(reference, continuous)
    for ours, theirs in zip(continuous, reference, strict=True):
        assert len(ours[0].logprobs) == len(ours[0].ids)
        assert ours[0].logprobs == pytest.approx(theirs[0].logprobs, abs=1e-4)


def test_bfloat16_runs_on_its_own_copy_that_follows_updates():
    """Float32 weights trained under bfloat16 autocast: the engine samples from a bfloat16 copy
    (autocast does not reach its thread), refreshed after every update as each rank's copy is. (Its
    greedy paths are not compared with the reference's: bfloat16 weights and autocast over float32
    ones round differently, and a random model's near-ties then go either way.)"""
    policy = Policy(ModelConfig(path="tiny-random", device="cpu", dtype="bfloat16"))
    config = GenerationConfig(backend="transformers-cb", batch_size=4, max_prompt_tokens=MAX_PROMPT)
    continuous = ContinuousBatchingGenerator(policy, config)
    greedy = Sampling(temperature=0.0, max_new_tokens=12)
    before = continuous.generate(PROMPTS, 1, greedy, seed=0)
    _widened(policy)  # an update: weights_changed() refreshes the copy
    after = continuous.generate(PROMPTS, 1, greedy, seed=0)
    assert [g[0].ids for g in after] != [g[0].ids for g in before]
    copy = continuous._copy.state_dict()
    assert all(copy[name].dtype == torch.bfloat16 for name in copy)
    assert all(torch.equal(copy[name], weight.to(torch.bfloat16)) for name, weight in policy.model.state_dict().items())
