"""Faults injected into real runs (the tiny random model, seeded with real tasks): SIGKILL at each
kill point, damaged checkpoints, a deleted or foreign store, a lost WAL, a lost manifest, two
writers, SIGTERM, a full disk and a read-only one. After each, the same invariants: every step
once in metrics and samples, checkpoints that verify and are the ones the manifest lists, a store
consistent with them, no stray temporaries, and, wherever the run could go on, metrics, samples,
tasks and weights equal to an unbroken run's."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from runs import assert_same_run, azr_train, check_invariants, seeded, training

from azr.run import checkpoint
from azr.run.console import StopOnSignal
from azr.run.rundir import MANIFEST
from azr.run.runlog import read_metrics
from azr.tasks.store import TaskStore

STEPS = 6
SETTINGS = [f"train.steps={STEPS}", "train.save_every=2", "train.keep_checkpoints=2", "optim.entropy_coef=0.01"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return [*SETTINGS, *seeded(tmp_path_factory.mktemp("seeds"))]


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory, settings):
    run = tmp_path_factory.mktemp("unbroken") / "run"
    done = azr_train(run, *settings)
    assert done.returncode == 0, done.stderr[-3000:]
    check_invariants(run, STEPS)
    return run


def _one_line_error(done, *phrases, alone=True):
    """Exit code 2 and one line of error (the only line of stderr, unless the run got far enough to
    print its progress), no traceback."""
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("azr train: error: ") and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1 or not alone, done.stderr[-3000:]
    for phrase in phrases:
        assert phrase in lines[-1], lines[-1]


@pytest.mark.parametrize(
    "point",
    [
        "step-logged:1",  # before any checkpoint: the run starts over
        "step-logged:3",  # the steps after the last checkpoint are done again
        "checkpoint-written:4",  # its files written, not renamed into place
        "checkpoint-renamed:6",  # in place, the oldest not yet pruned
        "checkpoint-pruned:6",  # pruned, the manifest not yet updated
    ],
)
def test_a_kill_at_any_point_resumes_to_the_unbroken_run(tmp_path, settings, unbroken, point):
    run = tmp_path / "run"
    killed = azr_train(run, *settings, env={"AZR_FAULT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = azr_train(run, *settings)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    check_invariants(run, STEPS)
    assert_same_run(run, unbroken, STEPS)


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda path: os.truncate(path / "model" / "model.safetensors", 1000), "model/model.safetensors has 1000"),
        (lambda path: shutil.rmtree(path / "model"), "is missing"),
    ],
)
def test_a_damaged_newest_checkpoint_is_skipped_with_a_warning(tmp_path, settings, unbroken, damage, why):
    run = tmp_path / "run"
    assert azr_train(run, *settings, env={"AZR_FAULT": "step-logged:5"}).returncode == -signal.SIGKILL
    damage(run / "checkpoints" / "step-4")
    resumed = azr_train(run, *settings)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "checkpoint step-4 is not usable" in resumed.stderr and why in resumed.stderr
    assert "resuming" in resumed.stderr and "from step 2" in resumed.stderr
    check_invariants(run, STEPS)
    assert_same_run(run, unbroken, STEPS)


def test_a_run_missing_its_store_manifest_or_wal_is_refused_then_resumes_when_restored(tmp_path, settings, unbroken):
    run = tmp_path / "run"
    assert azr_train(run, *settings, env={"AZR_FAULT": "step-logged:3"}).returncode == -signal.SIGKILL
    before = _contents(run)
    kept = tmp_path / "kept"
    kept.mkdir()

    shutil.move(run / "tasks.db", kept / "tasks.db")
    _one_line_error(azr_train(run, *settings), "tasks.db is missing", "--fresh")
    assert not (run / "tasks.db").exists()
    shutil.move(kept / "tasks.db", run / "tasks.db")

    if (run / "tasks.db-wal").exists():  # the killed trainer's commits are in the WAL
        shutil.move(run / "tasks.db-wal", kept / "tasks.db-wal")
        _one_line_error(azr_train(run, *settings), "tasks.db")
        shutil.move(kept / "tasks.db-wal", run / "tasks.db-wal")

    shutil.move(run / MANIFEST, kept / MANIFEST)
    _one_line_error(azr_train(run, *settings), "no run.json")
    shutil.move(kept / MANIFEST, run / MANIFEST)

    (run / "config.yaml").unlink()  # only a copy: the manifest still refuses another algorithm
    _one_line_error(azr_train(run, *settings, "selfplay.n_mc=6"), "started with selfplay.n_mc=4")

    assert _contents(run) == {p: data for p, data in before.items() if p.name != "config.yaml"}  # left as it was
    resumed = azr_train(run, *settings)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    check_invariants(run, STEPS)
    assert_same_run(run, unbroken, STEPS)


def _contents(run):
    """What a refused start must not change: all but the lock, the WAL index and config.yaml (a copy)."""
    skip = (".lock", "config.yaml", "tasks.db-shm")
    return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name not in skip}


def test_fresh_starts_over_and_keeps_the_old_run(tmp_path, settings):
    run = tmp_path / "run"
    assert azr_train(run, *settings, "train.steps=1").returncode == 0
    (run / MANIFEST).unlink()
    _one_line_error(azr_train(run, *settings, "train.steps=1"), "--fresh")
    done = azr_train(run, *settings, "train.steps=1", "--fresh")
    assert done.returncode == 0, done.stderr[-3000:]
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert (
        len(aside) == 1
        and (aside[0] / "metrics.jsonl").exists()
        and f"moved the previous run to {aside[0]}" in (done.stderr.replace("\n", ""))
    )
    check_invariants(run, last=1)


def test_a_second_writer_fails_at_once_and_sigterm_saves_and_exits_143(tmp_path, settings):
    run = tmp_path / "run"
    first = training(run, *settings, "train.steps=200", "train.save_every=100")
    started = time.monotonic()
    second = azr_train(run, *settings, "train.steps=200", "train.save_every=100")
    _one_line_error(second, f"in use by another process (pid {first.pid})")
    assert time.monotonic() - started < 30  # at once: before loading a model
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    last = read_metrics(run)[-1]["step"]
    assert "interrupted: saved step" in stderr and checkpoint.complete(run)[-1][0] == last
    check_invariants(run, last=last)
    resumed = azr_train(run, *settings, f"train.steps={last + 1}", "train.save_every=100")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    check_invariants(run, last=last + 1)


def test_a_full_disk_is_one_line_and_the_resume_after_freeing_space_equals_the_unbroken_run(disk, settings, unbroken):
    run = disk.path / "run"
    used = sum(p.stat().st_size for p in unbroken.rglob("*") if p.is_file())
    one_checkpoint = sum(p.stat().st_size for p in (unbroken / "checkpoints" / "step-6").rglob("*") if p.is_file())
    disk.remount(f"size={(used - one_checkpoint // 2) // 1024}k")  # room for all but the last checkpoint
    full = azr_train(run, *settings)
    _one_line_error(full, "No space left on device", "committed is intact", "resume from step", alone=False)
    disk.remount("size=64m")
    resumed = azr_train(run, *settings)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    check_invariants(run, STEPS)
    assert_same_run(run, unbroken, STEPS)


def test_a_read_only_run_refuses_training_in_one_line_and_readers_still_work(disk, settings, unbroken, tmp_path):
    mount = disk.path
    shutil.copytree(unbroken, mount / "run")
    disk.remount("ro")
    _one_line_error(azr_train(mount / "run", *settings, "train.steps=8"), "Read-only file system")
    with TaskStore(unbroken / "tasks.db", readonly=True) as store:
        task_id = store.rows(limit=1)[0][0]
    for command in (["tasks", "list"], ["tasks", "show", str(task_id)], ["tasks", "export"],
                    ["report", "--out", str(tmp_path / "report")]):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "azr.cli", *command, "--run-dir", str(mount / "run")],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0 and done.stdout, (command, done.stderr[-2000:])
    elsewhere = subprocess.run([sys.executable, "-m", "azr.cli", "report", "--run-dir", str(mount / "run")],
                               capture_output=True, text=True, timeout=300)  # fmt: skip
    assert elsewhere.returncode == 2 and elsewhere.stderr.count("\n") == 1 and "give --out DIR" in elsewhere.stderr
    assert "could not be read" not in (tmp_path / "report" / "index.html").read_text()  # the store was


def test_a_second_sigterm_stops_at_once_with_143_and_the_last_checkpoint_stands(tmp_path, settings, unbroken):
    run = tmp_path / "run"
    # stalled after step 3 is logged, with a checkpoint at step 2
    process = training(run, *settings, steps_logged=3, env={"AZR_FAULT": "step-logged:3:stall"})
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60  # two signals at once would be one: the second after the first is seen
    while time.monotonic() < deadline and not any("finishing this step" in line for line in lines):
        time.sleep(0.05)
    time.sleep(StopOnSignal.REPEAT + 0.2)  # within it, the same signal is the same request heard twice
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    reader.join(timeout=10)
    stderr = "".join(lines)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "stopped; the last checkpoint stands" in stderr and "Traceback" not in stderr
    resumed = azr_train(run, *settings)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    check_invariants(run, STEPS)
    assert_same_run(run, unbroken, STEPS)
