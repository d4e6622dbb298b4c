"""The caller's side: a pool of sandbox workers, fed batches of requests, results in order.

Workers come in groups, one per `Ambient` (hash seed and clock offset): a determinism check runs a
batch on two groups that differ in both. A worker that dies, hangs, or cannot be trusted with
another request is replaced in the background; the batch goes on with the others meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any

from azr.executor import literals
from azr.executor.config import ISOLATIONS, ExecutorConfig
from azr.executor.handle import ExecutorError, WorkerGone, WorkerHandle
from azr.executor.launcher import Launcher
from azr.executor.protocol import (
    ExecRequest,
    ExecResult,
    ExecStatus,
    MalformedReport,
    TestRequest,
    failed,
    interpret,
)
from azr.executor.sandbox import Ambient
from azr.executor.trace import MAX_EVENTS

log = logging.getLogger("azr.executor")

__all__ = ["ISOLATIONS", "Ambient", "Executor", "ExecutorConfig", "ExecutorError"]

_REPLY_GRACE = 5.0
"""Seconds past the program's timeout before a silent worker is presumed hung and replaced."""
_MAX_GROUPS = 3
"""Worker groups kept running: a determinism check needs two, and the real clock's is the third."""
CLOCKS = (0, 1, 2)
"""`run_batch`'s clocks: 0 is the real one; 1 and 2 run ahead by this executor's two secret offsets."""


