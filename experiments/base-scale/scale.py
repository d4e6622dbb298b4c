"""Issue 15: how much pretraining the embedded model's one-operation arithmetic needs.

One corpus (the shipped build's: `BuildConfig()` stage 1, seed 0), then models pretrained on it
with more steps and more parameters, each scored as the build scores (greedy pass@1 on the
held-out split, the programs of one or two statements apart) and by `azr eval` task by task.

    python scale.py corpus CORPUS.pkl.gz            # stage 1 (14 minutes on 2 CPU cores)
    python scale.py train CORPUS.pkl.gz OUT NAME... # stages 2-4 per variant, in parallel, on --device
    python scale.py table OUT                       # the table of the note from OUT/*/build.json
    python scale.py card CORPUS.pkl.gz OUT NAME MODEL_DIR  # a variant whose scoring was cut: its
                                                    # build.json and card, scored here, into MODEL_DIR

A variant is a name from VARIANTS. Training runs each variant in its own process (they share one
GPU well: a 6-layer model at batch 32 leaves it mostly idle).
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import pickle
import re
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from safetensors.torch import load_file

from azr.base.build import BuildConfig, make_corpus, model_card, score, train_model

WIDE = {"hidden_size": 512, "intermediate_size": 1536, "layers": 8, "heads": 8, "kv_heads": 4}
VARIANTS: dict[str, dict] = {
    "ship": {},  # the shipped model's settings: 5.8M parameters, 1.2 epochs
    "epochs4": {"epochs": 4.0},
    "wide": WIDE,  # 24M parameters
    "wide-epochs4": {**WIDE, "epochs": 4.0},
}


def corpus(path: Path) -> None:
    started = time.time()
    made = make_corpus(path.parent / "corpus-files", BuildConfig())
    with gzip.open(path, "wb") as f:
        pickle.dump(made, f)
    print(f"corpus in {time.time() - started:.0f} s: {made.data}")


def _train(made, out: Path, name: str, device: str) -> None:
    config = replace(BuildConfig(device=device), **VARIANTS[name])
    with open(out / f"{name}.log", "w") as log:

        def say(line: str) -> None:
            log.write(line + "\n")
            log.flush()

        train_model(out / name, made, config, say)


def train(path: Path, out: Path, names: list[str], device: str = "cuda") -> None:
    with gzip.open(path, "rb") as f:
        made = pickle.load(f)
    out.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("fork")  # the corpus is shared, not copied; CUDA starts in the child
    runs = [context.Process(target=_train, args=(made, out, name, device)) for name in names]
    for run in runs:
        run.start()
    for run in runs:
        run.join()


def table(out: Path) -> None:
    print(
        "| variant | parameters | epochs | tokens | seconds | loss | deduction | abduction | induction | "
        "short deduction | short abduction |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in VARIANTS:
        path = out / name / "build.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        p, h = r["pretraining"], r["heldout"]
        g, s = h["pass@1_greedy"], h["pass@1_greedy_short"]
        print(
            f"| {name} | {p['parameters']:,} | {p['epochs']} | {p['tokens_trained']:,} | {p['seconds']} | "
            f"{p['loss'][-1][1]} | {g['deduction']:.3f} | {g['abduction']:.3f} | {g['induction']:.3f} | "
            f"{s['deduction']:.3f} | {s['abduction']:.3f} |"
        )


def card(path: Path, out: Path, name: str, model_dir: Path, corpus_seconds: int) -> None:
    """build.json and MODEL_CARD.md for a variant whose pretraining finished but whose scoring was
    cut: the pretraining numbers from its log, the scores computed here, on this machine."""
    with gzip.open(path, "rb") as f:
        made = pickle.load(f)
    config = replace(BuildConfig(device="cuda"), **VARIANTS[name])
    curve, rate = [], 0
    for line in (out / f"{name}.log").read_text().splitlines():
        match = re.match(r"\s+step (\d+)/\d+\s+loss ([\d.]+)\s+(\d+) tokens/s", line)
        if match:
            curve.append([int(match[1]), float(match[2])])
            rate = int(match[3])
    steps = curve[-1][0]
    tokens = steps * config.batch_size * config.context
    parameters = sum(t.numel() for t in load_file(model_dir / "model.safetensors").values())
    in_corpus = json.loads((out / "ship" / "build.json").read_text())["pretraining"]["tokens_in_corpus"]
    started = time.time()
    heldout = score(model_dir, made.heldout, made.train, replace(config, device="cpu"))
    report = {
        "config": asdict(config), "data": made.data,
        "pretraining": {
            "parameters": parameters,
            "tokens_in_corpus": in_corpus, "steps": steps,
            "epochs": round(steps * config.batch_size * (config.context + 1) / in_corpus, 2),
            "tokens_trained": tokens, "seconds": round(tokens / rate),
            "tokens_per_second": rate, "loss": curve,
        },
        "heldout": heldout,
    }  # fmt: skip
    report["build_seconds"] = corpus_seconds + report["pretraining"]["seconds"] + round(time.time() - started)
    report["where"] = (
        f" That is the sum of its parts, which ran on two machines: tasks and traces on 2 CPU cores"
        f" ({corpus_seconds:,} s); the tokenizer and pretraining on one H200 GPU, beside three other"
        f" builds (the tokens/s above is this one's share); the scores on the 2 CPU cores."
    )
    (model_dir / "build.json").write_text(json.dumps(report, indent=1) + "\n")
    (model_dir / "MODEL_CARD.md").write_text(model_card(report))
    print(heldout)


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "corpus":
        corpus(Path(rest[0]))
    elif command == "train":
        train(Path(rest[0]), Path(rest[1]), rest[2:])
    elif command == "card":
        card(Path(rest[0]), Path(rest[1]), rest[2], Path(rest[3]), int(rest[4]))
    else:
        table(Path(rest[0]))
