"""The run directory's guards, piece by piece: the lock, the manifest, checkpoint checksums, the
store's identity and read-only mode, the resume plan's refusals, and naming a refused write.
Whole runs under injected faults are in test_faults.py."""

import errno
import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from azr.config import Config, ConfigError, as_dict
from azr.config.files import load, to_yaml
from azr.disk import WriteRefused, resource_problem, write_atomically
from azr.run import checkpoint, resume
from azr.run.rundir import MANIFEST, Manifest, RunDirError, RunLock, read_manifest, set_aside, write_manifest
from azr.tasks import TaskType, TripletTask
from azr.tasks.store import StoreError, TaskStore

# -- one writer -----------------------------------------------------------------------------------


def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path):
    busy = rf"in use by another process \(pid {os.getpid()}\)"
    with RunLock(tmp_path / "run"), pytest.raises(RunDirError, match=busy):
        RunLock(tmp_path / "run").__enter__()
    with RunLock(tmp_path / "run"):  # released on exit
        pass


def test_a_killed_writer_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from azr.run.rundir import RunLock;"
         f"lock = RunLock(Path({str(tmp_path)!r})).__enter__(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunDirError, match=f"pid {holder.pid}"):
        RunLock(tmp_path).__enter__()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with RunLock(tmp_path):
        pass


def test_a_file_is_not_a_run_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file, not a run directory"):
        RunLock(tmp_path / "file").__enter__()


def test_fresh_moves_the_old_run_aside_and_keeps_it(tmp_path):
    run = tmp_path / "run"
    assert set_aside(run) is None  # nothing there
    run.mkdir()
    (run / "metrics.jsonl").write_text("{}\n")
    aside = set_aside(run)
    assert aside is not None and aside.parent == tmp_path and aside.name.startswith("run.replaced-")
    assert (aside / "metrics.jsonl").read_text() == "{}\n" and not run.exists()
    run.mkdir()
    (run / "x").write_text("")
    assert set_aside(run) != aside  # a second one in the same second gets its own name


# -- the manifest ---------------------------------------------------------------------------------


def _manifest(config=None, step=0, checkpoints=()):
    return Manifest(as_dict(config or Config()), "abc", step, checkpoints)


def test_the_manifest_round_trips_and_damage_is_one_line(tmp_path):
    write_manifest(tmp_path, _manifest(step=4, checkpoints=(2, 4)))
    assert read_manifest(tmp_path) == _manifest(step=4, checkpoints=(2, 4))
    assert read_manifest(tmp_path / "elsewhere") is None
    path = tmp_path / MANIFEST
    data = json.loads(path.read_text())
    data["config"]["selfplay"]["n_mc"] = 99  # hand-edited: no longer matches its hash
    path.write_text(json.dumps(data))
    with pytest.raises(RunDirError, match="is damaged"):
        read_manifest(tmp_path)
    for damaged in (b'{"format": 1', b"\xff\xfe", b"[]", b'{"store": {"id": 1, "step": "x"}, "checkpoints": 3}'):
        path.write_bytes(damaged)
        with pytest.raises(RunDirError, match=r"run\.json") as caught:
            read_manifest(tmp_path)
        assert "\n" not in str(caught.value) and "--fresh" in str(caught.value)


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    write_atomically(path, "old")

    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        write_atomically(path, "new")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


# -- checkpoints ----------------------------------------------------------------------------------


@functools.cache
def _model():
    """The tiny random model and its optimizer, what a checkpoint holds."""
    from azr.config import ModelConfig, OptimConfig
    from azr.engine.policy import Policy
    from azr.selfplay.update import Updater

    policy = Policy(ModelConfig(path="tiny-random", device="cpu"))
    return policy, Updater(policy, OptimConfig())


@pytest.fixture
def model():
    return _model()


