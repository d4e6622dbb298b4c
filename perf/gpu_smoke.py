"""GPU smoke test: a few self-play steps of a random-weight model of Qwen2.5-0.5B's shape, on CUDA
in bfloat16, with nothing downloaded; prints the same time split as perf/train_step.py.

    python perf/gpu_smoke.py [--steps 3] [key=value ...]

The shape is Qwen2.5-0.5B's (hidden 896, 24 layers, 14 heads with 2 key/value heads, MLP 4864),
except the vocabulary, which is the tiny tokenizer's (1,024 tokens instead of 151,936): a model
that cannot read the prompts still exercises every kernel at the right size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch


def build(directory: Path) -> Path:
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from azr.engine import tiny

    tokenizer = AutoTokenizer.from_pretrained(tiny.path(0))
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1_000_000.0,
        tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    params = sum(p.numel() for p in model.parameters())
    print(f"random model of Qwen2.5-0.5B's shape: {params / 1e6:.0f}M parameters")
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_smoke: no CUDA device here")
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    from azr.config.files import load
    from azr.run.runlog import read_metrics
    from azr.run.train import train

    with tempfile.TemporaryDirectory() as scratch:
        model = build(Path(scratch) / "model")
        overrides = [
            f"model.path={model}", "model.device=cuda", "model.dtype=bfloat16", "train.tensorboard=false",
            f"train.steps={args.steps}", "selfplay.batch_size=16", "selfplay.n_mc=8", "selfplay.max_seed_rounds=2",
            "generation.max_new_tokens=256", "generation.batch_size=128", "optim.micro_batch_size=16",
            *args.overrides,
        ]  # fmt: skip
        started = time.perf_counter()
        train(Path(scratch) / "run", load(None, overrides))
        print(f"{args.steps} steps in {time.perf_counter() - started:.1f} s, peak memory "
              f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")  # fmt: skip
        keys = ["generate", "executor", "update", "step"]
        print(f"{'step':>4} " + " ".join(f"{k:>9}" for k in keys) + "  gen tok/s")
        for row in read_metrics(Path(scratch) / "run"):
            print(f"{row['step']:>4} " + " ".join(f"{row[f'time/{k}']:>8.2f}s" for k in keys)
                  + f"  {row['tokens/per_second']:>9.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
