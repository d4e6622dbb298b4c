"""`transformers-cb`: transformers' continuous batching (the engine of `generate_batch`, paged attention).

Every sequence is its own request in a paged KV cache: a row that stops frees its slot for the next
prompt at once, instead of padding until the longest row of its batch ends, and prompts are never
padded. The completions mean exactly what `TransformersGenerator`'s mean (same encoding, stops, cut,
decoding and log-probabilities); only the engine that samples differs.

The engine's loop runs in a background thread, which decides three things here:

- Requests are all queued before the loop starts (`generate_batch` starts it first, so its manager
  is driven here directly): the first step sees all of them, every later step is decided by token
  counts alone, and a seed reproduces the same samples. A loop that picked up requests while they
  were still arriving would draw its random numbers for other rows from one run to the next.
- Autocast is per thread: `policy.compute()` would not reach the loop, and the paged cache is kept
  in the weights' dtype. So the engine runs on weights stored in `model.dtype`:
  `policy.generation_model()` where they are (float32, LoRA's frozen base, each rank's copy with
  several ranks), else, for float32 master weights trained under autocast, a copy of its own in
  `model.dtype`, refreshed after every update (`Policy.listeners`) as each rank's copy is.
- A multi-token stop string cannot be seen inside the loop, and cancelling a request from outside
  would race with it (changing the other rows' samples): such a row runs on to EOS or
  max_new_tokens and is cut after the stop string, as `generate` would have. A stop that is one
  token stops the row inside the loop, like EOS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from azr.config import GenerationConfig
from azr.engine.generation import (
    Completion,
    Sampling,
    TransformersGenerator,
    finish,
    generation_settings,
    split_stops,
)
from azr.engine.policy import Policy, PolicyError

PAGE_SIZE = 64
"""Tokens per cache page: a sequence wastes less than one page (transformers' default, 256, wastes
up to 255 tokens of cache per sequence, and the attention mask grows with the cache)."""
MAX_BATCH_TOKENS = 2048
"""Most tokens in one forward pass (decoding rows plus chunks of prompts being read)."""
_RESULT_WAIT_S = 1.0


class ContinuousBatchingGenerator(TransformersGenerator):
    """The reference generator's stop handling and log-probabilities, sampling by continuous batching."""

    def __init__(self, policy: Policy, config: GenerationConfig) -> None:
        try:
            from transformers import ContinuousBatchingConfig  # noqa: F401
        except ImportError:
            raise PolicyError(
                "generation.backend=transformers-cb needs a transformers with continuous batching "
                "(ContinuousBatchingConfig): upgrade it, or use generation.backend=transformers"
            ) from None
        self.policy = policy
        self.config = config
        self._copy: torch.nn.Module | None = None
        model = policy.generation_model()  # with several ranks, each rank's copy is made now, by all together
        if model is policy.model and not policy.config.lora.enabled and policy.compute_dtype != torch.float32:
            from azr.engine.weights import sampler_copy

            self._copy = sampler_copy(policy)
            policy.listeners.append(self._refresh)

    def _refresh(self) -> None:
        """The copy takes the policy's current weights (after every update: it samples the next rollouts)."""
        from azr.engine.weights import load_merged

        assert self._copy is not None
        load_merged(self._copy, self.policy)

    def generate(self, prompts: Sequence[str], n: int, sampling: Sampling, seed: int) -> list[list[Completion]]:
        encoded = self.policy.encode(prompts, self.config.max_prompt_tokens)
        jobs = [ids for ids in encoded for _ in range(n)]
        if not jobs:
            return [[] for _ in prompts]
        stop_ids, stop_strings = split_stops(self.policy.tokenizer, sampling.stop)
        torch.manual_seed(seed)
        model = self._copy if self._copy is not None else self.policy.generation_model()
        was_training = model.training
        model.eval()
        try:
            rows = self._sample(model, jobs, sampling, stop_ids, seed)
            tokenizer = self.policy.tokenizer
            completions = [finish(tokenizer, p, row, stop_ids, stop_strings) for p, row in zip(jobs, rows, strict=True)]
            if sampling.logprobs:
                completions = self._with_logprobs(model, completions)
        finally:
            model.train(was_training)
        return [completions[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _sample(
        self, model: torch.nn.Module, jobs: list[list[int]], sampling: Sampling, stop_ids: list[int], seed: int
    ) -> list[list[int]]:
        """The tokens sampled for each job, through EOS or a one-token stop, or max_new_tokens of them."""
        from transformers import ContinuousBatchingConfig

        settings = generation_settings(sampling, stop_ids, self.policy.tokenizer.pad_token_id)
        # Sized from the work at hand, not from free memory (transformers' default takes 60% of RAM on
        # CPU, 80-90% of a GPU's): `batch_size` sequences run at once, as with `transformers`, and the
        # cache holds all of them at full length, so none is ever evicted and recomputed. A step reads
        # at least one token of every running sequence and at most MAX_BATCH_TOKENS: longer prompts
        # are read in chunks. (Without flash attention the mask is max_batch_tokens x the cache's
        # tokens, which is what keeps both bounded.)
        running = min(self.config.batch_size, len(jobs))
        pages = math.ceil((max(map(len, jobs)) + sampling.max_new_tokens) / PAGE_SIZE) + 1
        cache = ContinuousBatchingConfig(
            page_size=PAGE_SIZE,
            num_blocks=running * pages,
            max_batch_tokens=max(running, MAX_BATCH_TOKENS),
            max_requests_per_batch=running,
            safety_margin=0.0,
            seed=seed,
            drop_unsupported_processors=False,
        )
        manager = model.init_continuous_batching(generation_config=settings, continuous_batching_config=cache)
        outputs: dict[str, Any] = {}
        try:
            for index, prompt in enumerate(jobs):
                manager.add_request(
                    prompt, request_id=str(index), max_new_tokens=sampling.max_new_tokens, eos_token_id=stop_ids
                )
            manager.warmup()
            manager.start()
            while len(outputs) < len(jobs):
                output = manager.get_result(timeout=_RESULT_WAIT_S)
                if output is not None and output.is_finished():
                    outputs[output.request_id] = output
                elif output is None and not manager.is_running():
                    break
        finally:  # interrupted (Ctrl-C, an error): the loop drops what is left instead of finishing it
            manager.stop(block=True, hard_stop=len(outputs) < len(jobs))
            manager.destroy()
        failed = [outputs[key].error for key in outputs if outputs[key].error]
        if failed or len(outputs) < len(jobs):
            reason = failed[0] if failed else "the generation loop stopped early"
            raise PolicyError(f"generation.backend=transformers-cb failed: {reason}")
        return [list(outputs[str(index)].generated_tokens) for index in range(len(jobs))]

    @torch.no_grad()
    def _with_logprobs(self, model: torch.nn.Module, completions: list[Completion]) -> list[Completion]:
        """The policy's log-probabilities of the sampled tokens, `batch_size` sequences at a time, grouped
        by prompt length as `TransformersGenerator` batches them."""
        order = sorted(range(len(completions)), key=lambda i: len(completions[i].prompt_ids))
        result = list(completions)
        for start in range(0, len(order), self.config.batch_size):
            chunk = [completions[i] for i in order[start : start + self.config.batch_size]]
            batch = self.policy.batch([c.prompt_ids for c in chunk], [c.ids for c in chunk])
            logprobs, _ = self.policy.logprobs(batch, model=model)
            for row, (index, c) in enumerate(zip(order[start : start + len(chunk)], chunk, strict=True)):
                values = tuple(logprobs[row, : len(c.ids)].tolist())
                result[index] = Completion(c.prompt_ids, c.ids, c.text, c.finished, values)
        return result
