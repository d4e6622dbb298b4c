"""GPU smoke test of the scale-out path, offline: FSDP2 updates, their parity with the unsharded
path, DCP save and load, the Hugging Face export, and the generation backends side by side.

    python perf/gpu_smoke.py --out smoke.json              # one GPU: FSDP2 at world size 1 on NCCL
    python perf/gpu_smoke.py --dry-run --out dry.json      # the same checks on CPU (gloo), small

The model is random, of Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 heads with 2 key/value
heads, MLP 4864) with its real 151,936-token vocabulary (the embedding and the logits are a large
part of its memory and time); the tokenizer is the tiny one, so nothing is downloaded. Each check
writes the results file as it ends, so a run cut off by its time limit still reports what it did.
Needs torch, transformers and what azr imports (omegaconf, rich...): the first check lists what
is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

NEEDED = ("transformers", "omegaconf", "rich", "safetensors", "yaml")


class Smoke:
    def __init__(self, out: Path, dry_run: bool) -> None:
        self.out, self.dry_run = out, dry_run
        self.results: dict[str, Any] = {"dry_run": dry_run}
        self.device = "cpu" if dry_run else "cuda"

    def check(self, name: str, work: Any) -> Any:
        started = time.perf_counter()
        print(f"-- {name}", flush=True)
        try:
            found = work()
            entry = {"ok": True, **(found or {})}
        except Exception as error:
            traceback.print_exc()
            entry = {"ok": False, "error": f"{type(error).__name__}: {error}"[:2000]}
        entry["seconds"] = round(time.perf_counter() - started, 2)
        self.results[name] = entry
        self.out.write_text(json.dumps(self.results, indent=1))
        print(json.dumps(entry), flush=True)
        return entry

    def peak_gib(self) -> float:
        return round(torch.cuda.max_memory_allocated() / 2**30, 2) if self.device == "cuda" else 0.0

    def reset_peak(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()


def environment(dry_run: bool) -> dict[str, Any]:
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise RuntimeError(f"missing modules: {', '.join(missing)} (carry wheels, or pip install them)")
    import transformers

    found = {"torch": torch.__version__, "transformers": transformers.__version__}
    if not dry_run:
        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA device (use --dry-run on CPU)")
        found["device"] = torch.cuda.get_device_name(0)
        found["memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return found


def build_model(directory: Path, dry_run: bool) -> dict[str, Any]:
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from azr.engine import tiny

    tokenizer = AutoTokenizer.from_pretrained(tiny.path(0))
    layers = 2 if dry_run else 24
    config = Qwen2Config(
        vocab_size=151_936, hidden_size=896, intermediate_size=4864, num_hidden_layers=layers,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1_000_000.0,
        tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return {"parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1), "layers": layers}


def join_one(dry_run: bool) -> Any:
    """A torchrun world of one (NCCL on the GPU, gloo in a dry run): the model is sharded with
    FSDP2 and its collectives run for real."""
    from azr.engine.distributed import join

    for key, value in (("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29533"), ("RANK", "0"), ("WORLD_SIZE", "1"),
                       ("LOCAL_RANK", "0"), ("LOCAL_WORLD_SIZE", "1")):  # fmt: skip
        os.environ.setdefault(key, value)
    if dry_run:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    return join()


def policy_and_updater(model: Path, device: str, world: Any, dtype: str = "bfloat16") -> tuple[Any, Any]:
    """The policy (sharded when `world` is torchrun's) and its updater."""
    from azr.config import ModelConfig, OptimConfig
    from azr.engine.policy import Policy
    from azr.selfplay.update import Updater

    config = ModelConfig(path=str(model), device=device, dtype=dtype, gradient_checkpointing=True)
    policy = Policy(config, seed=0, world=world)
    return policy, Updater(policy, OptimConfig(lr=1e-5, micro_batch_size=8, warmup_steps=0))


def trajectories(count: int, prompt: int, completion: int) -> list[Any]:
    """Sequences of uneven lengths (completions from a quarter of `completion` to all of it)."""
    from azr.selfplay.update import Trajectory
    from azr.tasks import Role, TaskType

    generator = torch.Generator().manual_seed(0)
    made = []
    for i in range(count):
        ids = torch.randint(20, 1000, (prompt + completion,), generator=generator).tolist()
        length = completion // 4 + (i * 7919) % (completion - completion // 4 + 1)
        made.append(Trajectory(Role.SOLVE, TaskType.DEDUCTION, tuple(ids[:prompt]), tuple(ids[prompt:prompt + length]),
                               0.0, "g", advantage=(-1) ** i * (0.5 + i / count)))  # fmt: skip
    return made


def parameters(policy: Any) -> dict[str, torch.Tensor]:
    """A copy of every weight, in full (gathered where sharded), in float32 on the CPU."""
    from azr.engine.weights import merged_weights

    return {name: tensor.float().cpu().clone() for name, tensor in merged_weights(policy)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_smoke.json"))
    parser.add_argument("--dry-run", action="store_true", help="CPU, gloo, 2 layers, small batches")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=256)
    args = parser.parse_args()
    dry = args.dry_run
    prompts, new_tokens = (8, 16) if dry else (args.prompts, args.new_tokens)
    smoke = Smoke(args.out, dry)
    if not smoke.check("environment", lambda: environment(dry))["ok"]:
        sys.exit(1)
    scratch = Path(tempfile.mkdtemp(prefix="azr-smoke-"))
    model = scratch / "model"
    smoke.check("model", lambda: build_model(model, dry))
    from azr.engine.distributed import World

    world = join_one(dry)
    batch = trajectories(8 if dry else 32, 64 if dry else 512, 32 if dry else 256)
    state: dict[str, Any] = {}

    def fsdp_updates() -> dict[str, Any]:
        policy, updater = policy_and_updater(model, smoke.device, world)
        before = parameters(policy)
        smoke.reset_peak()
        times, stats = [], []
        for seed in (1, 2):
            started = time.perf_counter()
            stats.append(updater.update(batch, seed))
            if smoke.device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        after = parameters(policy)
        moved = max(float((after[k] - before[k]).abs().max()) for k in after)
        if not all(math.isfinite(s["loss"]) for s in stats) or moved == 0:
            raise RuntimeError(f"losses {[s['loss'] for s in stats]}, largest parameter change {moved}")
        state.update(policy=policy, updater=updater, after=after)
        return {"losses": [s["loss"] for s in stats], "grad_norms": [s["grad_norm"] for s in stats],
                "update_seconds": [round(t, 2) for t in times], "moved": moved, "peak_gib": smoke.peak_gib(),
                "sequences": len(batch), "tokens": sum(len(t.ids) for t in batch)}  # fmt: skip

    def parity() -> dict[str, Any]:
        """Sharded and plain, two updates each, in float32: in bfloat16 the two cast at different
        points (FSDP2 casts every parameter, autocast only the matmuls' inputs), and AdamW's first
        steps, of the size of lr whatever the gradient, turn any difference into lr-sized ones."""
        found = []
        for sharded in (world, World()):
            policy, updater = policy_and_updater(model, smoke.device, sharded, dtype="float32")
            for seed in (1, 2):
                updater.update(batch, seed)
            found.append(parameters(policy))
            del policy, updater
        gap = max(float((found[0][k] - found[1][k]).abs().max()) for k in found[0])
        if gap > 1e-5:  # lr: a flipped update direction
            raise RuntimeError(f"sharded and plain weights differ by {gap} after two updates")
        return {"max_abs_diff": gap}

    def checkpoint() -> dict[str, Any]:
        from transformers import AutoModelForCausalLM

        from azr.engine import state as training_state

        directory = scratch / "checkpoint"
        directory.mkdir()
        started = time.perf_counter()
        training_state.save(directory, state["policy"], state["updater"], {"step": 2})
        training_state.export(directory / "model", state["policy"])
        saved = time.perf_counter() - started
        policy, updater = policy_and_updater(model, smoke.device, world)
        started = time.perf_counter()
        training_state.load(directory, policy, updater)
        loaded = time.perf_counter() - started
        back = parameters(policy)
        gap = max(float((back[k] - state["after"][k]).abs().max()) for k in back)
        exported = AutoModelForCausalLM.from_pretrained(directory / "model", dtype=torch.float32)
        export_gap = max(float((t.float() - state["after"][k]).abs().max()) for k, t in exported.state_dict().items())
        if gap or export_gap:
            raise RuntimeError(f"loaded weights differ by {gap}, exported by {export_gap}")
        size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
        return {"save_seconds": round(saved, 2), "load_seconds": round(loaded, 2), "bytes": size}

    def generation(backend: str) -> dict[str, Any]:
        from azr.config import GenerationConfig
        from azr.engine.generation import Sampling, make_generator

        policy, _ = policy_and_updater(model, smoke.device, World())
        config = GenerationConfig(backend=backend, max_new_tokens=new_tokens, batch_size=prompts)
        generator = make_generator(policy, config)
        texts = [f"def f{i}(x):\n    return x * {i}\n" * (1 + i % 4) for i in range(prompts)]
        sampling = Sampling(1.0, 1.0, new_tokens, ())
        generator.generate(texts[:2], 1, sampling, seed=0)  # warm-up: kernels, caches
        smoke.reset_peak()
        started = time.perf_counter()
        done = generator.generate(texts, 1, sampling, seed=0)
        if smoke.device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        tokens = sum(len(c.ids) for group in done for c in group)
        if hasattr(generator, "close"):
            generator.close()
        return {"prompts": prompts, "new_tokens": new_tokens, "tokens": tokens, "seconds": round(seconds, 2),
                "tokens_per_second": round(tokens / seconds), "peak_gib": smoke.peak_gib()}  # fmt: skip

    if smoke.check("fsdp2_updates", fsdp_updates)["ok"]:
        smoke.check("parity_with_unsharded", parity)
        smoke.check("dcp_and_export", checkpoint)
    state.clear()
    if smoke.device == "cuda":
        torch.cuda.empty_cache()
    for backend in ("transformers", "transformers-cb"):
        smoke.check(f"generate_{backend}", lambda backend=backend: generation(backend))
    torch.distributed.destroy_process_group()
    shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(smoke.results, indent=1))


if __name__ == "__main__":
    main()
