"""`vllm`: a vLLM engine beside the trainer on each rank, in this process, on this rank's GPU.

The completions mean exactly what `TransformersGenerator`'s mean: prompts are encoded and cut from
the left by `Policy.encode` and sent as token ids (vLLM re-tokenizing text could split it
otherwise); a completion runs through its first stop (EOS, or a stop string, kept in `ids` and
`text`), or is cut at max_new_tokens (`finished` False); `text` decodes the ids without a final EOS.
Each sampled token's log-probability comes with it, always, and is of the raw distribution
(`logprobs_mode="raw_logprobs"`: before temperature or any other processing, so at T=1, as the
trainer computes its own).

Checked against vLLM's source of 0.20.0 and 0.34.0 (paths under vllm/):
    LLM(..., enable_sleep_mode, logprobs_mode, distributed_executor_backend)  entrypoints/llm.py,
        engine/arg_utils.py (EngineArgs), config/model.py (LogprobsMode)
    LLM.sleep / wake_up(tags) / reset_prefix_cache                          entrypoints/llm.py,
        v1/executor/abstract.py (what sleeps, by tag)
    LLM.apply_model(fn): fn(model) in the worker, here in this process       entrypoints/llm.py,
        v1/worker/worker_base.py; the model's `load_weights(weights)`: model_executor/models/*
    llm_engine.engine_core.shutdown()                                        v1/engine/core_client.py
    SamplingParams (top_k 0: off; seed; stop_token_ids; ignore_eos)          sampling_params.py,
        v1/core/sched/utils.py (check_stop)
    external_launcher: one engine per torchrun rank, in-process              v1/executor/uniproc_executor.py,
        config/parallel.py, distributed/parallel_state.py (ranks outside TP x PP: "ExternalDP")
"""

from __future__ import annotations

import functools
import gc
import hashlib
import os
from collections.abc import Sequence
from typing import Any

import torch

from azr.config import GenerationConfig
from azr.engine.generation import Completion, Sampling, finish, split_stops
from azr.engine.policy import Policy, PolicyError
from azr.engine.weights import buckets, merged_weights

SUPPORTED = ">=0.20,<0.35"
"""vLLM 0.20 is the first that accepts transformers 5 (azr's models are in its format); 0.34 is the
newest read. The extra `azr[vllm]` pins the same range."""
INSTALL = "pip install 'azr[vllm]'"
BUCKET_BYTES = 1 << 30
"""Weights are pushed in groups of about this many bytes: few calls, and little memory held twice."""
_TAGS = ("weights", "kv_cache")
"""What a level-1 sleep puts away: the weights (offloaded to CPU memory) and the KV cache (freed)."""


