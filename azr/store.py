"""The task store: the three task buffers of a run, in one SQLite database (AZR.md section 6).

One table, `tasks`, with a `task_type` column, and one view per task type for reading by hand:

    sqlite3 runs/demo/tasks.db "SELECT id, step, program, input, output FROM deduction LIMIT 5"

| column | meaning |
|---|---|
| id | insertion order |
| task_type | deduction, abduction or induction |
| program | Python source defining `f` (with its imports) |
| input, output | deduction/abduction: canonical argument list and canonical output |
| inputs, outputs | induction: JSON lists of canonical argument lists and outputs |
| message | induction: the proposer's description, shown to the solver |
| given | induction: JSON list of the indices of the pairs shown to the solver |
| imports | JSON list of the program's top-level import statements |
| step | training step at which the task was added (0: before training) |
| source | identity, proposed, seed:<file>... |
| key | dedup hash: AST-normalised program + canonical input(s); unique per task type |

Writes are transactions in WAL mode with synchronous=FULL: a crash or SIGKILL loses nothing
committed, and readers (the CLI, a report) never block the trainer. Every valid task is kept,
duplicates are ignored, and past `max_tasks` per type the oldest are evicted (the reference
implementation's cap dropped the newest).
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from azr.programs import dedup_key
from azr.tasks import InductionTask, Task, TaskType, TripletTask

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    task_type TEXT NOT NULL CHECK (task_type IN ('deduction', 'abduction', 'induction')),
    program TEXT NOT NULL,
    input TEXT,
    output TEXT,
    inputs TEXT,
    outputs TEXT,
    message TEXT,
    given TEXT,
    imports TEXT NOT NULL DEFAULT '[]',
    step INTEGER NOT NULL,
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (task_type, key)
);
CREATE INDEX IF NOT EXISTS tasks_by_type_step ON tasks (task_type, step, id);
CREATE VIEW IF NOT EXISTS deduction AS
    SELECT id, step, source, program, input, output FROM tasks WHERE task_type = 'deduction';
CREATE VIEW IF NOT EXISTS abduction AS
    SELECT id, step, source, program, input, output FROM tasks WHERE task_type = 'abduction';
CREATE VIEW IF NOT EXISTS induction AS
    SELECT id, step, source, program, message, inputs, outputs, given FROM tasks WHERE task_type = 'induction';
"""

_COLUMNS = "id, task_type, program, input, output, inputs, outputs, message, given, imports, step, source"


class StoreError(RuntimeError):
    """The database cannot be used (not a task store, a newer schema...); the message says why."""