def test_checkpoints_carry_checksums_and_the_newest_that_verifies_is_used(tmp_path, model):
    for step in (2, 4, 6):
        checkpoint.save(tmp_path, step, *model, keep=3)
    assert [s for s, _ in checkpoint.complete(tmp_path)] == [2, 4, 6]
    assert checkpoint.usable(tmp_path) == ((6, tmp_path / "checkpoints" / "step-6"), [])
    step6, step4 = tmp_path / "checkpoints" / "step-6", tmp_path / "checkpoints" / "step-4"
    with open(step6 / "model" / "model.safetensors", "r+b") as handle:  # bit rot: same size
        handle.seek(100)
        handle.write(b"\x00" if handle.read(1) != b"\x00" else b"\x01")
    os.truncate(step4 / checkpoint.STATE_FILE, 10)
    chosen, skipped = checkpoint.usable(tmp_path)
    assert chosen == (2, tmp_path / "checkpoints" / "step-2")
    size = (step6 / checkpoint.STATE_FILE).stat().st_size
    assert skipped == [(6, "model/model.safetensors does not match its checksum"),
                       (4, f"trainer_state.pt has 10 bytes, not {size}")]  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda p: (p / "model" / "config.json").unlink(), "model/config.json is missing"),
        (lambda p: __import__("shutil").rmtree(p / "model"), "model/"),
        (lambda p: (p / checkpoint.CHECKSUMS).write_text("{"), "checksums.json is damaged"),
        (lambda p: (p / checkpoint.CHECKSUMS).unlink(), "checksums.json is missing"),
        (lambda p: (p / checkpoint.CHECKSUMS).write_text('{"files": {}}'), "does not list trainer_state.pt"),
        (lambda p: (p / checkpoint.CHECKSUMS).write_text(
            '{"files": {"trainer_state.pt": {"bytes": 1, "sha256": "x"}, "../../x": {"bytes": 1, "sha256": "x"}}}'),
         "outside the checkpoint"),
    ],
)  # fmt: skip
def test_each_kind_of_damage_is_named(tmp_path, model, damage, problem):
    path = checkpoint.save(tmp_path, 1, *model, keep=1)
    assert checkpoint.verify(path) is None
    damage(path)
    assert problem in checkpoint.verify(path)