class VLLMGenerator:
    """One vLLM engine per rank, made on every rank at the same point (under torchrun its start is
    a collective), holding its own copy of the weights.

    Lifecycle, all of it in `_wake`, `_sleep`, `_push` and `close`:
    - built awake, then given the policy's current weights (the run may have resumed from a
      checkpoint) and put to sleep; it listens to `Policy.listeners` from then on;
    - between uses it sleeps at level 1 (weights in CPU memory, KV cache freed), so the trainer
      has the GPU; `generate` wakes it, samples, and puts it back to sleep;
    - after every weight change (`_push`): the weights alone are woken, every weight is pushed
      once in buckets through the model's `load_weights`, then the KV cache comes back, the prefix
      cache is reset (its blocks were computed with the old weights) and it sleeps again, which
      offloads the new weights. Nothing is ever reloaded from disk (that would drop the pushed
      weights), and no sleep discards the weights (level 2 would need exactly such a reload);
    - `close` shuts it down.
    `_asleep` records what sleeps, so nothing is put to sleep or woken twice.
    """

    def __init__(self, policy: Policy, config: GenerationConfig) -> None:
        self.policy = policy
        self.config = config
        vllm = _import_vllm()
        self._vllm = vllm
        settings: dict[str, Any] = {
            "dtype": str(policy.compute_dtype).removeprefix("torch."),
            # Every request carries its own seed; the engine's only seeds what none is given.
            "seed": policy.world.rank,
            "tensor_parallel_size": 1,
            "gpu_memory_utilization": config.vllm_memory,
            "max_model_len": config.max_prompt_tokens + config.max_new_tokens,
            "max_num_seqs": config.batch_size,
            "enable_prefix_caching": True,
            "enable_sleep_mode": True,
            # The log-probabilities of the model's own distribution: no temperature applied.
            "logprobs_mode": "raw_logprobs",
        }
        if policy.world.sharded:
            # One engine per torchrun rank, on the rank's own GPU (LOCAL_RANK), in torchrun's process group.
            settings["distributed_executor_backend"] = "external_launcher"
        self._llm: Any = vllm.LLM(model=policy.path, **settings)
        self._asleep: set[str] = set()
        try:
            self._push()
        except BaseException:
            self.close()
            raise
        policy.listeners.append(self._push)

    def generate(self, prompts: Sequence[str], n: int, sampling: Sampling, seed: int) -> list[list[Completion]]:
        if self._llm is None:
            raise PolicyError("generation.backend=vllm: the engine was closed")
        if not prompts or n < 1:
            return [[] for _ in prompts]
        encoded = self.policy.encode(prompts, self.config.max_prompt_tokens)
        stop_ids, stop_strings = split_stops(self.policy.tokenizer, sampling.stop)
        jobs = [ids for ids in encoded for _ in range(n)]
        params = [self._params(sampling, stop_ids, stop_strings, _request_seed(seed, i)) for i in range(len(jobs))]
        self._wake()
        try:
            outputs = self._llm.generate([{"prompt_token_ids": ids} for ids in jobs], params, use_tqdm=False)
        finally:
            self._sleep()
        completions = [
            self._completion(ids, output.outputs[0], stop_ids, stop_strings)
            for ids, output in zip(jobs, outputs, strict=True)
        ]
        return [completions[i * n : (i + 1) * n] for i in range(len(prompts))]

    def close(self) -> None:
        """Shut the engine down and free its GPU memory; a second call does nothing. vLLM's teardown
        also destroys torch's default process group (0.34: EngineCore.shutdown calls
        cleanup_dist_env_and_memory), which under torchrun is the trainer's: this belongs at the end
        of a run, after its last collective."""
        llm, self._llm = self._llm, None
        if llm is None:
            return
        if self._push in self.policy.listeners:
            self.policy.listeners.remove(self._push)
        llm.llm_engine.engine_core.shutdown()
        del llm
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- the engine's state --------------------------------------------------------------------

    def _wake(self, tags: tuple[str, ...] = _TAGS) -> None:
        """Bring back what of `tags` sleeps."""
        waking = [tag for tag in tags if tag in self._asleep]
        if not waking:
            return
        # No tags: everything, which is how vLLM wants to be woken before it is used again.
        self._llm.wake_up(tags=None if set(waking) == set(_TAGS) else waking)
        self._asleep.difference_update(waking)

    def _sleep(self) -> None:
        """Level 1: the weights go to CPU memory, the KV cache is freed. vLLM skips a sleep while
        any of its memory still sleeps (0.20: `Executor.sleep` returns when `is_sleeping`), which
        would leave just-pushed weights on the GPU: what still sleeps is woken first."""
        if self._asleep == set(_TAGS):
            return
        self._wake()
        self._llm.sleep(level=1)
        self._asleep = set(_TAGS)

    def _push(self) -> None:
        """The policy's weights into the engine (a listener of the policy: after every update and
        checkpoint load). Under FSDP2 reading each weight is a collective, so every rank reads them
        all, in order, and pushes them to its own engine."""
        self._wake(("weights",))
        with torch.no_grad():
            for bucket in buckets(merged_weights(self.policy, self.policy.compute_dtype), BUCKET_BYTES):
                self._llm.apply_model(functools.partial(_load, bucket))
        self._wake()
        self._llm.reset_prefix_cache()
        self._sleep()

    # -- requests and answers ------------------------------------------------------------------

    def _params(self, sampling: Sampling, stop_ids: list[int], stop_strings: list[str], seed: int) -> Any:
        return self._vllm.SamplingParams(
            n=1,
            temperature=sampling.temperature,  # 0: greedy
            top_p=sampling.top_p,
            top_k=0,  # off
            max_tokens=sampling.max_new_tokens,
            seed=seed,
            # The tokenizer's EOS and the one-token stops stop by id, as in `TransformersGenerator`;
            # ignore_eos leaves out only the EOS ids of the model's generation_config (an instruct
            # model's end-of-turn), which the reference does not stop at either.
            stop_token_ids=stop_ids,
            ignore_eos=True,
            stop=stop_strings or None,
            include_stop_str_in_output=True,
            # vLLM finds stop strings in its own decoding: special tokens in it, as `decode` keeps them.
            skip_special_tokens=False,
            logprobs=0,  # the sampled token's own
        )

    def _completion(self, prompt: list[int], sample: Any, stop_ids: list[int], stop_strings: list[str]) -> Completion:
        """Cut as the reference cuts (a vLLM that appends several tokens in one step may return some
        after a stop string), decoded by the policy's tokenizer, with the sampled tokens' log-probabilities."""
        ids = list(sample.token_ids)
        logprobs = [float(step[token].logprob) for step, token in zip(sample.logprobs, ids, strict=False)]
        if len(logprobs) != len(ids):
            raise PolicyError(f"vLLM returned {len(logprobs)} log-probabilities for {len(ids)} tokens")
        return finish(self.policy.tokenizer, prompt, ids, stop_ids, stop_strings, logprobs)


def _load(weights: list[tuple[str, torch.Tensor]], model: torch.nn.Module) -> None:
    """Runs in the worker (`LLM.apply_model`), here in this process: the tensors are not copied."""
    model.load_weights(weights=weights)


def _request_seed(seed: int, index: int) -> int:
    """Request `index`'s own seed, reproducible from `seed`: vLLM samples each request from a generator
    seeded with its seed, so two requests given one seed would sample alike. In [0, 2**63): vLLM keeps
    seeds as int64."""
    digest = hashlib.blake2b(f"{seed}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _import_vllm() -> Any:
    """vLLM, in a supported version, set to run its engine in this process: the weights are pushed
    to it as tensors, which a separate engine process could not receive."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # read when the engine is built (vllm/envs.py)
    try:
        import vllm
    except ImportError as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PolicyError(f"generation.backend=vllm needs vLLM, which does not import ({reason}): {INSTALL}") from None
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    installed = str(getattr(vllm, "__version__", "unknown"))
    try:
        supported = SpecifierSet(SUPPORTED).contains(Version(installed), prereleases=True)
    except InvalidVersion:
        supported = False
    if not supported:
        raise PolicyError(
            f"generation.backend=vllm: vLLM {installed} is installed, azr supports vllm{SUPPORTED}: {INSTALL}"
        )
    return vllm