class TaskStore:
    """The task buffers of one run. Use as a context manager, or call close()."""

    def __init__(self, path: str | Path, max_tasks: int | None = None) -> None:
        self.path = Path(path)
        self.max_tasks = max_tasks
        """Tasks kept per type; past it the oldest are evicted. None: no cap."""
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            found = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path} is not a usable task store: {error}") from None
        if found is None:
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(found[0]) > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema {found[0]}; this azr reads up to {SCHEMA_VERSION}: upgrade azr")

    # -- writing -----------------------------------------------------------------------------

    def add(self, tasks: Sequence[Task]) -> list[bool]:
        """Add tasks in one transaction; True for each that was new (False: a duplicate)."""
        added = []
        with self._transaction():
            for task in tasks:
                cursor = self._db.execute(
                    f"INSERT OR IGNORE INTO tasks ({_COLUMNS.removeprefix('id, ')}, key) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*_row(task), _key(task)),
                )
                added.append(cursor.rowcount == 1)
            if self.max_tasks is not None:
                for task_type in {task.task_type for task in tasks}:
                    self._evict(task_type)
        return added

    def _evict(self, task_type: TaskType) -> None:
        excess = self.count(task_type) - self.max_tasks  # type: ignore[operator]
        if excess > 0:
            self._db.execute(
                "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE task_type = ? ORDER BY step, id LIMIT ?)",
                (task_type.value, excess),
            )

    def truncate_after(self, step: int) -> int:
        """Delete the tasks added after `step` (on resuming from a checkpoint taken at `step`)."""
        with self._transaction():
            return self._db.execute("DELETE FROM tasks WHERE step > ?", (step,)).rowcount

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # -- reading -----------------------------------------------------------------------------

    def count(self, task_type: TaskType | None = None) -> int:
        if task_type is None:
            return self._db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM tasks WHERE task_type = ?", (task_type.value,)).fetchone()[0]

    def tasks(self, task_type: TaskType | None = None, max_step: int | None = None) -> list[Task]:
        """Tasks in insertion order, of one type or all, added at or before `max_step`."""
        return [task for _, task in self.rows(task_type, max_step)]

    def rows(
        self, task_type: TaskType | None = None, max_step: int | None = None, limit: int | None = None
    ) -> Iterator[tuple[int, Task]]:
        """(id, task) pairs in insertion order."""
        where, params = self._where(task_type, max_step)
        query = f"SELECT {_COLUMNS} FROM tasks {where} ORDER BY id"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        for row in self._db.execute(query, params).fetchall():
            yield row[0], _task(row)

    def get(self, task_id: int) -> Task | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return _task(row) if row else None

    def latest_step(self, task_type: TaskType) -> int | None:
        return self._db.execute("SELECT MAX(step) FROM tasks WHERE task_type = ?", (task_type.value,)).fetchone()[0]

    def references(self, task_type: TaskType, k: int, rng: random.Random) -> list[Task]:
        """K tasks drawn uniformly without replacement (fewer if the buffer holds fewer), for a
        proposer's prompt (paper: K = 6)."""
        ids = self._ids(task_type)
        return [self._get(i) for i in rng.sample(ids, min(k, len(ids)))]

    def solver_batch(
        self, task_type: TaskType, size: int, rng: random.Random, since_step: int | None = None
    ) -> list[Task]:
        """`size` tasks for the solver: the new ones first (added at `since_step` or later;
        default: the latest step), the rest drawn uniformly from the older ones, and, only if the
        buffer holds fewer than `size`, repeats. Never short; raises if the buffer is empty."""
        ids = self._ids(task_type)
        if not ids:
            raise StoreError(f"the {task_type.value} buffer is empty: seed the store first")
        since = self.latest_step(task_type) if since_step is None else since_step
        new = [row[0] for row in self._db.execute(
            "SELECT id FROM tasks WHERE task_type = ? AND step >= ? ORDER BY id DESC", (task_type.value, since)
        )]  # fmt: skip
        chosen = new[:size]
        taken = set(chosen)
        rest = [i for i in ids if i not in taken]
        chosen += rng.sample(rest, min(size - len(chosen), len(rest)))
        while len(chosen) < size:
            chosen.append(rng.choice(ids))
        return [self._get(i) for i in chosen]

    def _ids(self, task_type: TaskType) -> list[int]:
        rows = self._db.execute("SELECT id FROM tasks WHERE task_type = ? ORDER BY id", (task_type.value,))
        return [row[0] for row in rows]

    def _get(self, task_id: int) -> Task:
        task = self.get(task_id)
        assert task is not None
        return task

    @staticmethod
    def _where(task_type: TaskType | None, max_step: int | None) -> tuple[str, list]:
        clauses, params = [], []
        if task_type is not None:
            clauses.append("task_type = ?")
            params.append(task_type.value)
        if max_step is not None:
            clauses.append("step <= ?")
            params.append(max_step)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TaskStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type | None, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _key(task: Task) -> str:
    if isinstance(task, InductionTask):
        return dedup_key(task.program, sorted(task.inputs))
    return dedup_key(task.program, [task.input])


def _row(task: Task) -> tuple:
    imports = json.dumps(list(task.imports))
    if isinstance(task, InductionTask):
        return (
            task.task_type.value, task.program, None, None, json.dumps(list(task.inputs)),
            json.dumps(list(task.outputs)), task.message, json.dumps(list(task.given)), imports,
            task.step, task.source,
        )  # fmt: skip
    return (task.task_type.value, task.program, task.input, task.output, None, None, None, None, imports,
            task.step, task.source)  # fmt: skip


def _task(row: tuple) -> Task:
    _, task_type, program, input, output, inputs, outputs, message, given, imports, step, source = row
    if task_type == TaskType.INDUCTION.value:
        return InductionTask(
            program, tuple(json.loads(inputs)), tuple(json.loads(outputs)), message,
            tuple(json.loads(given)), tuple(json.loads(imports)), step, source,
        )  # fmt: skip
    return TripletTask(TaskType(task_type), program, input, output, tuple(json.loads(imports)), step, source)
