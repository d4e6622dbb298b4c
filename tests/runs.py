"""Running `azr train` on the tiny random model from tests, and comparing what runs leave behind."""

import json
import os
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from azr.run import checkpoint
from azr.run.rundir import read_manifest
from azr.run.runlog import read_metrics
from azr.tasks.store import TaskStore

FAST = [  # the tiny random model, at the sizes these tests were written for
    "model.path=tiny-random",
    "eval.every=0",
    "selfplay.batch_size=4",
    "selfplay.reuse_rollouts=false",
    "selfplay.max_seed_rounds=1",
    "generation.max_new_tokens=24",
    "train.tensorboard=false",
    "executor.timeout=2",
]

SEED_ROWS = [{"snippet": f"def f(x):\n    return x * {k} + {k % 3}", "input": str(k)} for k in range(2, 14)] + [
    {"snippet": f"def f(s):\n    return s[::{(-1) ** k}] + '{k}'", "input": f"'ab{k}'"} for k in range(12)
]


def azr_train(run_dir, *overrides, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "azr.cli", "train", "--run-dir", str(run_dir), *FAST, *overrides],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip


def training(run_dir, *overrides, steps_logged=1, env=None):
    """A long `azr train` in the background, once it has logged `steps_logged` steps."""
    process = subprocess.Popen(
        [sys.executable, "-m", "azr.cli", "train", "--run-dir", str(run_dir), *FAST, *overrides],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(read_metrics(run_dir)) < steps_logged and process.poll() is None:
        time.sleep(0.2)
    return process


def seeded(tmp_path):
    """Settings that seed the buffers with real tasks, so the solver batches are real draws."""
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(row) + "\n" for row in SEED_ROWS))
    return [f"selfplay.seed_files=[deduction:{seeds},abduction:{seeds}]", "selfplay.max_tasks=20"]


def comparable(metrics):
    return [{k: v for k, v in row.items() if k != "time" and not k.startswith("time/") and k != "tokens/per_second"}
            for row in metrics]  # fmt: skip


def exported_tasks(run):
    return subprocess.run(
        [sys.executable, "-m", "azr.cli", "tasks", "export", "--run-dir", str(run)], capture_output=True, text=True
    ).stdout


def assert_same_run(run, reference, step):
    """`run` holds what `reference` holds: metrics, samples, tasks, and the weights at `step`."""
    assert comparable(read_metrics(run)) == comparable(read_metrics(reference))
    assert (run / "samples.jsonl").read_text() == (reference / "samples.jsonl").read_text()
    assert exported_tasks(run) == exported_tasks(reference)
    a = load_file(str(run / "checkpoints" / f"step-{step}" / "model" / "model.safetensors"))
    b = load_file(str(reference / "checkpoints" / f"step-{step}" / "model" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k]) for k in a)


def check_invariants(run, last):
    """What must hold of a run directory after any fault and any resume."""
    assert [row["step"] for row in read_metrics(run)] == list(range(1, last + 1))
    sampled = [json.loads(line)["step"] for line in (run / "samples.jsonl").read_text().splitlines()]
    assert sampled == sorted(sampled) and set(sampled) <= set(range(1, last + 1))
    found = checkpoint.complete(run)
    assert all(checkpoint.verify(path) is None for _, path in found)
    manifest = read_manifest(run)
    assert manifest is not None and manifest.checkpoints == tuple(step for step, _ in found)
    assert manifest.step == (found[-1][0] if found else 0)
    with TaskStore(run / "tasks.db", readonly=True) as store:
        assert store.identity == manifest.store_id and (store.step or 0) >= manifest.step
        assert all(task.step <= (store.step or 0) for task in store.tasks())
    stray = [p for p in run.rglob("*") if ".tmp" in p.name or p.name.startswith(".probe")]
    assert stray == []
