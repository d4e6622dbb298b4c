"""Sampling completions, behind a narrow interface: prompts and sampling settings in, completions out.

`Generator` is what the self-play step calls; `generation.backend` chooses the engine behind it
(`make_generator`), each imported only when chosen:

    transformers      a transformers model, left padding and a KV cache, prompts grouped by
                      length, rows leaving the batch as they stop (`TransformersGenerator`, here;
                      the loop: azr/engine/decode.py)
    transformers-cb   transformers' continuous batching (azr/engine/continuous.py)
    vllm              a vLLM engine beside the trainer on each rank (azr/engine/vllm.py)
    vllm-server       `vllm serve` on other GPUs, over HTTP (azr/engine/vllm_server.py)

An engine that holds its own copy of the weights listens to the policy (`Policy.listeners`) and
brings them up to date after every update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from azr.config import GenerationConfig
from azr.engine.policy import Policy


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    """0 means greedy (evaluation only: self-play must sample)."""
    top_p: float = 1.0
    max_new_tokens: int = 128
    stop: tuple[str, ...] = ()
    """A completion ends at the first of these (kept in it), or at the tokenizer's EOS."""
    logprobs: bool = False
    """Also return the sampled tokens' log-probabilities under the policy (T=1)."""


@dataclass(frozen=True)
class Completion:
    prompt_ids: tuple[int, ...]
    ids: tuple[int, ...]
    """The completion's tokens, through its stop token or EOS (trained on: the model learns to stop)."""
    text: str
    finished: bool
    """False if cut off at max_new_tokens."""
    logprobs: tuple[float, ...] | None = None


class Generator(Protocol):
    def generate(self, prompts: Sequence[str], n: int, sampling: Sampling, seed: int) -> list[list[Completion]]:
        """`n` completions for each prompt, sampled reproducibly from `seed`."""
        ...


def make_generator(policy: Policy, config: GenerationConfig) -> Generator:
    """The engine `config.backend` names, on `policy`'s model (with several ranks, every rank makes
    its own, at the same point: some engines start with a collective)."""
    if config.backend == "transformers-cb":
        from azr.engine.continuous import ContinuousBatchingGenerator

        return ContinuousBatchingGenerator(policy, config)
    if config.backend == "vllm":
        from azr.engine.vllm import VLLMGenerator

        return VLLMGenerator(policy, config)
    if config.backend == "vllm-server":
        from azr.engine.vllm_server import ServerGenerator

        return ServerGenerator(policy, config)
    return TransformersGenerator(policy, config)


class TransformersGenerator:
    """A transformers model, batched by prompt length, left-padded, with a KV cache; each row leaves
    its batch as it stops (azr/engine/decode.py)."""

    def __init__(self, policy: Policy, config: GenerationConfig) -> None:
        self.policy = policy
        self.config = config
        policy.generation_model()  # with several ranks, each rank's copy is made now, by all together

    def generate(self, prompts: Sequence[str], n: int, sampling: Sampling, seed: int) -> list[list[Completion]]:
        encoded = self.policy.encode(prompts, self.config.max_prompt_tokens)
        jobs = [(i, ids) for i, ids in enumerate(encoded) for _ in range(n)]
        jobs.sort(key=lambda job: len(job[1]))  # similar lengths together: little padding
        stop_ids, stop_strings = split_stops(self.policy.tokenizer, sampling.stop)
        results: list[list[Completion]] = [[] for _ in prompts]
        torch.manual_seed(seed)
        model = self.policy.generation_model()
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(jobs), self.config.batch_size):
                chunk = jobs[start : start + self.config.batch_size]
                for (index, _), completion in zip(
                    chunk,
                    self._generate(model, [ids for _, ids in chunk], sampling, stop_ids, stop_strings),
                    strict=True,
                ):
                    results[index].append(completion)
        finally:
            model.train(was_training)
        return results

    @torch.no_grad()
    def _generate(
        self,
        model: torch.nn.Module,
        prompts: list[list[int]],
        sampling: Sampling,
        stop_ids: list[int],
        stop_strings: list[str],
    ) -> list[Completion]:
        from azr.engine.decode import decode

        tokenizer = self.policy.tokenizer
        batch = self.policy.batch(prompts, [[] for _ in prompts])
        with self.policy.compute():
            rows = decode(
                model, batch.input_ids, batch.attention_mask, sampling.temperature, sampling.top_p,
                sampling.max_new_tokens, stop_ids, stop_strings, tokenizer,
            )  # fmt: skip
        completions = [
            finish(tokenizer, prompt, row, stop_ids, stop_strings) for prompt, row in zip(prompts, rows, strict=True)
        ]
        if sampling.logprobs and completions:
            logprobs, _ = self.policy.logprobs(self.policy.batch(prompts, [c.ids for c in completions]), model=model)
            completions = [
                Completion(c.prompt_ids, c.ids, c.text, c.finished, tuple(logprobs[i, : len(c.ids)].tolist()))
                for i, c in enumerate(completions)
            ]
        return completions


