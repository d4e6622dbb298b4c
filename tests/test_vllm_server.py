"""The `vllm-server` backend against a fake `vllm serve` on loopback: the completions it asks for and
how it reads them, the weight push after every update, and the one-line errors of a server that is
missing, serves another model, or dies during a weight update.

The fake answers only the routes the client uses, as vLLM 0.34.0 does (stop strings, stop token ids,
EOS and max_tokens cut the token ids the way vLLM's scheduler and detokenizer do), and records every
request. The NCCL transport is replaced by a loopback one: each bucket's tensors as safetensors bytes
in an HTTP body."""

import functools
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from azr.config import GenerationConfig, ModelConfig
from azr.engine import vllm_server
from azr.engine.generation import Sampling, make_generator
from azr.engine.policy import Policy, PolicyError
from azr.engine.vllm_server import ServerGenerator
from azr.engine.weights import merged_weights

TIMEOUT = 2.0


@functools.cache
def _policy() -> Policy:
    return Policy(ModelConfig(path="tiny-random", device="cpu"))


@pytest.fixture
def policy():
    policy = _policy()
    yield policy
    policy.listeners.clear()  # generators of finished tests must not hear later updates


class FakeServer:
    """`vllm serve` as far as the client sees it. `replies`: the continuation (text) of each prompt
    (text), followed by EOS; `fail`: a route at which the server dies (`close`: the connection drops
    and the server is gone) or stops answering (`hang`)."""

    def __init__(self, policy: Policy, served: str | None = None, fail: tuple[str, str] | None = None) -> None:
        self.tokenizer = policy.tokenizer
        self.root = served or policy.path
        self.fail = fail
        self.replies: dict[str, str] = {}
        self.calls: list[tuple[str, object]] = []
        self.received: list[tuple[str, torch.Tensor]] = []
        self.release = threading.Event()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]

    def bodies(self, path: str) -> list:
        return [body for p, body in self.calls if p == path]

    def answer(self, path: str, body):
        if path == "/v1/models":
            return {"object": "list", "data": [{"id": self.root, "root": self.root, "object": "model"}]}
        if path == "/get_world_size":
            return {"world_size": 1}
        if path == "/v1/completions":
            return self.complete(body)
        if path == "/loopback/tensors":
            self.received += load_tensors(body).items()
            return {"received": True}
        return {"success": True}

    def complete(self, body: dict) -> dict:
        eos, decode = self.tokenizer.eos_token_id, self.tokenizer.decode
        choices = []
        for p, prompt in enumerate(body["prompt"]):
            reply = self.tokenizer(self.replies.get(decode(prompt), "pass"), add_special_tokens=False)["input_ids"]
            for j in range(body["n"]):
                ids, finish, reason = [], "length", None
                for token in [*reply, eos]:
                    ids.append(token)
                    if token == eos:
                        finish = "stop"
                        break
                    if token in body["stop_token_ids"]:
                        finish, reason = "stop", token
                        break
                    if hit := [s for s in body["stop"] if s in decode(ids)]:
                        finish, reason = "stop", hit[0]
                        break
                    if len(ids) == body["max_tokens"]:
                        break
                logprobs = [-(j + 1) - 0.01 * k for k in range(len(ids))]
                choices.append({"index": p * body["n"] + j, "text": decode(ids), "token_ids": ids,
                                "logprobs": {"token_logprobs": logprobs}, "finish_reason": finish,
                                "stop_reason": reason})  # fmt: skip
        return {"object": "text_completion", "model": body["model"], "choices": choices[::-1]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self.respond(None)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/loopback"):
                    self.respond(raw)
                else:
                    self.respond(json.loads(raw) if raw else None)

            def respond(self, body) -> None:
                fake.calls.append((self.path, body))
                if fake.fail and fake.fail[0] == self.path:
                    if fake.fail[1] == "hang":
                        fake.release.wait(30)
                    else:
                        threading.Thread(target=fake.http.shutdown, daemon=True).start()
                        fake.http.socket.close()  # no new connections either
                    return
                data = json.dumps(fake.answer(self.path, body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


class LoopbackGenerator(ServerGenerator):
    """The NCCL transport replaced: the tensors travel in an HTTP body to the fake."""

    def _transfer_info(self, workers: int) -> dict:
        return {"loopback": True, "world_size": 1 + workers}

    def _join(self, info: dict) -> None:
        pass

    def _send(self, bucket: list[tuple[str, torch.Tensor]]) -> None:
        self._call("/loopback/tensors", data=save_tensors({name: t.clone() for name, t in bucket}))


@pytest.fixture
def server(policy):
    fake = FakeServer(policy)
    yield fake
    fake.close()


def config(url: str, **overrides) -> GenerationConfig:
    return GenerationConfig(backend="vllm-server", server_url=url, server_timeout=TIMEOUT, **overrides)


# -- completions ----------------------------------------------------------------------------------


def test_prompts_go_as_token_ids_cut_from_the_left_with_every_sampling_setting(policy, server):
    generator = LoopbackGenerator(policy, config(server.url, max_prompt_tokens=6))
    prompts = ["def f(x):\n    return x + 1\n", "print(1)"]
    generator.generate(prompts, 2, Sampling(temperature=1.0, max_new_tokens=9, stop=("<E>", "\nEND")), seed=3)
    (body,) = server.bodies("/v1/completions")
    assert body["prompt"] == policy.encode(prompts, 6) and len(body["prompt"][0]) == 6
    assert body["prompt"][0] == policy.encode(prompts, 1000)[0][-6:]
    (marker,) = policy.tokenizer("<E>", add_special_tokens=False)["input_ids"]
    assert body["stop_token_ids"] == [policy.tokenizer.eos_token_id, marker]  # EOS and a special token, by id
    assert body["stop"] == ["\nEND"] and body["ignore_eos"] is True  # the server's other EOS ids: not stops
    expected = {"model": policy.path, "n": 2, "max_tokens": 9, "temperature": 1.0, "top_p": 1.0, "top_k": -1,
                "include_stop_str_in_output": True, "skip_special_tokens": False, "logprobs": 0,
                "return_token_ids": True, "repetition_penalty": 1.0}  # fmt: skip
    assert {key: body[key] for key in expected} == expected and isinstance(body["seed"], int)


def test_completions_mean_what_the_transformers_backend_returns(policy, server):
    server.replies = {"a": "x = 1<E> after", "b": "y = 2", "c": "z = 3\nEND more", "d": "w = [1, 2, 3, 4, 5, 6]"}
    generator = LoopbackGenerator(policy, config(server.url))
    results = generator.generate(list("abcd"), 3, Sampling(max_new_tokens=12, stop=("<E>", "\nEND")), seed=0)
    encode = functools.partial(policy.tokenizer, add_special_tokens=False)
    eos = policy.tokenizer.eos_token_id
    a, b, c, d = (group[0] for group in results)
    assert a.ids == tuple(encode("x = 1<E>")["input_ids"]) and a.text == "x = 1<E>" and a.finished  # stop kept
    assert b.ids == (*encode("y = 2")["input_ids"], eos) and b.text == "y = 2" and b.finished  # EOS not in text
    assert c.text.startswith("z = 3\nEND") and c.finished and "more" not in c.text
    assert len(d.ids) == 12 and not d.finished and d.text == policy.tokenizer.decode(d.ids)  # cut at max_tokens
    assert [len(group) for group in results] == [3, 3, 3, 3]
    for prompt, group in zip("abcd", results, strict=True):
        assert all(c.prompt_ids == tuple(policy.encode([prompt], 1024)[0]) for c in group)
        assert [round(c.logprobs[0]) for c in group] == [-1, -2, -3]  # the n samples, in order
        assert all(len(c.logprobs) == len(c.ids) for c in group)


def test_greedy_seeds_and_requests(policy, server):
    generator = LoopbackGenerator(policy, config(server.url, batch_size=2))
    greedy = Sampling(temperature=0.0)
    results = generator.generate(["p", "q", "p", "r", "s"], 1, greedy, seed=7)
    bodies = server.bodies("/v1/completions")
    assert all(body["temperature"] == 0.0 for body in bodies)
    assert sorted(len(body["prompt"]) for body in bodies) == [1, 2, 2]  # batch_size prompts a request
    assert all(len({tuple(p) for p in body["prompt"]}) == len(body["prompt"]) for body in bodies)  # no twins
    assert [r[0].prompt_ids for r in results] == [tuple(ids) for ids in policy.encode(list("pqprs"), 1024)]
    first = seeds(bodies)
    generator.generate(["p", "q", "p", "r", "s"], 1, greedy, seed=7)
    generator.generate(["p", "q", "p", "r", "s"], 1, greedy, seed=8)
    again, other = seeds(server.bodies("/v1/completions")[3:6]), seeds(server.bodies("/v1/completions")[6:])
    assert again == first and other.keys() == first.keys() and not set(other.values()) & set(first.values())
    assert len(set(first.values())) == 3


def seeds(bodies: list[dict]) -> dict[tuple, int]:
    """Each request's seed by its prompts (requests arrive in any order: they are concurrent)."""
    return {tuple(map(tuple, body["prompt"])): body["seed"] for body in bodies}


def test_it_is_the_backend_generation_vllm_server_names(policy, server, monkeypatch):
    monkeypatch.setattr(vllm_server, "ServerGenerator", LoopbackGenerator)
    assert isinstance(make_generator(policy, config(server.url + "/v1/")), LoopbackGenerator)


# -- weights --------------------------------------------------------------------------------------


def test_every_update_pushes_every_weight_once_then_resets_the_prefix_cache(policy, server, monkeypatch):
    monkeypatch.setattr(vllm_server, "_BUCKET_BYTES", 64 << 10)  # several chunks
    LoopbackGenerator(policy, config(server.url))
    assert server.bodies("/init_weight_transfer_engine") == [{"init_info": {"loopback": True, "world_size": 2}}]
    assert server.paths().count("/reset_prefix_cache") == 1  # the weights at construction
    server.calls.clear()
    server.received.clear()
    with torch.no_grad():
        next(iter(policy.model.parameters())).add_(1.0)
    policy.weights_changed()
    expected = dict(merged_weights(policy))
    paths = [p for p in server.paths() if p != "/loopback/tensors"]
    updates = paths.count("/update_weights")
    assert updates > 1 and paths == ["/start_weight_update", *["/update_weights"] * updates,
                                     "/finish_weight_update", "/reset_prefix_cache"]  # fmt: skip
    names = [n for body in server.bodies("/update_weights") for n in body["update_info"]["names"]]
    assert sorted(names) == sorted(expected) and len(names) == len(set(names))
    assert sorted(name for name, _ in server.received) == sorted(names)
    for body in server.bodies("/update_weights"):
        info = body["update_info"]
        for name, dtype, shape in zip(info["names"], info["dtype_names"], info["shapes"], strict=True):
            assert dtype == "float32" and shape == list(expected[name].shape)
    assert all(torch.equal(tensor, expected[name]) for name, tensor in server.received)
    assert server.bodies("/finish_weight_update") == [{"weight_version": "2"}]


@pytest.mark.parametrize(
    ("route", "how"), [("/update_weights", "close"), ("/update_weights", "hang"), ("/v1/completions", "close")]
)
def test_a_server_that_dies_mid_sync_or_mid_batch_is_one_line_within_the_timeout(policy, route, how):
    fake = FakeServer(policy)
    try:
        generator = LoopbackGenerator(policy, config(fake.url))
        fake.fail = (route, how)
        start = time.monotonic()
        with pytest.raises(PolicyError) as caught:
            if route == "/update_weights":
                policy.weights_changed()
            else:
                generator.generate(["a", "b"], 2, Sampling(), seed=0)
        assert time.monotonic() - start < TIMEOUT + 1.5
    finally:
        fake.close()
    message = str(caught.value)
    action = "a weight update" if route == "/update_weights" else "a completions request"
    assert "\n" not in message and fake.url in message and f"stopped answering during {action}" in message
    assert "resumes from its last checkpoint once the server is back" in message


def test_a_missing_server_another_model_or_no_cuda_for_nccl_are_one_line(policy, server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PolicyError) as missing:
        LoopbackGenerator(policy, config(f"http://127.0.0.1:{port}"))
    message = str(missing.value)
    assert "\n" not in message and f"http://127.0.0.1:{port}" in message and "vllm serve" in message
    other = FakeServer(policy, served="/models/Qwen2.5-7B")
    try:
        with pytest.raises(PolicyError, match=r"serves /models/Qwen2.5-7B, not model.path=tiny-random") as wrong:
            LoopbackGenerator(policy, config(other.url))
    finally:
        other.close()
    assert "\n" not in str(wrong.value)
    with pytest.raises(PolicyError, match=r"over NCCL: model\.device must be CUDA"):
        ServerGenerator(policy, config(server.url))
    assert not server.bodies("/init_weight_transfer_engine")  # the server is not left waiting in a rendezvous
