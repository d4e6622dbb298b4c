"""`vllm serve` on other GPUs as the sampler: prompts go out over HTTP, the weights after every update.

Completions (POST /v1/completions, vLLM's vllm/entrypoints/openai/completion/protocol.py): the prompts
are sent as token ids, cut from the left by `Policy.encode` as `TransformersGenerator` cuts them, and
the answers come back as token ids (`return_token_ids`), so nothing is tokenized twice. Each sampled
token's log-probability comes with it (`logprobs: 0`: the server's default `raw_logprobs`, the
policy's own distribution at T=1). Every sampling setting is sent, so nothing of the model's
generation_config (a repetition penalty, a top_k) bends the samples. vLLM seeds every prompt of a
request alike, so identical prompts go to different requests, or they would get identical samples.

Weights follow vLLM 0.34.0's weight-transfer routes (vllm/entrypoints/rl/online/api_router.py, the
NCCL backend in vllm/distributed/weight_transfer/nccl_engine.py and nccl_common.py); the server runs
as `VLLM_SERVER_DEV_MODE=1 vllm serve MODEL --weight-transfer-config '{"backend": "nccl"}'`:

    once         GET /get_world_size -> W inference workers; POST /init_weight_transfer_engine
                 {"init_info": {master_address, master_port, rank_offset: 1, world_size: 1 + W,
                 packed: false}} while rank 0 opens the NCCL group as its rank 0 (vLLM's own
                 StatelessProcessGroup and PyNcclCommunicator: vLLM is installed beside the trainer too)
    each update  POST /start_weight_update; per bucket of tensors POST /update_weights {"update_info":
                 {names, dtype_names, shapes}} while the bucket is broadcast in that order (`_send`);
                 POST /finish_weight_update {"weight_version"}; POST /reset_prefix_cache (its KV
                 blocks were computed with the old weights)

Only the transport (`_transfer_info`, `_join`, `_send`) needs NCCL; the tests replace it.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from azr.config import GenerationConfig
from azr.engine.generation import Completion, Sampling, finish, split_stops
from azr.engine.policy import Policy, PolicyError
from azr.engine.weights import buckets, merged_weights

_CONCURRENT_REQUESTS = 4
_MAX_PROMPTS_PER_REQUEST = 1024  # vLLM's VLLM_MAX_COMPLETION_PROMPTS default
_BUCKET_BYTES = 512 << 20
_NEUTRAL = {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0}
"""Sent, not left out: the server fills what a request leaves out from the model's generation_config."""
_RETURN = {"return_token_ids": True, "logprobs": 0, "include_stop_str_in_output": True, "skip_special_tokens": False}
"""The sampled ids and their log-probabilities, through the stop (kept, as with HF); special tokens in
the server's text, where the stop strings are matched."""
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""The server is on the cluster's own network: an http_proxy set for the internet must not carry it."""


class ServerError(Exception):
    """An HTTP call that failed. `answered`: the server replied, with an error status."""

    def __init__(self, reason: str, answered: bool) -> None:
        super().__init__(reason)
        self.answered = answered


