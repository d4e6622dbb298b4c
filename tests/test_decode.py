"""The `transformers` engine's decoding loop (azr/engine/decode.py) against transformers' own
`generate`, on the tiny random model (weights widened so that greedy paths vary): the same greedy
tokens while rows stop at different steps and leave the batch, the same cuts at stop tokens and
stop strings, and samples drawn from the temperature- and top_p-shaped distribution."""

import pytest
import torch

from azr.config import GenerationConfig, ModelConfig
from azr.engine import decode as decoding
from azr.engine.generation import Sampling, TransformersGenerator, finish, generation_settings, split_stops
from azr.engine.policy import Policy

PROMPTS = [
    "<D>def f(x):\n    return x * 3<I>",
    "<PD>",
    "import os\nprint(os.getcwd())\n" * 4,
    "class A:\n    def __init__(self, a):\n        self.a = a\n",
    "<A>x<O>1<I>",
    "<N>",
]


@pytest.fixture(scope="module")
def policy():
    policy = Policy(ModelConfig(path="tiny-random", device="cpu"))
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in policy.model.parameters():
            parameter.normal_(0.0, 0.3)
    policy.model.eval()
    return policy


def _batch(policy):
    return policy.batch(policy.encode(PROMPTS, 64), [[] for _ in PROMPTS])


def _reference(policy, sampling: Sampling, stop_ids, stop_strings=()):
    """transformers' `generate`, as the engine called it before this loop, each row cut by `finish`."""
    batch = _batch(policy)
    settings = generation_settings(sampling, stop_ids, policy.tokenizer.pad_token_id, stop_strings=stop_strings or None)
    output = policy.model.generate(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, generation_config=settings,
        tokenizer=policy.tokenizer if stop_strings else None,
    )  # fmt: skip
    return [
        finish(policy.tokenizer, (), row, stop_ids, stop_strings).ids
        for row in output[:, batch.prompt_width :].tolist()
    ]


def _ours(policy, sampling: Sampling, stop_ids, stop_strings=()):
    batch = _batch(policy)
    rows = decoding.decode(
        policy.model, batch.input_ids, batch.attention_mask, sampling.temperature, sampling.top_p,
        sampling.max_new_tokens, stop_ids, stop_strings, policy.tokenizer,
    )  # fmt: skip
    return rows, [finish(policy.tokenizer, (), row, stop_ids, stop_strings).ids for row in rows]


def _greedy_paths(policy, length):
    rows, _ = _ours(policy, Sampling(0.0, 1.0, length), [policy.tokenizer.eos_token_id])
    return rows


def test_greedy_is_generates_while_rows_stop_and_leave_the_batch(policy, monkeypatch):
    paths = _greedy_paths(policy, 24)
    assert len({t for row in paths for t in row}) > 10  # varied paths, not one repeated token
    # stop tokens met at different steps of different rows: rows leave the batch one by one
    stops = sorted({paths[0][3], paths[2][9], paths[4][15]})
    from transformers import DynamicCache

    shrinks = []
    select = DynamicCache.batch_select_indices
    monkeypatch.setattr(DynamicCache, "batch_select_indices", lambda cache, index: (shrinks.append(len(index)),
                        select(cache, index)))  # fmt: skip
    monkeypatch.setattr(decoding, "COMPACT_WHEN", 0.01)  # drop every finished row at once
    for stop_ids in ([policy.tokenizer.eos_token_id, *stops], [policy.tokenizer.eos_token_id]):
        shrinks.clear()
        rows, ours = _ours(policy, Sampling(0.0, 1.0, 24), stop_ids)
        assert ours == _reference(policy, Sampling(0.0, 1.0, 24), stop_ids)
        assert all(len(row) <= 24 for row in rows) and all(set(row[:-1]).isdisjoint(stop_ids) for row in rows)
        if len(stop_ids) > 1:
            assert len(shrinks) >= 2 and shrinks == sorted(shrinks, reverse=True)  # the batch shrank, twice or more
            assert len({len(row) for row in ours}) > 2


def test_a_stop_string_of_several_tokens_cuts_where_generate_cuts(policy):
    tokenizer = policy.tokenizer
    [path] = _greedy_paths(policy, 20)[:1]
    several = next(
        text
        for text in (tokenizer.decode(path[i : i + 2]) for i in range(4, 18))
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) > 1
    )
    stop_ids, stop_strings = split_stops(tokenizer, [several])
    assert stop_strings == [several]
    rows, ours = _ours(policy, Sampling(0.0, 1.0, 20), stop_ids, stop_strings)
    assert ours == _reference(policy, Sampling(0.0, 1.0, 20), stop_ids, stop_strings)
    assert several in tokenizer.decode(ours[0]) and len(ours[0]) < 20
    assert len(rows[0]) <= len(ours[0]) + 4  # the row stopped soon after the string, not at max_new_tokens


def test_samples_follow_the_temperature_and_the_nucleus():
    """The first token of 4,000 rows of one prompt, against softmax(logits / T) restricted to the
    top_p nucleus and renormalised: no token outside it, the likeliest ones' frequencies within 4.5
    standard errors. (The output layer is scaled up so that a few tokens hold most of the mass.)"""
    policy = Policy(ModelConfig(path="tiny-random", device="cpu"))
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in policy.model.parameters():
            parameter.normal_(0.0, 0.3)
        policy.model.lm_head.weight.mul_(6)
    ids = policy.encode(["<D>def f(x):"], 64)[0]
    with torch.no_grad():
        logits = policy.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    rows = 4000
    batch = policy.batch([ids] * rows, [[] for _ in range(rows)])
    for temperature, top_p in ((1.0, 1.0), (0.7, 0.9)):
        probs = torch.softmax(logits / temperature, -1)
        ordered, order = probs.sort(descending=True)
        nucleus = order[: int((ordered.cumsum(0) < top_p).sum()) + 1]
        expected = torch.zeros_like(probs)
        expected[nucleus] = probs[nucleus] / probs[nucleus].sum()
        torch.manual_seed(0)
        first = decoding.decode(policy.model, batch.input_ids, batch.attention_mask, temperature, top_p, 1, [0])
        counts = torch.bincount(torch.tensor([row[0] for row in first]), minlength=len(probs)).float() / rows
        assert set(torch.nonzero(counts).flatten().tolist()) <= set(nucleus.tolist())
        for token in order[:3].tolist():
            p = float(expected[token])
            assert abs(float(counts[token]) - p) <= 4.5 * (p * (1 - p) / rows) ** 0.5 + 1e-9, (temperature, token)


def test_the_engine_samples_reproducibly_and_in_batches_of_any_size(policy):
    sampling = Sampling(temperature=1.0, max_new_tokens=12)
    one, again = (TransformersGenerator(policy, GenerationConfig(batch_size=64)).generate(PROMPTS, 2, sampling, 5)
                  for _ in range(2))  # fmt: skip
    assert [[c.ids for c in g] for g in one] == [[c.ids for c in g] for g in again]
    greedy = Sampling(temperature=0.0, max_new_tokens=12)
    small, large = (TransformersGenerator(policy, GenerationConfig(batch_size=size)).generate(PROMPTS, 1, greedy, 0)
                    for size in (2, 64))  # fmt: skip
    assert [[c.ids for c in g] for g in small] == [[c.ids for c in g] for g in large]
