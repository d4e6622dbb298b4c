"""The `vllm` backend against a fake `vllm` package put in sys.modules: the engine's lifecycle (sleep,
wake, the weight push after every change, shutdown), the requests it is sent, how its answers become
completions, and the one-line errors of a vLLM that is missing or of an unsupported version.

The fake keeps the names and signatures of vLLM 0.34.0 that the backend uses (LLM, its sleep,
wake_up, reset_prefix_cache, apply_model, generate, llm_engine.engine_core.shutdown; SamplingParams'
fields) and answers as vLLM does: a completion stops at a stop token id (kept), at a stop string
(kept, with include_stop_str_in_output) or at max_tokens, with the sampled token's log-probability
at each position. It is stricter than vLLM: a second sleep or wake, or using memory that sleeps,
fails the test."""

import dataclasses
import functools
import os
import random
import sys
import types
from typing import Any

import pytest
import torch

from azr.config import GenerationConfig, ModelConfig
from azr.engine import vllm as backend
from azr.engine.distributed import World
from azr.engine.generation import Sampling, make_generator
from azr.engine.policy import Policy, PolicyError
from azr.engine.vllm import VLLMGenerator
from azr.engine.weights import merged_weights

STOP = "\n#"  # two tokens in tiny-random's tokenizer
ANSWER = "</answer>"  # one token
ENGINE_ARGS = {
    "dtype", "seed", "tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "max_num_seqs",
    "enable_prefix_caching", "enable_sleep_mode", "logprobs_mode", "distributed_executor_backend",
}  # fmt: skip
"""The engine arguments the backend may pass (each a field of vLLM's EngineArgs in 0.20 and 0.34)."""


@dataclasses.dataclass
class FakeSamplingParams:
    """vLLM's SamplingParams, with only the fields the backend may set (another name is a TypeError)."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    max_tokens: int | None = 16
    logprobs: int | None = None
    skip_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    detokenize: bool = True


@dataclasses.dataclass
class Logprob:
    logprob: float
    rank: int | None = None


def fake_logprob(position: int, token: int) -> float:
    return -(position + 1) / 10 - token / 10_000


class FakeModel:
    """What `LLM.apply_model` hands its function: the engine's model, with `load_weights`."""

    def __init__(self, engine: "FakeLLM") -> None:
        self.engine = engine

    def load_weights(self, weights: Any) -> set[str]:
        assert "weights" not in self.engine.asleep, "weights loaded into a sleeping engine"
        weights = list(weights)
        if self.engine.fake.fail_load:
            raise RuntimeError("load failed")
        self.engine.calls.append(("load_weights", tuple(name for name, _ in weights)))
        self.engine.buckets.append([(name, tensor.numel() * tensor.element_size()) for name, tensor in weights])
        for name, tensor in weights:
            self.engine.weights[name] = tensor.detach().clone()
        return {name for name, _ in weights}


class FakeLLM:
    def __init__(self, fake: "FakeVLLM", model: str, **settings: Any) -> None:
        assert set(settings) <= ENGINE_ARGS, set(settings) - ENGINE_ARGS
        self.fake, self.path, self.settings = fake, model, settings
        self.multiprocessing = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
        self.calls: list[tuple] = []
        self.buckets: list[list[tuple[str, int]]] = []
        self.weights: dict[str, torch.Tensor] = {}
        self.asleep: set[str] = set()
        self.model = FakeModel(self)
        core = types.SimpleNamespace(shutdown=lambda: self.calls.append(("shutdown",)))
        self.llm_engine = types.SimpleNamespace(engine_core=core)
        fake.engines.append(self)

    def sleep(self, level: int = 1) -> None:
        assert not self.asleep, f"put to sleep while {self.asleep} sleep"
        self.calls.append(("sleep", level))
        self.asleep = {"weights", "kv_cache"}

    def wake_up(self, tags: list[str] | None = None) -> bool:
        assert self.asleep, "woken while awake"
        waking = set(self.asleep) if tags is None else set(tags)
        assert waking <= self.asleep, f"{waking - self.asleep} woken while awake"
        self.calls.append(("wake_up", None if tags is None else tuple(tags)))
        self.asleep -= waking
        return not self.asleep

    def reset_prefix_cache(self) -> bool:
        assert not self.asleep, "prefix cache reset while asleep"
        self.calls.append(("reset_prefix_cache",))
        return True

    def apply_model(self, func: Any) -> list[Any]:
        return [func(self.model)]

    def generate(self, prompts: list[dict], sampling_params: list[FakeSamplingParams], *, use_tqdm: bool = True):
        assert not self.asleep, "generate while asleep"
        assert len(prompts) == len(sampling_params)
        self.calls.append(("generate", prompts, sampling_params))
        return [self._answer(p["prompt_token_ids"], s) for p, s in zip(prompts, sampling_params, strict=True)]

    def _answer(self, prompt: list[int], params: FakeSamplingParams) -> Any:
        stream = self.fake.scripts.get(tuple(prompt)) or self.fake.stream(prompt, params)
        decode = self.fake.tokenizer.decode
        tokens: list[int] = []
        finish = "length"
        for token in stream:
            tokens.append(token)
            if token in (params.stop_token_ids or ()) or (not params.ignore_eos and token == self.fake.eos):
                finish = "stop"
                break
            if self.fake.check_stop_strings and any(s in decode(tokens) for s in params.stop or ()):
                finish = "stop"
                break
            if len(tokens) == params.max_tokens:
                break
        if not self.fake.check_stop_strings:  # a multi-token step: tokens past the stop come back too
            tokens = stream[: params.max_tokens]
        distractor = 3
        logprobs = [{distractor: Logprob(-9.0, 1), t: Logprob(fake_logprob(i, t), 2)} for i, t in enumerate(tokens)]
        sample = types.SimpleNamespace(token_ids=tokens, logprobs=logprobs, finish_reason=finish, text=decode(tokens))
        return types.SimpleNamespace(prompt_token_ids=prompt, outputs=[sample])


