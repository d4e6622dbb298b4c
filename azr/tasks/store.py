"""The task store: the three task buffers of a run, in one SQLite database (AZR.md section 6).

One table, `tasks`: the columns every family shares, and the task itself as JSON (its family's
record, azr.tasks.family). One view per family shows the record's fields as columns, for reading
by hand:

    sqlite3 runs/demo/tasks.db "SELECT id, step, program, input, output FROM deduction LIMIT 5"

| column | meaning |
|---|---|
| id | insertion order |
| task_type | the family: deduction, abduction, induction, math... |
| step | training step at which the task was added (0: before training) |
| source | identity, proposed, seed:<file>... |
| key | dedup hash (the family's: AST-normalised program + canonical input(s)); unique per type among live tasks |
| evicted_at | NULL while the task is in its buffer; else the step at which the cap evicted it |
| record | the task as JSON: `program`, `input`, `output`, `inputs`, `message`... as its family writes it |

A store of schema 1 (azr 0.2: a column per field of the three paper families) is migrated on
first opening for writing, in one transaction, keeping every task, its id and its eviction mark;
read-only it is read through a view of the new shape, and not changed.

A task whose dedup key or row cannot be computed (a bug of ours, azr.tasks.guard) is not stored and
does not stop the others: its key and row are computed, guarded, before the transaction.

Writes are transactions in WAL mode with synchronous=FULL: a crash or SIGKILL loses nothing
committed, and readers (the CLI, a report) never block the trainer. Every valid task is kept,
duplicates are ignored, and past `max_tasks` per type the oldest are evicted (the reference
implementation's cap dropped the newest). Eviction only marks a row, so the buffers as they were
at any step can be rebuilt: resuming from a checkpoint taken at step s removes what came after s
and brings back what was evicted after it (`truncate_after`); `forget_evicted` drops marked rows
for good once no checkpoint can need them.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import uuid
from collections.abc import Sequence
from pathlib import Path

from azr.tasks import InternalError, Stage, Task, _name
from azr.tasks.guard import guarded
from azr.tasks.registry import REGISTRY, family
from azr.tasks.sqlite import Transaction, connect_readonly

log = logging.getLogger("azr.tasks.store")

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    task_type TEXT NOT NULL,
    step INTEGER NOT NULL,
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    evicted_at INTEGER,
    added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    record TEXT NOT NULL CHECK (json_valid(record))
);
CREATE UNIQUE INDEX IF NOT EXISTS live_tasks_by_key ON tasks (task_type, key) WHERE evicted_at IS NULL;
CREATE INDEX IF NOT EXISTS tasks_by_type_step ON tasks (task_type, step, id)
"""

_V1_AS_V2 = """SELECT id, task_type, step, source, key, evicted_at, added_at,
    CASE task_type WHEN 'induction' THEN json_object('program', program, 'inputs', json(inputs),
        'outputs', json(outputs), 'message', message, 'given', json(given), 'imports', json(imports))
    ELSE json_object('program', program, 'input', input, 'output', output, 'imports', json(imports)) END AS record
    FROM main.tasks"""
"""Schema 1's rows in schema 2's shape (the records as the paper families write them)."""

_COLUMNS = "id, task_type, step, source, record"
_LIVE = "evicted_at IS NULL"
_SQLITE_INTEGERS = 2**63
"""SQLite's integers are 64-bit: an id past them names no task."""


class StoreError(RuntimeError):
    """The database cannot be used (not a task store, a newer schema...); the message says why."""