def _secret_offsets() -> tuple[float, float, float]:
    """The seconds each clock runs ahead: none, a day to a year, and a century and 30 to 365 days
    more. Drawn from os.urandom when the executor is made and shown to no program, so that none can
    undo them even if it can tell which run it is in; a century apart, so that even the year, its
    decade and its century differ between clocks 1 and 2."""
    day, year = 86_400.0, 365.2425 * 86_400.0

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * int.from_bytes(os.urandom(8), "big") / 2**64

    first = uniform(day, year)
    return 0.0, first, first + 100 * year + uniform(30 * day, year)


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
        self._launcher = Launcher(self.config)
        self._offsets = _secret_offsets()
        self._groups: OrderedDict[Ambient, list[WorkerHandle]] = OrderedDict()
        self._starting: dict[Ambient, dict[Future, int]] = {}
        """Replacements being started in the background, per group, with their slots."""
        self._spawner = ThreadPoolExecutor(max_workers=self.config.worker_count, thread_name_prefix="azr-spawn")
        self._wake_r, self._wake_w = os.pipe()  # a replacement is ready: wake the dispatcher
        os.set_blocking(self._wake_r, False)
        self._lock = threading.Lock()
        self._closed = False

    # -- public ---------------------------------------------------------------------------------

    @property
    def isolation(self) -> str:
        """`bwrap` or `none`: the isolation in force (starts the workers to find out)."""
        with self._lock:
            self._workers(Ambient())
        assert self._launcher.isolation is not None
        return self._launcher.isolation

    def describe(self) -> str:
        """One line on the layers in force, for logs."""
        with self._lock:
            group = self._workers(Ambient())
            info = group[0].info if group else {}
        layers = ", ".join(self._launcher.layers(info))
        return f"isolation={self._launcher.isolation} ({layers}), {self.config.worker_count} workers"

    def run(self, program: str, input: str) -> ExecResult:
        """Run `f(<input>)` of one program."""
        return self.run_batch([ExecRequest(program, input)])[0]

    def run_batch(
        self, requests: Iterable[ExecRequest | TestRequest], *, hash_seed: int = 0, clock: int = 0
    ) -> list[ExecResult]:
        """Run every request (ExecRequest: call `f`; TestRequest: a program and its tests); results
        come back in the order of `requests`.

        `hash_seed` picks the workers' PYTHONHASHSEED, and `clock` what every clock they read shows:
        0 the real time, 1 and 2 the real time plus one of this executor's two secret offsets (see
        `_secret_offsets`; libfaketime). A second run with another seed and clock, in other
        processes, is how a caller checks that a program depends on neither hash or address order
        nor the time (azr.tasks.validate runs on clocks 1 and 2).
        """
        if not 0 <= hash_seed <= 2**32 - 1:
            raise ValueError("hash_seed must be in [0, 2**32 - 1]")
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}")
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
                self._dispatch(Ambient(hash_seed, self._offsets[clock]), requests, queue, results)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Stop all workers and remove their scratch space."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for ambient in list(self._groups):
                self._stop_group(ambient)
            self._spawner.shutdown(wait=True)
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._launcher.close()

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
        if type(request.trace) is not int or not 0 <= request.trace <= MAX_EVENTS:
            return f"trace must be an int from 0 to {MAX_EVENTS}"
        try:
            literals.parse_arguments(request.input, self.config.max_input_chars)
        except literals.NotPlainData as error:
            return str(error)
        return ""

    def _workers(self, ambient: Ambient) -> list[WorkerHandle]:
        """The worker group for `ambient`, started (and the isolation resolved) if needed."""
        if self._closed:
            raise ExecutorError("the executor is closed")
        group = self._groups.get(ambient)
        if group is None:
            group = self._groups[ambient] = self._launcher.start_group(ambient)
        self._groups.move_to_end(ambient)
        while len(self._groups) > _MAX_GROUPS:  # e.g. a new hash seed every step: stop the oldest
            self._stop_group(next(iter(self._groups)))
        return group

    def _stop_group(self, ambient: Ambient) -> None:
        for worker in self._groups.pop(ambient, []):
            worker.stop()
        for future in self._starting.pop(ambient, {}):
            future.add_done_callback(_stop_result)

    # -- replacing workers, off the dispatch path --------------------------------------------------

    def _replace_later(self, group: list[WorkerHandle], worker: WorkerHandle, ambient: Ambient) -> None:
        """Take `worker` out of `group` and start its successor in the background."""
        if worker in group:
            group.remove(worker)
        self._start_later(ambient, worker.slot, worker)

    def _start_later(self, ambient: Ambient, slot: int, old: WorkerHandle | None = None) -> None:
        def start() -> WorkerHandle:
            if old is not None:
                old.stop()
            return self._launcher.start(ambient, slot)

        future = self._spawner.submit(start)
        future.add_done_callback(self._wake)
        self._starting.setdefault(ambient, {})[future] = slot

    def _wake(self, _: Future) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def _harvest(self, ambient: Ambient, group: list[WorkerHandle], idle: list[WorkerHandle], wait: bool) -> None:
        """Put the replacements that are ready into `group` and `idle`; with `wait`, wait for one
        first. A replacement that could not start means the sandbox cannot: its error is raised."""
        with contextlib.suppress(OSError):  # drained first: a wake-up after it is not lost
            while os.read(self._wake_r, 4096):
                pass
        starting = self._starting.setdefault(ambient, {})
        # A slot whose replacement failed to start (its error ended an earlier batch) is tried again.
        for slot in sorted(set(range(self.config.worker_count)) - {w.slot for w in group} - set(starting.values())):
            self._start_later(ambient, slot)
        if wait and starting:
            wait_for(starting, return_when=FIRST_COMPLETED)
        for future in [f for f in starting if f.done()]:
            del starting[future]
            worker = future.result()  # ExecutorError: the sandbox cannot start any more
            group.append(worker)
            idle.append(worker)

    def _dispatch(
        self,
        ambient: Ambient,
        requests: list[ExecRequest | TestRequest],
        queue: deque[int],
        results: list[ExecResult | None],
    ) -> None:
        group = self._workers(ambient)
        config = self.config
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ, None)
        idle = list(group)
        busy: dict[WorkerHandle, tuple[int, float]] = {}
        try:
            while queue or busy:
                self._harvest(ambient, group, idle, wait=bool(queue) and not idle and not busy)
                while queue and idle:
                    worker = idle.pop()
                    index = queue.popleft()
                    try:
                        worker.send(_message(requests[index]))
                    except OSError:  # died while idle: replace it and try again
                        queue.appendleft(index)
                        self._replace_later(group, worker, ambient)
                        continue
                    busy[worker] = (index, time.monotonic() + config.timeout + _REPLY_GRACE)
                    selector.register(worker.stdout, selectors.EVENT_READ, worker)
                if not busy:
                    continue
                wait = min(deadline for _, deadline in busy.values()) - time.monotonic()
                for key, _ in selector.select(max(wait, 0.0)):
                    worker = key.data
                    if worker is None:
                        continue  # a replacement is ready: harvested at the top of the loop
                    index, _deadline = busy[worker]
                    try:
                        report = worker.receive()
                    except WorkerGone as gone:
                        result = failed(ExecStatus.ERROR, f"the sandbox worker died ({gone}); restarted")
                        log.warning("sandbox worker %d died: %s", worker.slot, gone)
                    else:
                        if report is None:
                            continue  # partial line
                        result = self._verdict(worker, report)
                    results[index] = result
                    selector.unregister(worker.stdout)
                    del busy[worker]
                    if worker.broken:
                        self._replace_later(group, worker, ambient)
                    else:
                        idle.append(worker)
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
                        self._replace_later(group, worker, ambient)
        finally:
            # An exception (KeyboardInterrupt...) mid-batch leaves workers with requests in flight:
            # they cannot be reused in step with their replies.
            for worker in busy:
                worker.broken = True
            selector.close()
            for worker in [w for w in group if w.broken]:
                self._replace_later(group, worker, ambient)

    def _verdict(self, worker: WorkerHandle, report: Any) -> ExecResult:
        config = self.config
        try:
            result = interpret(
                report,
                timeout=config.timeout,
                max_output_chars=config.max_output_chars,
                max_stdout_bytes=config.max_stdout_bytes,
            )
        except MalformedReport as error:
            log.error("sandbox worker %d misbehaved: %s", worker.slot, error)
            worker.broken = True
            return failed(ExecStatus.ERROR, "the sandbox worker misbehaved; restarted")
        except Exception as error:  # a bug of ours must not cost the batch
            log.error("judging a sandbox report failed: %r", error)
            return failed(ExecStatus.ERROR, f"the report could not be judged ({type(error).__name__})")
        # A worker that could not clean up, or whose child could not confine itself, is not
        # trusted with another request.
        if report["retiring"] or not report["confined"]:
            worker.broken = True
        return result


def _message(request: ExecRequest | TestRequest) -> dict[str, Any]:
    if isinstance(request, TestRequest):
        return {"program": request.program, "tests": request.tests}
    policy = None if request.policy is None else {"banned_modules": list(request.policy.banned_modules)}
    return {"program": request.program, "input": request.input, "policy": policy, "trace": request.trace}


def _stop_result(future: Future) -> None:
    with contextlib.suppress(Exception):
        future.result().stop()
