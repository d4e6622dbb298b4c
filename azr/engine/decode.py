"""The `transformers` engine's decoding loop: a KV cache, and rows that leave the batch as they stop.

HF `generate` keeps a row that has stopped in its batch, padding, until the batch's longest row
ends. On a CPU a decoding step costs about in proportion to its rows, and self-play's batches mix
completions of 30-90 tokens with a longest of ~190. Here a finished row is dropped from the batch
(and its KV cache) once a quarter of the batch has finished: the same 120 rows of a self-play step
generate 1.7 times faster than with `generate` on 2 CPU cores (experiments/run-time).

Sampling is `generate`'s with the settings of `generation_settings`: the last position's logits
in float32, divided by the temperature, nucleus-filtered (top_p, by transformers' own warper), one
multinomial draw per row from torch's global generator (seeded by the caller); argmax at
temperature 0. A stop token ends a row inside the loop; a stop string of several tokens is looked
for in the row's last tokens, and `finish` (azr.engine.generation) cuts each row exactly, as after
`generate`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

COMPACT_WHEN = 0.25
"""Drop the finished rows once they are this fraction of the batch (copying the cache has a cost)."""


@torch.no_grad()
def decode(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    stop_strings: Sequence[str] = (),
    tokenizer: Any = None,
) -> list[list[int]]:
    """The new tokens of each left-padded row, through its first stop token (or stop string, give or
    take a few tokens), at most `max_new_tokens`."""
    from transformers import DynamicCache
    from transformers.generation import TopPLogitsWarper

    nucleus = TopPLogitsWarper(top_p) if temperature > 0 and top_p < 1 else None
    stops = torch.tensor(list(stop_ids), device=input_ids.device)
    window = max((len(s) for s in stop_strings), default=0) + 4  # tokens: a stop string spans at most its length
    rows: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    batch = list(range(input_ids.shape[0]))  # the row each position of the batch holds
    finished = [False] * len(batch)  # per position of the batch
    cache = {_cache_argument(model): DynamicCache(config=model.config)}  # filled in place by each forward
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True, logits_to_keep=1,
        **cache,
    ).logits[:, -1, :]  # fmt: skip
    position = positions[:, -1:]
    for step in range(max_new_tokens):
        scores = logits.float()
        if temperature == 0:
            tokens = scores.argmax(-1)
        else:
            scores = scores / temperature
            if nucleus is not None:
                scores = nucleus(None, scores)
            tokens = torch.multinomial(torch.softmax(scores, dim=-1), 1).squeeze(1)
        ended = torch.isin(tokens, stops).tolist()
        for i, token in enumerate(tokens.tolist()):
            if finished[i]:
                continue
            rows[batch[i]].append(token)
            if stop_strings and not ended[i]:
                tail = tokenizer.decode(rows[batch[i]][-window:])
                ended[i] = any(stop in tail for stop in stop_strings)
            finished[i] = ended[i]
        if all(finished) or step + 1 == max_new_tokens:
            break
        if sum(finished) >= COMPACT_WHEN * len(batch):
            keep = [i for i, done in enumerate(finished) if not done]
            index = torch.tensor(keep, device=input_ids.device)
            next(iter(cache.values())).batch_select_indices(index)
            tokens, attention_mask, position = tokens[index], attention_mask[index], position[index]
            batch, finished = [batch[i] for i in keep], [False] * len(keep)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(batch), 1))], dim=-1)
        position = position + 1
        logits = model(
            input_ids=tokens[:, None], attention_mask=attention_mask, position_ids=position, use_cache=True,
            logits_to_keep=1, **cache,
        ).logits[:, -1, :]  # fmt: skip
    return rows


def _cache_argument(model: torch.nn.Module) -> str:
    """`cache` in recent transformers, `past_key_values` before (still accepted, with a warning)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT wraps the forward
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
