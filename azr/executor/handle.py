"""The caller's handle on one sandbox worker process: start it, talk to it in JSON lines, stop it."""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import signal
import subprocess
import tempfile
import time
from typing import Any

from azr.executor import sandbox
from azr.executor.scratch import empty_directories

_START_TIMEOUT = 60.0
_MAX_REPLY_BYTES = 8 * 2**20
_SEND_TIMEOUT = 10.0


class ExecutorError(RuntimeError):
    """The executor cannot run programs (the sandbox cannot start); the message says why."""


class WorkerGone(Exception):
    """The worker closed its output: it died, or was killed."""


class WorkerHandle:
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
                cwd=launch.cwd,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as error:
            raise ExecutorError(f"cannot start a sandbox worker: {error}") from None
        self.started = time.monotonic()
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
                except WorkerGone:
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
        """The next message if a whole line has arrived, else None. Raises WorkerGone on EOF."""
        try:
            chunk = os.read(self.stdout, 1 << 16)
        except BlockingIOError:
            chunk = None
        if chunk == b"":
            self.broken = True
            code = self.process.poll()
            raise WorkerGone(f"exit status {code}" if code is not None else "closed its output")
        if chunk:
            self._buffer += chunk
        line, newline, rest = self._buffer.partition(b"\n")
        if not newline:
            if len(self._buffer) > _MAX_REPLY_BYTES:
                self.broken = True
                raise WorkerGone("sent an oversized reply")
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