class FakeVLLM:
    def __init__(self, tokenizer: Any, version: str) -> None:
        self.tokenizer = tokenizer
        self.eos = tokenizer.eos_token_id
        self.module = types.ModuleType("vllm")
        self.module.__version__ = version
        self.module.LLM = functools.partial(FakeLLM, self)
        self.module.SamplingParams = FakeSamplingParams
        self.engines: list[FakeLLM] = []
        self.scripts: dict[tuple[int, ...], list[int]] = {}
        self.check_stop_strings = True
        self.fail_load = False
        self.ordinary = [i for i in range(30, 1000) if tokenizer.decode([i]).isalpha()]
        """Tokens that spell no stop, so the sampled streams stop only at max_tokens."""

    def stream(self, prompt: list[int], params: FakeSamplingParams) -> list[int]:
        """Sampled tokens: reproducible from the seed, or the same for every seed when greedy."""
        rng = random.Random(f"{prompt}/{params.seed if params.temperature > 0 else 'greedy'}")
        return [rng.choice(self.ordinary) for _ in range((params.max_tokens or 16) + 5)]

    @property
    def engine(self) -> FakeLLM:
        (engine,) = self.engines
        return engine


@pytest.fixture
def policy():
    return Policy(ModelConfig(path="tiny-random", device="cpu"))


def _fake(monkeypatch, policy: Policy, version: str = "0.25.0") -> FakeVLLM:
    fake = FakeVLLM(policy.tokenizer, version)
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")  # restored after the test
    return fake


def _config(**overrides: Any) -> GenerationConfig:
    return GenerationConfig(**{"backend": "vllm", "max_prompt_tokens": 64, "max_new_tokens": 6, **overrides})


def _phases(calls: list[tuple]) -> list[str]:
    """The calls as names, the weight loads of one push as one `load`."""
    names: list[str] = []
    for call in calls:
        name = call[0] if call[0] != "wake_up" else f"wake_up{'' if call[1] is None else list(call[1])}"
        name = "load" if name == "load_weights" else name
        if not (name == "load" and names and names[-1] == "load"):
            names.append(name)
    return names


# -- the lifecycle ---------------------------------------------------------------------------------


