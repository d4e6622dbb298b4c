"""`tiny-random`: a tiny random-weight model, built locally, to exercise every code path on a CPU.

A byte-level BPE tokenizer trained with `tokenizers` on Python source (the standard library's own,
which every machine has), with the templates' markers as special tokens, and a two-layer Qwen2
model with random weights. Nothing is downloaded. It writes garbage, which is the point: every
failure path of the self-play step runs. Saved in Hugging Face format, so it loads through the same
`from_pretrained` path as any model.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

from azr.prompts.compact import MARKERS

NAME = "tiny-random"
VERSION = 1
SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", *MARKERS, "<think>", "</think>", "<answer>", "</answer>"]
VOCAB_SIZE = 1024


def cache_dir() -> Path:
    return Path(os.environ.get("AZR_CACHE", Path.home() / ".cache" / "azr"))


def path(seed: int = 0) -> Path:
    """Where the tiny model for `seed` lives, built on first use."""
    directory = cache_dir() / f"{NAME}-v{VERSION}-seed{seed}"
    if not (directory / "config.json").exists():
        build(directory, seed)
    return directory


def _corpus(limit_bytes: int = 3_000_000) -> list[str]:
    """Python source to learn a tokenizer from: the standard library, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts, size = [], 0
    for file in sorted(root.glob("*.py")):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        texts.append(text)
        size += len(text)
        if size >= limit_bytes:
            break
    return texts


def build(directory: Path, seed: int = 0) -> Path:
    """Train the tokenizer and initialise the model; written atomically to `directory`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|endoftext|>", pad_token="<|pad|>", bos_token=None
    )
    config = Qwen2Config(
        vocab_size=len(hf_tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=hf_tokenizer.eos_token_id,
        pad_token_id=hf_tokenizer.pad_token_id,
        bos_token_id=hf_tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    temporary = directory.with_name(directory.name + f".tmp-{os.getpid()}")
    model.save_pretrained(temporary)
    hf_tokenizer.save_pretrained(temporary)
    temporary.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(temporary, directory)
    except OSError:  # another process built it first
        import shutil

        shutil.rmtree(temporary, ignore_errors=True)
    return directory