def test_a_failed_save_leaves_the_older_checkpoints_and_nothing_half_written(tmp_path, model, monkeypatch):
    checkpoint.save(tmp_path, 2, *model, keep=2)
    export = checkpoint.training_state.export

    def broken(directory, policy):
        export(directory, policy)
        raise RuntimeError("unexpected pos 576 vs 534")  # torch.save's words for a full disk

    monkeypatch.setattr(checkpoint.training_state, "export", broken)
    with pytest.raises(RuntimeError):  # the disk is fine: a bug, raised as it is
        checkpoint.save(tmp_path, 4, *model, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-2"]


def test_a_checkpoint_written_by_azr_0_3_resumes_in_one_process(tmp_path):
    """Before DCP a checkpoint held the weights in model/ and the optimizer's state by parameter
    number in trainer_state.pt; such a checkpoint still loads (in one process)."""
    import random

    import torch

    from azr.config import ModelConfig, OptimConfig
    from azr.engine.distributed import World
    from azr.engine.policy import Policy, PolicyError
    from azr.selfplay.update import Updater

    policy = Policy(ModelConfig(path="tiny-random", device="cpu"))
    updater = Updater(policy, OptimConfig(lr=1e-2))
    policy.parameters()[0].grad = torch.ones_like(policy.parameters()[0])
    updater.optimizer.step()
    old = tmp_path / "step-3"
    policy.save(old / "model")
    rng = {"python": random.getstate(), "torch": torch.get_rng_state()}
    torch.save({"step": 3, "updater": updater.state_dict(), "rng": rng}, old / checkpoint.STATE_FILE)

    fresh = Policy(ModelConfig(path="tiny-random", device="cpu"))
    again = Updater(fresh, OptimConfig(lr=1e-2))
    assert checkpoint.load(old, fresh, again)["step"] == 3
    for ours, theirs in zip(fresh.parameters(), policy.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    assert torch.equal(again.optimizer.state_dict()["state"][0]["exp_avg"],
                       updater.optimizer.state_dict()["state"][0]["exp_avg"])  # fmt: skip
    fresh.world = World(0, 2, sharded=True)
    with pytest.raises(PolicyError, match="resume it in one process"):
        checkpoint.load(old, fresh, again)


# -- the store ------------------------------------------------------------------------------------


def _task(step):
    return TripletTask(TaskType.DEDUCTION, f"def f(x):\n    return x + {step}", "1", str(1 + step), (), step, "t")


def test_the_store_has_an_identity_and_a_committed_step(tmp_path):
    with TaskStore(tmp_path / "tasks.db") as store:
        identity = store.identity
        assert len(identity) == 32 and store.step is None
        store.add([_task(1)])
        store.commit_step(1)
        store.add([_task(2)])
        store.commit_step(2)
        store.truncate_after(1)
        assert store.step == 1 and store.count() == 1
    with TaskStore(tmp_path / "tasks.db") as again:
        assert again.identity == identity
    assert TaskStore(tmp_path / "other.db").identity != identity


def test_a_read_only_store_reads_and_refuses_writes_in_one_line(tmp_path):
    with TaskStore(tmp_path / "tasks.db") as store:
        store.add([_task(1)])
    with TaskStore(tmp_path / "tasks.db", readonly=True) as reader:
        assert reader.count() == 1
        with pytest.raises(WriteRefused, match=r"cannot write .*tasks.db: attempt to write a readonly database"):
            reader.add([_task(2)])
    with pytest.raises(StoreError, match="not a usable task store"):
        TaskStore(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()  # a reader creates nothing


def test_huge_ids_are_not_found(tmp_path):
    with TaskStore(tmp_path / "tasks.db") as store:
        assert store.get(10**25) is None and store.get(-1) is None


# -- the resume plan ------------------------------------------------------------------------------


def _run(tmp_path, checkpoints=(), config=None):
    """A run directory as a run would leave it: a store, checkpoints, a manifest."""
    run = tmp_path / "run"
    run.mkdir()
    with TaskStore(run / "tasks.db") as store:
        store.commit_step(max(checkpoints, default=0))
        identity = store.identity
    for step in checkpoints:
        checkpoint.save(run, step, *_model(), keep=10)
    write_manifest(run, Manifest(as_dict(config or Config()), identity, max(checkpoints, default=0), checkpoints))
    return run


def test_a_resume_may_change_train_but_nothing_else(tmp_path):
    run = _run(tmp_path, (2,))
    assert resume.plan(run, load(None, ["train.steps=100", "train.save_every=5"])).step == 2
    for override, name in [("selfplay.n_mc=6", "selfplay.n_mc"), ("eval.every=3", "eval.every"),
                           ("train.seed=1", "train.seed"), ("model.path=other", "model.path")]:  # fmt: skip
        with pytest.raises(ConfigError, match=rf"started with {name}=.*--fresh"):
            resume.plan(run, load(None, [override]))


def test_trained_state_without_a_manifest_is_refused(tmp_path):
    run = _run(tmp_path, (2,))
    (run / MANIFEST).unlink()
    with pytest.raises(RunDirError, match=r"no run\.json"):
        resume.plan(run, Config())
    fresh = tmp_path / "pre-seeded"  # a store alone (azr tasks import) is a new run
    fresh.mkdir()
    TaskStore(fresh / "tasks.db").close()
    assert resume.plan(fresh, Config()).manifest is None


def test_a_checkpoint_listed_but_gone_is_skipped_and_none_usable_is_refused(tmp_path):
    run = _run(tmp_path, (2, 4))
    __import__("shutil").rmtree(run / "checkpoints" / "step-4")
    start = resume.plan(run, Config())
    assert start.step == 2 and start.skipped == ((4, "missing, though run.json lists it"),)
    __import__("shutil").rmtree(run / "checkpoints" / "step-2")
    with pytest.raises(RunDirError, match=r"no checkpoint .* is usable \(step-4: missing.*step-2: missing"):
        resume.plan(run, Config())


def test_the_store_must_be_the_runs_and_not_behind_its_checkpoint(tmp_path):
    run = _run(tmp_path, (2,))
    start = resume.plan(run, Config())
    resume.open_store(run, start, None).close()
    (run / "tasks.db").rename(run / "kept.db")
    with pytest.raises(RunDirError, match=r"tasks\.db is missing"):
        resume.open_store(run, start, None)
    assert not (run / "tasks.db").exists()  # a resume never creates the store
    TaskStore(run / "tasks.db").close()
    with pytest.raises(RunDirError, match="is not this run's task store"):
        resume.open_store(run, start, None)
    (run / "kept.db").replace(run / "tasks.db")
    with sqlite3.connect(run / "tasks.db") as db:  # as if the commits of step 2 were lost
        db.execute("UPDATE meta SET value = '1' WHERE key = 'step'")
    with pytest.raises(RunDirError, match="lost commits: it holds steps up to 1, the checkpoint is step 2"):
        resume.open_store(run, start, None)


# -- naming a refused write -----------------------------------------------------------------------


def test_a_refused_write_is_named_however_the_library_reports_it(tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))
    assert resource_problem(full, tmp_path) == f"{tmp_path / 'x'}: No space left on device"
    wrapped = RuntimeError("save failed")
    wrapped.__cause__ = OSError(errno.EROFS, "Read-only file system")
    assert resource_problem(wrapped, tmp_path) == f"{tmp_path}: Read-only file system"
    rust = RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert resource_problem(rust, tmp_path) == f"cannot write {tmp_path}: No space left on device"
    sqlite = sqlite3.OperationalError("database or disk is full")
    sqlite.sqlite_errorname = "SQLITE_FULL"
    assert resource_problem(sqlite, tmp_path) == f"cannot write {tmp_path}: database or disk is full"
    # torch.save says only "unexpected pos": the probe asks the disk, which has room here: a bug
    assert resource_problem(RuntimeError("unexpected pos 576 vs 534"), tmp_path) is None
    assert list(tmp_path.iterdir()) == []  # the probe cleans up


@pytest.fixture
def small_disk(disk):
    disk.remount("size=2m")
    return disk.path


def test_a_full_disk_is_found_by_the_probe_when_nothing_names_it(small_disk):
    with open(small_disk / "rest", "wb", buffering=0) as handle, pytest.raises(OSError):
        while True:
            handle.write(b"\0" * 4096)
    problem = resource_problem(RuntimeError("unexpected pos 576 vs 534"), small_disk / "rest")
    assert problem == f"cannot write {small_disk}: No space left on device"


def test_a_full_disk_during_a_save_is_a_write_refused_and_leaves_no_half_checkpoint(disk, model):
    disk.remount("size=5m")  # room for one checkpoint of the tiny model (2.8 MB), not two
    small_disk = disk.path
    checkpoint.save(small_disk, 1, *model, keep=2)
    with pytest.raises(WriteRefused, match=r"checkpoints/step-2.*No space left on device"):
        checkpoint.save(small_disk, 2, *model, keep=2)
    assert sorted(p.name for p in (small_disk / "checkpoints").iterdir()) == ["step-1"]
    assert checkpoint.verify(small_disk / "checkpoints" / "step-1") is None


def test_tasks_import_is_a_writer_and_only_before_training(tmp_path, capsys):
    from azr.cli import main

    run = tmp_path / "run"
    with RunLock(run):
        assert main(["tasks", "import", "--identity", "--run-dir", str(run), "--isolation", "none"]) == 2
    assert f"in use by another process (pid {os.getpid()})" in capsys.readouterr().err
    write_manifest(run, _manifest())
    assert main(["tasks", "import", "--identity", "--run-dir", str(run), "--isolation", "none"]) == 2
    assert "is a training run (run.json)" in capsys.readouterr().err
    assert not (run / "tasks.db").exists()


def test_deleting_the_lock_file_does_not_let_a_second_writer_in(tmp_path):
    with RunLock(tmp_path):
        (tmp_path / ".lock").unlink()
        with pytest.raises(RunDirError, match=r"in use by another process \(pid unknown\)"):
            RunLock(tmp_path).__enter__()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("selfplay:\n  n_mc: lots\n", "config.yaml cannot be read (selfplay.n_mc: Value 'lots'"),
        ("selfplay: [1\n", "config.yaml cannot be read (not valid YAML"),
        ("selfplay:\n  n_mc: 8\n", "config.yaml was edited (selfplay.n_mc=8; the run started with 4)"),
    ],
)
def test_a_hand_edited_config_yaml_is_one_line_not_a_silent_overwrite(tmp_path, text, problem):
    run = _run(tmp_path, (2,))
    (run / "config.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        resume.plan(run, Config())
    assert problem in str(caught.value) and "\n" not in str(caught.value)
    (run / "config.yaml").write_text(to_yaml(load(None, ["train.steps=99"])))  # train.* may differ
    assert resume.plan(run, Config()).step == 2


def test_fresh_works_where_the_directory_cannot_move(disk, monkeypatch):
    (disk.path / "metrics.jsonl").write_text("{}\n")
    aside = set_aside(disk.path)  # a mount point: rename(2) says EBUSY
    assert aside.parent == disk.path and (aside / "metrics.jsonl").read_text() == "{}\n"
    assert sorted(p.name for p in disk.path.iterdir()) == sorted([".lock", aside.name])
    run = disk.path / "run"
    run.mkdir()
    (run / "x").write_text("")
    monkeypatch.chdir(run)
    moved = set_aside(Path("."))
    assert moved is not None and (moved / "x").exists()


def test_a_damaged_store_is_refused_in_one_line(tmp_path, capsys):
    from azr.cli import main

    run = _run(tmp_path, (2,))
    with TaskStore(run / "tasks.db") as store:
        store.add([_task(step) for step in range(1, 2000)])
    size = (run / "tasks.db").stat().st_size
    with open(run / "tasks.db", "r+b") as handle:  # bad pages past the one holding meta
        handle.seek(size // 2)
        handle.write(b"\xff" * 20000)
    with pytest.raises(RunDirError, match=r"tasks\.db is damaged \(.*--fresh"):
        resume.open_store(run, resume.plan(run, Config()), None)
    assert main(["tasks", "list", "--run-dir", str(run), "--limit", "0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is damaged" in error


def test_an_unreadable_checkpoint_is_an_error_not_damage(tmp_path):
    run = _run(tmp_path, (2, 4))
    checksums = run / "checkpoints" / "step-4" / checkpoint.CHECKSUMS
    checksums.unlink()
    checksums.mkdir()  # reading it raises IsADirectoryError, as EACCES or EIO would raise theirs
    with pytest.raises(RunDirError, match=r"cannot read .*step-4/checksums\.json: Is a directory"):
        resume.plan(run, Config())
    assert (run / "checkpoints" / "step-4").is_dir()  # not skipped, not moved


def test_damaged_log_lines_are_dropped_and_missing_steps_named(tmp_path, caplog):
    from azr.run.runlog import RunLog

    lines = [b'{"step": 1}', b"\xff\xfe", b'{"step": null}', b"[3]", b'{"step": true}', b'{"step": 3}', b'{"st']
    (tmp_path / "metrics.jsonl").write_bytes(b"\n".join(lines))
    RunLog(tmp_path, 4, tensorboard=False, wandb_project="", config={}).close()
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 1}\n{"step": 3}\n'
    assert "lacks the lines of steps 2, 4 (deleted or damaged)" in caplog.text


def test_tensorboards_writer_thread_prints_no_traceback_of_its_own(tmp_path, monkeypatch):
    """Its failure is raised again by the next flush, as one line: Python's report of the thread's
    exception is dropped; any other thread's still goes to the hook before."""
    import threading
    from types import SimpleNamespace

    from azr.run.runlog import RunLog

    seen = []
    monkeypatch.setattr(threading, "excepthook", seen.append)
    RunLog(tmp_path, 0, tensorboard=True, wandb_project="", config={}).close()

    class _AsyncWriterThread(threading.Thread):  # the name of TensorBoard's writer thread
        pass

    other = threading.Thread()
    for thread in (_AsyncWriterThread(), other):
        threading.excepthook(SimpleNamespace(thread=thread, exc_value=OSError(28, "No space left on device")))
    assert [args.thread for args in seen] == [other]