class TaskStore:
    """The task buffers of one run. Use as a context manager, or call close()."""

    def __init__(self, path: str | Path, max_tasks: int | None = None, readonly: bool = False) -> None:
        self.path = Path(path)
        self.max_tasks = max_tasks
        """Tasks kept per type; past it the oldest are evicted. None: no cap."""
        self.readonly = readonly
        """Opened for reading only (`mode=ro`): works on an archived run on a read-only disk, and
        never blocks or disturbs a trainer writing the store."""
        try:
            self._db = connect_readonly(self.path) if readonly else self._create()
            version = self._version()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema {version}; this azr reads up to {SCHEMA_VERSION}: upgrade azr"
                )
            if version == 1 and readonly:  # temp objects come first in name lookup: reads see schema 2
                self._db.execute(f"CREATE TEMP VIEW tasks AS {_V1_AS_V2}")
        except (sqlite3.DatabaseError, ValueError, TypeError) as error:
            raise StoreError(f"{self.path} is not a usable task store: {error}") from None

    def _version(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    def _create(self) -> sqlite3.Connection:
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._transaction():  # two processes creating one store at once: one does it
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))
            if self._version() == 1:
                self._migrate()
            if self._version() == SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    self._db.execute(statement)
                for name in REGISTRY:
                    self._db.execute(_view(name))
        return self._db

    def _migrate(self) -> None:
        """Schema 1 to 2, inside the caller's transaction: every task kept, with its id and marks."""
        log.warning("%s: migrating the task store from schema 1 to 2 (one JSON record per task)", self.path)
        for name in ("deduction", "abduction", "induction"):
            self._db.execute(f"DROP VIEW IF EXISTS {name}")
        self._db.execute("DROP INDEX IF EXISTS live_tasks_by_key")
        self._db.execute("DROP INDEX IF EXISTS tasks_by_type_step")
        self._db.execute("ALTER TABLE tasks RENAME TO tasks_v1")
        self._db.execute(_SCHEMA.split(";")[1])
        columns = "id, task_type, step, source, key, evicted_at, added_at, record"
        self._db.execute(f"INSERT INTO tasks ({columns}) {_V1_AS_V2.replace('main.tasks', 'tasks_v1')}")
        self._db.execute("DROP TABLE tasks_v1")
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    @property
    def identity(self) -> str | None:
        """A random id given at creation: a run's manifest names its store by it."""
        return self.meta("store_id")

    @property
    def step(self) -> int | None:
        """The last step whose writes are all committed (`commit_step`); None before any."""
        value = self.meta("step")
        return int(value) if value is not None and value.isdigit() else None

    # -- writing -----------------------------------------------------------------------------

    def add(self, tasks: Sequence[Task], meta: dict[str, str] | None = None) -> list[bool]:
        """Add tasks in one transaction; True for each that was new (False: a duplicate of a task
        in its buffer, or a task that could not be stored, logged; `try_add` says which). Past the
        cap, the oldest are evicted, as of the newest task's step. `meta` entries are written in
        the same transaction (progress markers)."""
        added = []
        for outcome in self.try_add(tasks, meta):
            if isinstance(outcome, InternalError):
                log.error("a task was not stored (bug in azr): %s: %s", outcome.stage.value, outcome.detail)
            added.append(outcome is True)
        return added

    def try_add(self, tasks: Sequence[Task], meta: dict[str, str] | None = None) -> list[bool | InternalError]:
        """As `add`, with an InternalError for each task whose dedup key or row raised: it is not
        stored, and the others are."""
        rows = [guarded(Stage.STORE, _values, task) for task in tasks]
        storable = [task for task, row in zip(tasks, rows, strict=True) if not isinstance(row, InternalError)]
        outcomes: list[bool | InternalError] = []
        with self._transaction():
            for key, value in (meta or {}).items():
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            for row in rows:
                if isinstance(row, InternalError):
                    outcomes.append(row)
                    continue
                cursor = self._db.execute(
                    f"INSERT INTO tasks ({_COLUMNS.removeprefix('id, ')}, key) VALUES (?, ?, ?, ?, ?) "
                    f"ON CONFLICT (task_type, key) WHERE {_LIVE} DO NOTHING",
                    row,
                )
                outcomes.append(cursor.rowcount == 1)
            if self.max_tasks is not None:
                for task_type in {task.task_type for task in storable}:
                    step = max(task.step for task in storable if task.task_type is task_type)
                    self._evict(task_type, step)
        return outcomes

    def _evict(self, task_type: str, step: int) -> None:
        excess = self.count(task_type) - self.max_tasks  # type: ignore[operator]
        if excess > 0:
            self._db.execute(
                "UPDATE tasks SET evicted_at = ? WHERE id IN "
                f"(SELECT id FROM tasks WHERE task_type = ? AND {_LIVE} ORDER BY step, id LIMIT ?)",
                (step, task_type, excess),
            )

    def commit_step(self, step: int) -> None:
        """Record that every write of `step` is committed. SQLite commits in order, so a store whose
        marker survived holds all of that step's tasks; one behind a checkpoint lost commits."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('step', ?)", (str(step),))

    def truncate_after(self, step: int) -> int:
        """Make the buffers what they were at the end of `step`, on resuming from a checkpoint taken
        then: delete the tasks added later and restore those evicted later. Returns how many were
        deleted."""
        with self._transaction():
            deleted = self._db.execute("DELETE FROM tasks WHERE step > ?", (step,)).rowcount
            self._db.execute("UPDATE tasks SET evicted_at = NULL WHERE evicted_at > ?", (step,))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('step', ?)", (str(step),))
        return deleted

    def forget_evicted(self, up_to_step: int) -> int:
        """Drop for good the tasks evicted at or before `up_to_step`, which no resume can need."""
        with self._transaction():
            return self._db.execute("DELETE FROM tasks WHERE evicted_at <= ?", (up_to_step,)).rowcount

    def _transaction(self) -> Transaction:
        return Transaction(self._db, "BEGIN IMMEDIATE", self.path)

    def _snapshot(self) -> Transaction:
        """A read transaction: several queries see one state, whatever other writers do."""
        return Transaction(self._db, "BEGIN", self.path)

    # -- reading -----------------------------------------------------------------------------

    def damage(self) -> str | None:
        """None when SQLite's quick_check finds the file sound (a linear pass); else its first complaint."""
        try:
            found = [str(row[0]) for row in self._db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as error:
            found = [str(error)]
        return None if found == ["ok"] else " ".join(" ".join(found).split())[:200]

    def stats(self) -> dict[str, tuple]:
        """Per task type: live tasks, how many the proposer wrote, their distinct programs, their
        mean program length, and tasks evicted by the cap (for reports)."""
        program = "json_extract(record, '$.program')"
        query = (
            f"SELECT task_type, SUM({_LIVE}), SUM({_LIVE} AND source = 'proposed'),"
            f" COUNT(DISTINCT CASE WHEN {_LIVE} THEN {program} END),"
            f" AVG(CASE WHEN {_LIVE} THEN LENGTH({program}) END), SUM(evicted_at IS NOT NULL) FROM tasks GROUP BY 1"
        )
        return {row[0]: row[1:] for row in self._db.execute(query)}

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def count(self, task_type: str | None = None) -> int:
        """Tasks in the buffers (evicted ones not counted)."""
        where, params = _where(task_type, None)
        return self._db.execute(f"SELECT COUNT(*) FROM tasks {where}", params).fetchone()[0]

    def tasks(self, task_type: str | None = None, max_step: int | None = None) -> list[Task]:
        """A buffer (or all three) in insertion order; with `max_step`, as it was at that step."""
        return [task for _, task in self.rows(task_type, max_step)]

    def rows(
        self, task_type: str | None = None, max_step: int | None = None, limit: int | None = None
    ) -> list[tuple[int, Task]]:
        """(id, task) pairs, as `tasks`; at most `limit` (one past SQLite's integers is no limit)."""
        where, params = _where(task_type, max_step)
        query = f"SELECT {_COLUMNS} FROM tasks {where} ORDER BY id"
        if limit is not None and limit < _SQLITE_INTEGERS:
            query += " LIMIT ?"
            params.append(limit)
        return [(row[0], _task(row)) for row in self._db.execute(query, params).fetchall()]

    def get(self, task_id: int) -> Task | None:
        """A task by id, evicted or not."""
        if not -_SQLITE_INTEGERS <= task_id < _SQLITE_INTEGERS:  # beyond SQLite's integers: no such task
            return None
        row = self._db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return _task(row) if row else None

    def references(self, task_type: str, k: int, rng: random.Random) -> list[Task]:
        """K tasks drawn uniformly without replacement (fewer if the buffer holds fewer), for a
        proposer's prompt (paper: K = 6)."""
        with self._snapshot():
            ids = self._ids(task_type)
            return [self._get(i) for i in rng.sample(ids, min(k, len(ids)))]

    def solver_batch(self, task_type: str, size: int, rng: random.Random, since_step: int) -> list[Task]:
        """`size` tasks for the solver: those added at `since_step` or later first (newest first),
        the rest drawn uniformly from the older ones, and, only if the buffer holds fewer than
        `size`, repeats. Never short; raises if the buffer is empty."""
        with self._snapshot():
            ids = self._ids(task_type)
            if not ids:
                raise StoreError(f"the {_name(task_type)} buffer is empty: seed the store first")
            new = [row[0] for row in self._db.execute(
                f"SELECT id FROM tasks WHERE task_type = ? AND step >= ? AND {_LIVE} ORDER BY id DESC",
                (_name(task_type), since_step),
            )]  # fmt: skip
            chosen = new[:size]
            taken = set(chosen)
            rest = [i for i in ids if i not in taken]
            chosen += rng.sample(rest, min(size - len(chosen), len(rest)))
            while len(chosen) < size:
                chosen.append(rng.choice(ids))
            return [self._get(i) for i in chosen]

    def _ids(self, task_type: str) -> list[int]:
        rows = self._db.execute(
            f"SELECT id FROM tasks WHERE task_type = ? AND {_LIVE} ORDER BY id", (_name(task_type),)
        )
        return [row[0] for row in rows]

    def _get(self, task_id: int) -> Task:
        task = self.get(task_id)
        assert task is not None
        return task

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TaskStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _where(task_type: str | None, max_step: int | None) -> tuple[str, list]:
    clauses, params = [], []
    if task_type is not None:
        clauses.append("task_type = ?")
        params.append(_name(task_type))
    if max_step is None:
        clauses.append(_LIVE)
    else:  # the buffer as it was at the end of max_step
        clauses.append("step <= ? AND (evicted_at IS NULL OR evicted_at > ?)")
        params += [max_step, max_step]
    return "WHERE " + " AND ".join(clauses), params


def _values(task: Task) -> tuple:
    """What `try_add` inserts for a task: its row, record and dedup key."""
    kind = family(task.task_type)
    record = json.dumps(kind.record(task), ensure_ascii=False)
    record.encode("utf-8")  # sqlite3 binds text as UTF-8: a lone surrogate would raise in the transaction
    return (kind.name, task.step, task.source, record, kind.dedup_key(task))


def _task(row: tuple) -> Task:
    _, task_type, step, source, record = row
    return family(task_type).from_record(json.loads(record), step, source)


def _view(name: str) -> str:
    """The view of one family's live tasks, its record's fields as columns."""
    fields = "".join(f", json_extract(record, '$.{column}') AS {column}" for column in family(name).columns)
    return (f"CREATE VIEW IF NOT EXISTS {name} AS SELECT id, step, source{fields} FROM tasks "
            f"WHERE task_type = '{name}' AND {_LIVE}")  # fmt: skip
