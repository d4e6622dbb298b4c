"""The zygote: forks the sandbox worker's children, and holds no request data.

The worker (azr.executor.worker) forks the zygote right after the standard modules are preloaded
and before any request is read. Children are copies of the zygote, which never holds request data,
so a program cannot find earlier programs, inputs or outputs in its own memory (a child forked
from the worker could: freed memory is not cleared).

Where the kernel allows it (`namespaces`), the zygote works in a mount namespace of its own and
gives each child a fresh tmpfs and a pid namespace of its own, and nothing is left to clean up;
elsewhere children are forked and share one private directory that the worker empties after each
request (azr.executor.scratch).

`_start_zygote` and `_prepare` run in the worker: its end of the zygote's channel.

This module imports only the standard library and this package's stdlib-only modules; the worker
runs with `-S`.
"""

from __future__ import annotations

import os
import signal
import socket

from azr.executor import child, namespaces, seccomp
from azr.executor.scratch import _signatures, _untouched

PR_SET_PDEATHSIG = 1
_ZYGOTE_TIMEOUT = 10.0


def _start_zygote(config: dict) -> tuple[socket.socket, bool, str]:
    """The zygote's channel, whether it clones children into fresh namespaces, and why not."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if os.fork() == 0:
        ours.close()
        try:
            _zygote(theirs, config)
        finally:
            os._exit(0)
    theirs.close()
    ours.settimeout(_ZYGOTE_TIMEOUT)
    mode = ours.recv(512).decode("utf-8", "replace")
    return ours, mode == "fresh", mode.removeprefix("plain:") if mode != "fresh" else ""


def _zygote(channel: socket.socket, config: dict) -> None:
    """First say whether children can have fresh namespaces. Then, `prepare`: create a child with
    fresh pipes (it confines itself and waits for its request); `go`: hand the worker the pipes'
    other ends and the child's pid, wait for the child, and report its exit status."""
    seccomp.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # no zygote without its worker
    own = os.pidfd_open(os.getpid())  # children watch it: they must not outlive the zygote
    fresh, why_not = _fresh_namespaces_work(config)
    channel.send(b"fresh" if fresh else f"plain:{why_not}".encode()[:500])
    prepared = None
    while command := channel.recv(16):
        if command == b"prepare" or prepared is None:
            prepared = _create_child(channel, config, own, fresh)
        if command == b"go":
            pid, fds = prepared
            prepared = None
            socket.send_fds(channel, [str(pid).encode()], fds)
            for fd in fds:
                os.close(fd)
            _, status = os.waitpid(pid, 0)
            channel.send(str(os.waitstatus_to_exitcode(status)).encode())


def _fresh_namespaces_work(config: dict) -> tuple[bool, str]:
    """Try once: the zygote's own mount namespace and private tmpfs, then a child cloned into a
    new pid namespace that finds itself pid 1."""
    if not namespaces.known_machine():
        return False, "an architecture without known system call numbers"
    try:
        namespaces.isolate_zygote(_child_uid(config), host_view=config["host_view"])
        pid = namespaces.clone(namespaces.CLONE_NEWPID)
    except OSError as error:
        return False, str(error)
    if pid == 0:
        os._exit(0 if os.getpid() == 1 else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0, "a cloned child was not pid 1 of its namespace"


def _child_uid(config: dict) -> int:
    return config["drop_to_uid"] if config["drop_to_uid"] is not None else os.getuid()


def _create_child(channel: socket.socket, config: dict, zygote_pidfd: int, fresh: bool) -> tuple[int, list[int]]:
    """A new child, and the worker's ends of its request, result and output pipes."""
    request_r, request_w = os.pipe()
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    if fresh:
        namespaces.renew_private_directory(_child_uid(config))
    pid = namespaces.clone(namespaces.CLONE_NEWPID) if fresh else os.fork()
    if pid == 0:
        channel.close()
        for fd in (request_w, result_r, output_r):
            os.close(fd)
        child.main(config, zygote_pidfd, request=request_r, result=result_w, output=output_w, fresh=fresh)
    for fd in (request_r, result_w, output_w):
        os.close(fd)
    return pid, [request_w, result_r, output_r]


def _prepare(config: dict, zygote: socket.socket, fresh: bool) -> None:
    """Have the zygote create the next child; without fresh namespaces, make its private directory
    first (unless the last child left it untouched)."""
    private = os.path.join(config["scratch"], "work")
    if not fresh and not _untouched:
        os.mkdir(private, 0o700)
        if config["drop_to_uid"] is not None:
            os.chown(private, config["drop_to_uid"], config["drop_to_uid"])
        _untouched[:] = _signatures([*config["wipe"], private])
    zygote.send(b"prepare")