class ServerGenerator:
    """Completions from a `vllm serve` at `generation.server_url`, kept on the policy's weights."""

    def __init__(self, policy: Policy, config: GenerationConfig) -> None:
        self.policy = policy
        self.config = config
        self.url = config.server_url.rstrip("/").removesuffix("/v1")
        if not self.url:
            raise PolicyError("generation.backend=vllm-server needs generation.server_url=http://HOST:PORT")
        self.serve = (
            f'VLLM_SERVER_DEV_MODE=1 vllm serve {policy.path} --weight-transfer-config \'{{"backend": "nccl"}}\''
        )
        self._pool = ThreadPoolExecutor(_CONCURRENT_REQUESTS, thread_name_prefix="vllm-server")
        self._version = 0
        self.model = self._served_model()
        if policy.world.is_main:
            try:
                self._open_transfer()
            except ServerError as error:
                raise self._failure("the weight-transfer setup", error) from None
        self.push_weights()
        policy.listeners.append(self.push_weights)

    # -- completions -------------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], n: int, sampling: Sampling, seed: int) -> list[list[Completion]]:
        encoded = self.policy.encode(prompts, self.config.max_prompt_tokens)
        # EOS and one-token stops (the markers are special tokens) stop by id, as with HF; ignore_eos
        # leaves out the other end-of-sequence ids of the server's generation_config, which HF does too.
        stop_ids, stop_strings = split_stops(self.policy.tokenizer, sampling.stop)
        settings = {**_NEUTRAL, **_RETURN, "model": self.model, "n": n, "max_tokens": sampling.max_new_tokens}
        settings |= {"temperature": sampling.temperature, "top_p": sampling.top_p, "ignore_eos": True}
        settings |= {"stop": stop_strings, "stop_token_ids": stop_ids}
        groups = _requests(encoded, max(1, min(self.config.batch_size, _MAX_PROMPTS_PER_REQUEST)))
        futures = [
            self._pool.submit(self._ask, {**settings, "prompt": [encoded[i] for i in group], "seed": _seed(seed, k)})
            for k, group in enumerate(groups)
        ]
        results: list[list[Completion]] = [[] for _ in prompts]
        try:
            for group, future in zip(groups, futures, strict=True):
                choices = self._choices(future.result(), len(group) * n)
                for position, index in enumerate(group):  # the tokenizer is used by this thread only
                    chosen = choices[position * n : (position + 1) * n]
                    results[index] = [
                        finish(self.policy.tokenizer, encoded[index], [int(t) for t in choice["token_ids"]], stop_ids,
                               stop_strings, choice["sampled_logprobs"])
                        for choice in chosen
                    ]  # fmt: skip
        finally:
            for future in futures:
                future.cancel()
        return results

    def _ask(self, body: dict[str, Any]) -> Any:
        try:
            return self._call("/v1/completions", body)
        except ServerError as error:
            raise self._failure("a completions request", error) from None

    def _choices(self, answer: Any, count: int) -> list[dict[str, Any]]:
        """The choices in order: vLLM numbers them prompt by prompt, the n samples of each in turn."""
        try:
            choices = sorted(answer["choices"], key=lambda choice: choice["index"])
            for choice in choices:
                ids, logprobs = choice["token_ids"], choice["logprobs"]["token_logprobs"]
                if len(logprobs) < len(ids) or choice["finish_reason"] not in ("stop", "length"):
                    raise ValueError(f"{len(logprobs)} logprobs, {len(ids)} tokens, {choice['finish_reason']!r}")
                choice["sampled_logprobs"] = tuple(float(value) for value in logprobs[: len(ids)])
            if len(choices) != count:
                raise ValueError(f"{len(choices)} choices, not {count}")
        except (KeyError, TypeError, ValueError) as error:
            raise PolicyError(f"the server at {self.url} answered a completions request oddly: {error!r}") from None
        return choices

    # -- weights -----------------------------------------------------------------------------

    def push_weights(self) -> None:
        """The policy's current weights to the server. Every rank iterates them (under FSDP2 each
        tensor is a collective); rank 0 sends; no rank samples again before the server has them all."""
        weights = merged_weights(self.policy, self.policy.compute_dtype)
        failure = None
        if self.policy.world.is_main:
            try:
                self._push(weights)
            except PolicyError as error:
                failure = str(error)
        for _ in weights:  # the ranks' gathers stay aligned whatever rank 0 managed to send
            pass
        failure = self.policy.world.gather(failure)[0]
        if failure:
            raise PolicyError(failure)

    def _push(self, weights: Iterator[tuple[str, torch.Tensor]]) -> None:
        self._version += 1
        try:
            self._call("/start_weight_update")
            for bucket in buckets(((name, tensor.contiguous()) for name, tensor in weights), _BUCKET_BYTES):
                self._update(bucket)
            self._call("/finish_weight_update", {"weight_version": str(self._version)})
            reset = self._call("/reset_prefix_cache")
        except ServerError as error:
            raise self._failure("a weight update", error) from None
        except RuntimeError as error:
            raise PolicyError(f"the weight transfer to {self.url} failed: {_line(error)}") from None
        if isinstance(reset, dict) and reset.get("success") is False:
            raise PolicyError(f"the vLLM server at {self.url} kept its prefix cache after a weight update")
        if self.policy.device.type == "cuda":
            torch.cuda.synchronize(self.policy.device)

    def _update(self, bucket: list[tuple[str, torch.Tensor]]) -> None:
        """One chunk: its metadata over HTTP while its tensors travel (both ends meet in the transfer)."""
        info = {
            "names": [name for name, _ in bucket],
            "dtype_names": [str(tensor.dtype).removeprefix("torch.") for _, tensor in bucket],
            "shapes": [list(tensor.shape) for _, tensor in bucket],
        }
        answer = self._pool.submit(self._call, "/update_weights", {"update_info": info})
        self._send(bucket)
        answer.result()

    # -- the transport: NCCL from rank 0 to the server's workers ------------------------------

    def _open_transfer(self) -> None:
        workers = int(self._call("/get_world_size", method="GET")["world_size"])
        info = self._transfer_info(workers)
        answer = self._pool.submit(self._call, "/init_weight_transfer_engine", {"init_info": info})
        self._join(info)
        answer.result()

    def _transfer_info(self, workers: int) -> dict[str, Any]:
        """The server's half of the NCCL group: where rank 0 listens, reachable from the server."""
        if self.policy.device.type != "cuda":
            raise PolicyError("generation.backend=vllm-server sends the weights over NCCL: model.device must be CUDA")
        try:
            import vllm.distributed.weight_transfer.nccl_common  # noqa: F401
        except ImportError:
            raise PolicyError(
                "generation.backend=vllm-server joins vLLM's NCCL group: pip install vllm here too"
            ) from None
        host = urllib.parse.urlsplit(self.url).hostname or "localhost"
        family, kind, _, _, address = socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind) as probe:  # the interface that routes to the server
            probe.connect(address)
            local = probe.getsockname()[0]
        with socket.socket(family, socket.SOCK_STREAM) as free:
            free.bind((local, 0))
            port = free.getsockname()[1]
        return dict(master_address=local, master_port=port, rank_offset=1, world_size=1 + workers, packed=False)

    def _join(self, info: dict[str, Any]) -> None:
        from vllm.distributed.weight_transfer.nccl_common import trainer_init

        with torch.cuda.device(self.policy.device):
            self._group = trainer_init(info, rank=0)

    def _send(self, bucket: list[tuple[str, torch.Tensor]]) -> None:
        stream = torch.cuda.current_stream(self.policy.device)
        for _, tensor in bucket:
            self._group.broadcast(tensor, src=0, stream=stream)

    # -- HTTP --------------------------------------------------------------------------------

    def _served_model(self) -> str:
        """The served model's name, after checking it is the policy's model."""
        try:
            listing = self._call("/v1/models", method="GET")
        except ServerError as error:
            if error.answered:
                raise PolicyError(f"{self.url} is not a `vllm serve`: GET /v1/models answered {error}") from None
            raise PolicyError(
                f"no vLLM server answers at {self.url} ({error}): start one there with `{self.serve}`"
            ) from None
        cards = listing.get("data", []) if isinstance(listing, dict) else []
        wanted = {_name(self.policy.config.path), _name(self.policy.path)} - {""}
        for card in cards:
            if wanted & {_name(card.get("id")), _name(card.get("root"))}:
                return str(card["id"])
        served = ", ".join(str(card.get("root") or card.get("id")) for card in cards) or "no model"
        raise PolicyError(
            f"the vLLM server at {self.url} serves {served}, not model.path={self.policy.config.path}: "
            f"start it with `{self.serve}`"
        )

    def _call(self, path: str, body: Any = None, method: str = "POST", data: bytes | None = None) -> Any:
        """One HTTP call with the timeout, its JSON answer or a `ServerError`."""
        kind = "application/octet-stream" if data is not None else "application/json"
        if data is None and method == "POST":
            data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": kind})
        try:
            with _NO_PROXY.open(request, timeout=self.config.server_timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            raise ServerError(f"HTTP {error.code} {_detail(error)}".strip(), answered=True) from None
        except (OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                reason = f"no answer within {self.config.server_timeout:g} s"
            raise ServerError(f"{path}: {_line(reason)}", answered=False) from None
        try:
            return json.loads(text) if text.strip() else None
        except ValueError:
            raise ServerError(f"{path} answered {text[:80]!r}, not JSON", answered=True) from None

    def _failure(self, action: str, error: ServerError) -> PolicyError:
        if not error.answered:
            return PolicyError(
                f"the vLLM server at {self.url} stopped answering during {action} ({error}); "
                "the run resumes from its last checkpoint once the server is back"
            )
        return PolicyError(f"the vLLM server at {self.url} refused {action}: {error} (is it `{self.serve}`?)")


def _requests(encoded: list[list[int]], size: int) -> list[list[int]]:
    """Prompt indices per request, at most `size` each, and never two identical prompts in one."""
    groups: list[list[int]] = []
    members: list[set[tuple[int, ...]]] = []
    for index, ids in enumerate(encoded):
        key = tuple(ids)
        for group, keys in zip(groups, members, strict=True):
            if len(group) < size and key not in keys:
                group.append(index)
                keys.add(key)
                break
        else:
            groups.append([index])
            members.append({key})
    return groups


def _seed(seed: int, request: int) -> int:
    """A seed per request, reproducible from the call's; vLLM adds 0..n-1 for the n samples."""
    return random.Random(f"azr-vllm-server/{seed}/{request}").getrandbits(62)


def _name(model: Any) -> str:
    return str(model or "").rstrip("/").rsplit("/", 1)[-1]


def _line(reason: Any) -> str:
    lines = str(reason).strip().splitlines()
    return lines[0][:300] if lines else type(reason).__name__


def _detail(error: urllib.error.HTTPError) -> str:
    """The server's own message: vLLM's {"error": {"message"}} or FastAPI's {"detail"}."""
    try:
        answer = json.loads(error.read() or b"{}")
    except (OSError, ValueError, http.client.HTTPException):
        return _line(error.reason)
    found = answer.get("error", answer.get("detail", answer.get("message", ""))) if isinstance(answer, dict) else ""
    if isinstance(found, dict):
        found = found.get("message", found)
    return _line(found) if found else _line(error.reason)
