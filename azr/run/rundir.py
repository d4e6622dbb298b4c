"""A run directory's integrity: one writer at a time, a manifest that makes every resume checkable,
and one clear line (not a traceback) when the disk refuses a write.

    run.json   the manifest: the resolved config the run started with (and its hash), the task
               store's identity, the last checkpointed step and the checkpoints. Written atomically
               when the run starts and after every checkpoint; `azr train` checks a rerun against it.
    .lock      names the one process writing the run, which holds flock(2) on the directory. The
               kernel releases it when the process dies, so a SIGKILL never leaves a stale lock.

Readers (`azr report`, `azr tasks list|show|export`, `azr eval`) take no lock and write nothing, so
they work on a run that is training, and on an archived, read-only one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azr.disk import unused_name, write_atomically

MANIFEST = "run.json"
MUTABLE = ("train",)
"""Config sections a resume may change (but train.seed, which every draw follows from): what is
saved and logged, not what is learned."""
LOCK = ".lock"
FORMAT = 1


class RunDirError(RuntimeError):
    """A run directory that cannot be used as asked; the message says what is wrong and what to do."""


class RunLock:
    """The exclusive right to write `run_dir`, as a context manager. A second writer fails at once,
    naming the holder's pid; a read-only or unwritable directory fails with the cause.

    The lock is on the directory itself, so deleting `.lock` cannot let a second writer in; `.lock`
    only says who holds it."""

    def __init__(self, run_dir: Path, what: str = "azr train") -> None:
        self.run_dir = run_dir
        self.what = what
        self._descriptor: int | None = None

    def __enter__(self) -> RunLock:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileExistsError, NotADirectoryError):
            raise RunDirError(f"{self.run_dir} is a file, not a run directory: give another --run-dir") from None
        except OSError as error:
            raise RunDirError(f"cannot create {error.filename or self.run_dir}: {error.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            try:
                holder = (self.run_dir / LOCK).read_text(encoding="utf-8", errors="replace").split()
            except OSError:
                holder = []
            raise RunDirError(
                f"{self.run_dir} is in use by another process (pid {holder[0] if holder else 'unknown'}): one "
                "writer at a time; wait for it, stop it, or give another --run-dir"
            ) from None
        try:
            (self.run_dir / LOCK).write_text(f"{os.getpid()} {self.what}\n", encoding="utf-8")
        except OSError as error:
            os.close(descriptor)
            raise RunDirError(
                f"cannot write {error.filename or self.run_dir}: {error.strerror}; {self.what} needs a writable "
                "run directory (readers such as azr report need none)"
            ) from None
        self._descriptor = descriptor
        return self

    def __exit__(self, *_: object) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # releases the flock
            self._descriptor = None


def set_aside(run_dir: Path) -> Path | None:
    """For `azr train --fresh`: move what `run_dir` holds to a sibling named after the time, so
    that starting over loses nothing; where the directory itself cannot move (a mount point, a
    parent the user cannot write), its contents go to a subdirectory instead. Returns where it all
    went (None: nothing to move)."""
    run_dir = run_dir.resolve()
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return None
    with RunLock(run_dir, "azr train --fresh"):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = unused_name(run_dir.with_name(f"{run_dir.name}.replaced-{stamp}"))
        try:
            os.rename(run_dir, aside)
            return aside
        except OSError:
            pass
        inside = unused_name(run_dir / f"replaced-{stamp}")
        try:
            inside.mkdir()
            for entry in list(run_dir.iterdir()):
                if entry != inside and entry.name != LOCK:
                    os.rename(entry, inside / entry.name)
        except OSError as error:
            raise RunDirError(
                f"--fresh cannot move what {run_dir} holds ({error.filename or run_dir}: {error.strerror}): "
                "move it yourself, or give another --run-dir"
            ) from None
    return inside


@dataclass(frozen=True)
class Manifest:
    config: dict[str, Any]
    """The resolved config the run started with (`train.*` may differ on later resumes)."""
    store_id: str
    """The task store's identity (its `store_id` meta entry): another tasks.db is not this run's."""
    step: int
    """The step of the newest checkpoint (0: none yet)."""
    checkpoints: tuple[int, ...]
    """The steps whose checkpoints were kept, oldest first."""

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "azr": _version(),
                "config_hash": self.config_hash,
                "store": {"id": self.store_id, "step": self.step},
                "checkpoints": list(self.checkpoints),
                "config": self.config,
            },
            indent=1,
        )


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of what a resume may not change: every section but train, and the seed."""
    fixed = {section: values for section, values in config.items() if section not in MUTABLE}
    fixed["seed"] = config.get("train", {}).get("seed")
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()


def read_manifest(run_dir: Path) -> Manifest | None:
    """The run's manifest, None when there is none; a RunDirError when it is damaged."""
    path = run_dir / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        if isinstance(data.get("format"), int) and data["format"] > FORMAT:
            raise RunDirError(f"{path} was written by a newer azr (format {data['format']}): upgrade azr")
        manifest = Manifest(
            config=data["config"],
            store_id=data["store"]["id"],
            step=data["store"]["step"],
            checkpoints=tuple(data["checkpoints"]),
        )
        valid = (
            isinstance(manifest.config, dict)
            and all(isinstance(v, dict) for v in manifest.config.values())
            and isinstance(manifest.store_id, str)
            and isinstance(manifest.step, int)
            and all(isinstance(step, int) for step in manifest.checkpoints)
            and data.get("config_hash") == manifest.config_hash
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        problem = _one_line(error)
        raise RunDirError(f"{path} cannot be read ({problem}): restore it, or start over with --fresh") from None
    if not valid:
        raise RunDirError(f"{path} is damaged (a field has the wrong type, or the config does not match its hash): "
                          "restore it, or start over with --fresh")  # fmt: skip
    return manifest


def write_manifest(run_dir: Path, manifest: Manifest) -> None:
    write_atomically(run_dir / MANIFEST, manifest.to_json() + "\n")


def remove_temporaries(run_dir: Path) -> list[Path]:
    """Delete what a killed writer left half-done (atomic writes' temporaries); returns them."""
    stray = [*run_dir.glob(".*.tmp"), *run_dir.glob("*.tmp")]
    for path in stray:
        with contextlib.suppress(OSError):
            path.unlink()
    return stray


# -- the disk says no ----------------------------------------------------------------------------


def fault_point(name: str, step: int) -> None:
    """AZR_FAULT=<name>:<step> kills this process with SIGKILL here, as a crash, an OOM kill or a
    power cut would; AZR_FAULT=<name>:<step>:stall stops here for a minute instead (a stalled disk),
    so a test can signal a run at a known point; a suffix @<rank> limits either to one rank of a
    torchrun job. The points: step-logged (step N's lines written, nothing saved),
    checkpoint-written (its files written, not yet renamed into place), checkpoint-renamed (in
    place, older ones not yet pruned), checkpoint-pruned (the manifest not yet updated); with
    several ranks, only rank 0 reaches the last two."""
    fault, _, rank = os.environ.get("AZR_FAULT", "").partition("@")
    if rank and rank != os.environ.get("RANK", "0"):
        return
    if fault == f"{name}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault == f"{name}:{step}:stall":
        time.sleep(60)


def _version() -> str:
    from azr import __version__

    return __version__


def _one_line(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]