def test_lifecycle_sleeps_between_uses_and_pushes_every_weight_once_per_change(monkeypatch, policy):
    fake = _fake(monkeypatch, policy)
    monkeypatch.setattr(backend, "BUCKET_BYTES", 100_000)  # several buckets of the tiny model
    config = _config(vllm_memory=0.3, batch_size=5)
    generator = make_generator(policy, config)
    assert isinstance(generator, VLLMGenerator)
    engine = fake.engine
    assert engine.path == policy.path
    assert engine.multiprocessing == "0"  # in this process: the pushed tensors are not pickled
    assert engine.settings == {
        "dtype": "float32", "seed": 0, "tensor_parallel_size": 1, "gpu_memory_utilization": 0.3,
        "max_model_len": 70, "max_num_seqs": 5, "enable_prefix_caching": True, "enable_sleep_mode": True,
        "logprobs_mode": "raw_logprobs",
    }  # fmt: skip
    assert generator._push in policy.listeners

    generator.generate(["def f(x):"], 2, Sampling(max_new_tokens=4), seed=1)
    before = {name: tensor.clone() for name, tensor in merged_weights(policy)}
    with torch.no_grad():
        for parameter in policy.model.parameters():
            parameter.add_(0.5)
    policy.weights_changed()
    generator.generate(["def f(x):"], 2, Sampling(max_new_tokens=4), seed=1)
    generator.close()
    generator.close()

    assert _phases(engine.calls) == [
        "load", "reset_prefix_cache", "sleep",  # built awake: the current weights, then asleep
        "wake_up", "generate", "sleep",
        "wake_up['weights']", "load", "wake_up['kv_cache']", "reset_prefix_cache", "sleep",
        "wake_up", "generate", "sleep",
        "shutdown",
    ]  # fmt: skip
    assert all(call == ("sleep", 1) for call in engine.calls if call[0] == "sleep")  # level 2 drops the weights
    names = list(before)
    loads = [call[1] for call in engine.calls if call[0] == "load_weights"]
    pushes = [sum(loads[: len(loads) // 2], ()), sum(loads[len(loads) // 2 :], ())]
    assert pushes == [tuple(names), tuple(names)]  # every weight once per push, in order
    assert len(loads) > 2
    for bucket in engine.buckets[:-1]:  # consecutive tensors until the bucket is passed
        sizes = [size for _, size in bucket]
        assert sum(sizes) >= backend.BUCKET_BYTES > sum(sizes[:-1])
    after = dict(merged_weights(policy))
    assert all(torch.equal(engine.weights[name], after[name]) for name in names)  # the trained ones
    assert not torch.equal(engine.weights[names[0]], before[names[0]])
    assert generator._push not in policy.listeners
    calls = len(engine.calls)
    policy.weights_changed()
    assert len(engine.calls) == calls
    with pytest.raises(PolicyError, match="closed"):
        generator.generate(["x"], 1, Sampling(), seed=0)


def test_one_engine_per_rank_under_torchrun(monkeypatch, policy):
    fake = _fake(monkeypatch, policy)
    monkeypatch.setattr(policy, "world", World(rank=1, size=2, local_rank=1, local_size=2, sharded=True))
    VLLMGenerator(policy, _config()).close()
    settings = fake.engine.settings
    assert settings["distributed_executor_backend"] == "external_launcher"
    assert settings["tensor_parallel_size"] == 1
    assert settings["seed"] == 1  # each rank's engine its own


def test_a_failed_first_push_shuts_the_engine_down(monkeypatch, policy):
    fake = _fake(monkeypatch, policy)
    fake.fail_load = True
    with pytest.raises(RuntimeError, match="load failed"):
        VLLMGenerator(policy, _config())
    assert fake.engine.calls[-1] == ("shutdown",)
    assert policy.listeners == []


# -- requests and completions ----------------------------------------------------------------------


def test_prompts_go_as_token_ids_cut_from_the_left(monkeypatch, policy):
    fake = _fake(monkeypatch, policy)
    generator = VLLMGenerator(policy, _config(max_prompt_tokens=16))
    long = "def add(a, b):\n    return a + b\n" * 10
    full = policy.encode([long], 10_000)[0]
    assert len(full) > 16
    result = generator.generate([long, "x = 1"], 2, Sampling(), seed=0)
    _, prompts, _ = next(call for call in fake.engine.calls if call[0] == "generate")
    expected = policy.encode([long, "x = 1"], 16)
    assert expected[0] == full[-16:]
    assert prompts == [{"prompt_token_ids": ids} for ids in expected for _ in range(2)]
    assert [c.prompt_ids for group in result for c in group] == [tuple(ids) for ids in expected for _ in range(2)]


def test_completions_stop_as_the_reference_generator_stops(monkeypatch, policy):
    fake = _fake(monkeypatch, policy)
    generator = VLLMGenerator(policy, _config())
    tokenizer = policy.tokenizer
    stop_ids = tokenizer(STOP, add_special_tokens=False)["input_ids"]
    (answer_id,) = tokenizer(ANSWER, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    assert len(stop_ids) == 2
    a, b, c, d = fake.ordinary[:4]
    prompts = ["stops at a string", "stops at EOS", "stops at a one-token stop", "runs on"]
    encoded = policy.encode(prompts, 64)
    fake.scripts[tuple(encoded[0])] = [a, b, *stop_ids, c, d]
    fake.scripts[tuple(encoded[1])] = [a, eos, b]
    fake.scripts[tuple(encoded[2])] = [a, answer_id, b]

    result = generator.generate(prompts, 2, Sampling(max_new_tokens=6, stop=(STOP, ANSWER)), seed=7)

    assert [len(group) for group in result] == [2, 2, 2, 2]
    by_string, by_eos, by_token, cut = (group[0] for group in result)
    assert by_string.ids == (a, b, *stop_ids) and by_string.finished
    assert by_string.text == tokenizer.decode([a, b, *stop_ids]) and by_string.text.endswith(STOP)
    assert by_eos.ids == (a, eos) and by_eos.finished and by_eos.text == tokenizer.decode([a])
    assert by_token.ids == (a, answer_id) and by_token.finished and by_token.text.endswith(ANSWER)
    assert len(cut.ids) == 6 and not cut.finished and cut.text == tokenizer.decode(list(cut.ids))
    for group in result:
        for completion in group:
            assert completion.logprobs == tuple(fake_logprob(i, t) for i, t in enumerate(completion.ids))
    assert result[3][0].ids != result[3][1].ids  # n samples of one prompt differ
    _, _, params = next(call for call in fake.engine.calls if call[0] == "generate")
    for p in params:
        assert (p.n, p.temperature, p.top_p, p.top_k, p.max_tokens, p.logprobs) == (1, 1.0, 1.0, 0, 6, 0)
        assert p.stop == [STOP] and p.stop_token_ids == [eos, answer_id] and p.ignore_eos
        assert p.include_stop_str_in_output and not p.skip_special_tokens


def test_tokens_past_a_stop_string_are_cut(monkeypatch, policy):
    """vLLM 0.20 keeps tokens that one step appended after a stop string (speculative decoding)."""
    fake = _fake(monkeypatch, policy)
    generator = VLLMGenerator(policy, _config())
    stop_ids = policy.tokenizer(STOP, add_special_tokens=False)["input_ids"]
    a, b, c = fake.ordinary[:3]
    fake.scripts[tuple(policy.encode(["p"], 64)[0])] = [a, *stop_ids, b, c]
    fake.check_stop_strings = False
    (completion,) = generator.generate(["p"], 1, Sampling(max_new_tokens=6, stop=(STOP,)), seed=0)[0]
    assert completion.ids == (a, *stop_ids) and completion.finished
    assert completion.logprobs == tuple(fake_logprob(i, t) for i, t in enumerate(completion.ids))


def test_seeds_reproduce_samples_and_greedy_is_greedy(monkeypatch, policy):
    fake = _fake(monkeypatch, policy)
    generator = VLLMGenerator(policy, _config())
    prompts = ["def f(x):", "def g(y):"]

    def run(seed: int, temperature: float = 1.0) -> tuple[list, list]:
        result = generator.generate(prompts, 3, Sampling(temperature=temperature, max_new_tokens=5), seed)
        _, _, params = [call for call in fake.engine.calls if call[0] == "generate"][-1]
        return [[c.ids for c in group] for group in result], params

    first, params = run(11)
    again, params_again = run(11)
    other, params_other = run(12)
    seeds = [p.seed for p in params]
    assert len(set(seeds)) == 6 and all(0 <= s < 2**63 for s in seeds)  # one per request
    assert first == again and seeds == [p.seed for p in params_again]
    assert first != other and not set(seeds) & {p.seed for p in params_other}
    greedy, params = run(11, temperature=0.0)
    assert all(p.temperature == 0.0 and p.top_k == 0 for p in params)
    assert greedy == run(12, temperature=0.0)[0]


# -- refusals --------------------------------------------------------------------------------------


def test_a_missing_vllm_names_the_install(monkeypatch, policy):
    monkeypatch.setitem(sys.modules, "vllm", None)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    with pytest.raises(PolicyError) as raised:
        make_generator(policy, _config())
    message = str(raised.value)
    assert "pip install 'azr[vllm]'" in message and "\n" not in message
    assert policy.listeners == []


@pytest.mark.parametrize("version", ["0.14.0", "0.35.0", "not-a-version"])
def test_an_unsupported_vllm_names_both_versions(monkeypatch, policy, version):
    fake = _fake(monkeypatch, policy, version)
    with pytest.raises(PolicyError) as raised:
        VLLMGenerator(policy, _config())
    message = str(raised.value)
    assert version in message and backend.SUPPORTED in message and "\n" not in message
    assert fake.engines == []
