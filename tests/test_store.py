"""The SQLite task store: dedup, cap, sampling, reload by step, concurrency and crash safety."""

import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from azr.tasks import InductionTask, TaskType, TripletTask
from azr.tasks.store import StoreError, TaskStore

D, A, N = TaskType.DEDUCTION, TaskType.ABDUCTION, TaskType.INDUCTION


def task(i: int, step: int = 0, task_type: TaskType = D) -> TripletTask:
    return TripletTask(task_type, f"def f(a):\n    return a + {i}", "1", str(1 + i), step=step)


INDUCTION = InductionTask("def f(x):\n    return -x", ("1", "2", "3", "4"), ("-1", "-2", "-3", "-4"), "negates", (0, 3))


@pytest.fixture
def store(tmp_path):
    with TaskStore(tmp_path / "tasks.db") as store:
        yield store


def test_round_trip_of_every_field(store):
    triplet = TripletTask(A, "import re\ndef f(a):\n    return a", "'x', k=2", "'x'", ("import re",), 7, "seed:x.jsonl")
    assert store.add([triplet, INDUCTION]) == [True, True]
    assert store.tasks() == [triplet, INDUCTION]
    assert store.tasks(N) == [INDUCTION]
    assert store.get(1) == triplet and store.get(99) is None


def test_duplicates_are_ignored_per_type(store):
    original = task(1)
    respelled = TripletTask(D, "def f(a):   return a+1  # same program", "1", "2", step=5)
    assert store.add([original, respelled, task(1, task_type=A)]) == [True, False, True]
    assert store.count(D) == 1 and store.count(A) == 1
    other_input = TripletTask(D, original.program, "2", "3")
    assert store.add([other_input]) == [True]


def test_the_cap_evicts_the_oldest(tmp_path):
    with TaskStore(tmp_path / "t.sqlite", max_tasks=3) as store:
        store.add([task(i, step=i) for i in range(5)])
        store.add([task(10, step=1, task_type=A)])
        assert [t.output for t in store.tasks(D)] == ["3", "4", "5"]  # the newest stay (the reference kept the oldest)
        assert store.count(A) == 1


def test_a_resume_restores_the_buffer_the_cap_changed(tmp_path):
    """Eviction only marks rows: truncating to step s gives back the buffer as it was at s."""
    with TaskStore(tmp_path / "t.sqlite", max_tasks=3) as store:
        for step in range(6):
            store.add([task(step, step=step)])
        assert [t.step for t in store.tasks(D)] == [3, 4, 5]
        assert [t.step for t in store.tasks(D, max_step=2)] == [0, 1, 2]  # as it was then
        assert store.truncate_after(2) == 3
        assert [t.step for t in store.tasks(D)] == [0, 1, 2]
        assert len(store.solver_batch(D, 3, random.Random(0), since_step=2)) == 3
        # and training goes on from there as it did the first time
        store.add([task(3, step=3)])
        assert [t.step for t in store.tasks(D)] == [1, 2, 3]


def test_an_evicted_task_can_come_back_and_old_evictions_can_be_forgotten(tmp_path):
    with TaskStore(tmp_path / "t.sqlite", max_tasks=2) as store:
        store.add([task(0, step=0), task(1, step=1), task(2, step=2)])  # task 0 evicted at step 2
        assert store.add([TripletTask(D, task(0).program, "1", "1", step=3)]) == [True]  # proposed again
        assert store.add([task(2, step=4)]) == [False]  # but a live duplicate is still a duplicate
        assert [t.step for t in store.tasks(D)] == [2, 3]
        assert store.forget_evicted(up_to_step=2) == 1
        assert store.count() == 2 and len(store._db.execute("SELECT id FROM tasks").fetchall()) == 3


def test_reload_up_to_a_step_and_truncate_after_it(tmp_path):
    path = tmp_path / "t.sqlite"
    with TaskStore(path) as store:
        for step in range(4):
            store.add([task(step, step=step)])
    with TaskStore(path) as store:
        assert [t.step for t in store.tasks(D, max_step=1)] == [0, 1]
        assert store.truncate_after(1) == 2  # resuming from a checkpoint taken at step 1
        assert [t.step for t in store.tasks(D)] == [0, 1]


def test_references_are_drawn_without_replacement(store):
    store.add([task(i) for i in range(10)])
    rng = random.Random(0)
    for _ in range(20):
        drawn = store.references(D, 6, rng)
        assert len(drawn) == 6 and len({t.program for t in drawn}) == 6
    assert len(store.references(D, 20, rng)) == 10  # fewer than K: all of them
    assert store.references(A, 6, rng) == []
    assert store.references(D, 6, random.Random(1)) == store.references(D, 6, random.Random(1))


def test_solver_batches_are_newest_first_and_never_short(store):
    store.add([task(i, step=0) for i in range(6)])
    store.add([task(100 + i, step=1) for i in range(3)])
    batch = store.solver_batch(D, 5, random.Random(0), since_step=1)
    assert len(batch) == 5
    assert [t.step for t in batch[:3]] == [1, 1, 1]  # this step's new tasks first
    assert all(t.step == 0 for t in batch[3:]) and len({t.program for t in batch}) == 5
    # a buffer smaller than the batch: repeats, never short
    store.add([task(0, task_type=A)])
    assert len(store.solver_batch(A, 4, random.Random(0), since_step=1)) == 4
    # a step that added nothing new: all drawn uniformly, without repeats while there are enough
    later = store.solver_batch(D, 9, random.Random(0), since_step=2)
    assert len({t.program for t in later}) == 9
    with pytest.raises(StoreError, match="induction buffer is empty"):
        store.solver_batch(N, 4, random.Random(0), since_step=0)