def generation_settings(sampling: Sampling, stop_ids: Sequence[int], pad_id: int, **extra: Any) -> Any:
    """A fresh transformers GenerationConfig for `sampling`, so nothing of the model's own
    generation_config (a repetition penalty, a top_k) bends the samples away from the policy that
    is trained: greedy at temperature 0 (evaluation), else temperature and top_p, top_k off."""
    from transformers import GenerationConfig

    common = {"max_new_tokens": sampling.max_new_tokens, "eos_token_id": list(stop_ids), "pad_token_id": pad_id}
    if sampling.temperature == 0:
        return GenerationConfig(do_sample=False, **common, **extra)
    return GenerationConfig(
        do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0, **common, **extra
    )


def split_stops(tokenizer: Any, stop: Sequence[str]) -> tuple[list[int], list[str]]:
    """EOS and the stop strings that are one token, which stop by id (fast, and inside any engine);
    the others, matched as strings."""
    ids, strings = [tokenizer.eos_token_id], []
    for text in stop:
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(tokens) == 1:
            ids.append(tokens[0])
        else:
            strings.append(text)
    return ids, strings


def finish(
    tokenizer: Any,
    prompt: Sequence[int],
    row: Sequence[int],
    stop_ids: Sequence[int],
    stop_strings: Sequence[str],
    logprobs: Sequence[float] | None = None,
) -> Completion:
    """A sampled row as a completion, whatever engine sampled it: cut through its first stop (an id,
    or the shortest prefix whose text holds a stop string; an engine may have sampled past it),
    decoded without a final EOS; `logprobs`, the sampler's, cut to match."""
    ids, finished = _cut(list(row), set(stop_ids))
    if not finished and stop_strings:
        ids, finished = _cut_at_string(ids, list(stop_strings), tokenizer.decode)
    text = tokenizer.decode(ids[:-1] if finished and ids[-1] == tokenizer.eos_token_id else ids)
    kept = None if logprobs is None else tuple(float(x) for x in logprobs[: len(ids)])
    return Completion(tuple(prompt), tuple(ids), text, finished, kept)


def _cut(row: list[int], stop_ids: set[int]) -> tuple[list[int], bool]:
    """The completion through its first stop token (after it, `generate` pads)."""
    for position, token in enumerate(row):
        if token in stop_ids:
            return row[: position + 1], True
    return row, False


def _cut_at_string(ids: list[int], stops: list[str], decode: Any) -> tuple[list[int], bool]:
    """The shortest prefix of `ids` whose text contains a stop string, if any: after a stop string
    `generate` pads, and padding was never sampled, so it must not be trained on. Containing a stop
    string only grows with the prefix, so a binary search finds it in a few decodes."""

    def stopped(length: int) -> bool:
        text = decode(ids[:length])
        return any(stop in text for stop in stops)

    if not stopped(len(ids)):
        return ids, False
    low, high = 1, len(ids)
    while low < high:
        middle = (low + high) // 2
        if stopped(middle):
            high = middle
        else:
            low = middle + 1
    return ids[:low], True