def test_readable_with_plain_sqlite(store):
    store.add([task(1), INDUCTION])
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT program, input, output FROM deduction").fetchall() == [(task(1).program, "1", "2")]
    assert db.execute("SELECT message FROM induction").fetchall() == [("negates",)]
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_reader_is_not_blocked_by_a_writer(tmp_path):
    path = tmp_path / "t.sqlite"
    with TaskStore(path) as writer, TaskStore(path) as reader:
        writer.add([task(0)])
        with writer._transaction():  # a write in progress, not yet committed
            writer._db.execute("DELETE FROM tasks")
            assert reader.count(D) == 1  # the reader sees the last committed state, without waiting
        assert reader.count(D) == 0


def test_a_crash_mid_write_loses_nothing_committed(tmp_path):
    """A writer killed with SIGKILL in the middle of a transaction: the committed steps are all
    there, the uncommitted one is not, and the database is intact."""
    path = tmp_path / "t.sqlite"
    script = textwrap.dedent(
        f"""
        import os, signal
        from azr.tasks.store import TaskStore
        from azr.tasks import TaskType, TripletTask
        store = TaskStore({str(path)!r})
        for step in range(3):
            store.add([TripletTask(TaskType.DEDUCTION, f"def f(a):\\n    return a + {{step}}", "1", "2", step=step)])
        store._db.execute("BEGIN IMMEDIATE")
        store._db.execute("DELETE FROM tasks")
        store._db.execute(
            "INSERT INTO tasks (task_type, step, source, key, record) VALUES ('deduction', 3, 's', 'k', '{{}}')"
        )
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert completed.returncode == -9, completed.stderr
    with TaskStore(path) as store:
        assert [t.step for t in store.tasks()] == [0, 1, 2]
        assert store._db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_not_a_store(tmp_path):
    bogus = tmp_path / "bogus.sqlite"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable task store"):
        TaskStore(bogus)


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "t.sqlite"
    with TaskStore(path) as store:
        store._db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="upgrade azr"):
        TaskStore(path)


# -- stores made by azr 0.2 (schema 1: a column per field) -----------------------------------------

SCHEMA1 = Path(__file__).parent / "fixtures" / "tasks-schema1.db"
"""Made by azr 0.2 with max_tasks=2: the identity pair (the deduction one evicted at step 2), two
deduction tasks at steps 1 and 2 (one with an import), an induction task at step 2, marker at 2."""


def schema1_tasks():
    return [
        TripletTask(A, "def f(a):\n    return a", "'x'", "'x'", step=0, source="identity"),
        *[TripletTask(D, f"import math\ndef f(a):\n    return a + {k}", "1", str(1 + k), ("import math",), k,
                      "proposed") for k in (1, 2)],
        InductionTask("def f(a):\n    return -a", ("1", "2", "3", "4"), ("-1", "-2", "-3", "-4"), "negates é",
                      (0, 2), (), 2, "proposed"),
    ]  # fmt: skip


def test_a_schema1_store_is_read_as_it_is(tmp_path):
    path = tmp_path / "tasks.db"
    shutil.copy(SCHEMA1, path)
    before = path.read_bytes()
    with TaskStore(path, readonly=True) as store:
        assert store.tasks() == schema1_tasks()
        assert [i for i, _ in store.rows(max_step=1)] == [1, 2, 3]  # the evicted identity, as at step 1
        assert store.step == 2 and store.identity == "9d92143244114ab58201b2156ec1f8d0"
    wal = path.with_name("tasks.db-wal")
    assert path.read_bytes() == before and (not wal.exists() or wal.stat().st_size == 0)


def test_a_schema1_store_is_migrated_when_opened_for_writing(tmp_path):
    path = tmp_path / "tasks.db"
    shutil.copy(SCHEMA1, path)
    with TaskStore(path, max_tasks=2) as store:
        assert store.meta("schema_version") == "2" and store.identity == "9d92143244114ab58201b2156ec1f8d0"
        assert [i for i, _ in store.rows()] == [2, 3, 4, 5] and store.tasks() == schema1_tasks()
        assert store.add(schema1_tasks()[1:2]) == [False]  # its dedup key came along
        assert store.truncate_after(1) == 2  # the step-2 tasks go, the identity evicted at 2 comes back
        assert [i for i, _ in store.rows()] == [1, 2, 3]
    db = sqlite3.connect(path)
    assert db.execute("SELECT program, input, output FROM deduction").fetchall()[1] == (
        "import math\ndef f(a):\n    return a + 1",
        "1",
        "2",
    )
    assert {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'view'")} >= {
        "deduction",
        "abduction",
        "induction",
        "math",
    }
    with TaskStore(path) as again:  # a migrated store opens as any other
        assert again.count() == 3
