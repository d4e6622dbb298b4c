"""Namespaces that make every child start from the same state: nothing one program does is seen by the next.

The zygote moves into a mount namespace of its own once, where (without bubblewrap) it makes the
whole tree read-only and hides the host's /proc. Before each child it mounts a fresh tmpfs on
/tmp (size- and inode-limited, owned by the uid the child will drop to), the child's private
directory and working directory: every program starts in an empty directory with the same path,
the same inode numbers and no access times left by an earlier program, and what it wrote is
gone. It then creates the child with clone(CLONE_NEWPID), through Python's own fork hooks
(`PyOS_BeforeFork`, `PyOS_AfterFork_*`, as `os.fork` calls them), so the child's interpreter is in
the state `os.fork` leaves it in, and the child is pid 1 of a pid namespace of its own: every
program sees pid 1 and parent pid 0, and the pid counter says nothing about earlier requests. (As
pid 1, a program cannot kill itself with a signal it has no handler for: the kernel ignores those,
as for any init.)

This needs CAP_SYS_ADMIN in the zygote: bubblewrap keeps it for the worker, root has it. Where the
kernel refuses (a container without it), the worker falls back to one shared private directory
emptied between requests (azr.executor.scratch), with the weaker guarantees the threat model lists.

Standard library only (and this package's stdlib-only seccomp): the sandbox worker imports this module.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
from typing import Any

from azr.executor import seccomp

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
"""The flag each child is cloned with."""
_SIGCHLD = 17

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REC, _MS_PRIVATE = 0x4000, 1 << 18
_AT_FDCWD, _AT_RECURSIVE = -100, 0x8000
_MNT_DETACH = 2
_MOUNT_ATTR_RDONLY = 0x1

# machine -> (clone, mount_setattr, capget, capset)
_SYSCALLS = {"x86_64": (56, 442, 125, 126), "aarch64": (220, 442, 90, 91)}
_CAPABILITY_VERSION_3 = 0x20080522
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4

PRIVATE_DIRECTORY = "/tmp"
"""Where each child's fresh tmpfs is mounted (in the zygote's mount namespace): its working directory."""
TMPFS_BYTES = 64 * 2**20
TMPFS_INODES = 4096
"""Files and directories a program may create: bounds the kernel memory a program can pin in
inodes, which the tmpfs size limit does not count."""


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]  # fmt: skip


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


@functools.lru_cache(maxsize=1)
def _libc() -> dict[str, Any]:
    """libc twice: `held` keeps the GIL across the call (as os.fork does around fork), `free` not."""
    held = ctypes.PyDLL(None, use_errno=True)
    held.syscall.restype = ctypes.c_long
    free = ctypes.CDLL(None, use_errno=True)
    free.syscall.restype = ctypes.c_long
    free.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    api = ctypes.pythonapi
    for name in ("PyOS_BeforeFork", "PyOS_AfterFork_Parent", "PyOS_AfterFork_Child"):
        getattr(api, name).restype = None
    return {"held": held, "free": free, "api": api}


def _check(result: int, what: str) -> None:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def known_machine() -> bool:
    return platform.machine() in _SYSCALLS


def clone(flags: int) -> int:
    """Like os.fork(), with CLONE_NEW* `flags`: 0 in the child, the child's pid in the parent.

    Call only in a single-threaded process holding no locks (the zygote)."""
    libc = _libc()
    number = _SYSCALLS[platform.machine()][0]
    libc["api"].PyOS_BeforeFork()
    pid = libc["held"].syscall(number, ctypes.c_ulong(flags | _SIGCHLD), None, None, None, None)
    if pid == 0:
        libc["api"].PyOS_AfterFork_Child()
        return 0
    code = ctypes.get_errno()
    libc["api"].PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(code, f"clone: {os.strerror(code)}")
    return pid


def isolate_zygote(uid: int, host_view: bool) -> None:
    """Move the calling process (the zygote) into a mount namespace of its own and mount the first
    private directory. `host_view` (no bubblewrap around it): also make every mount read-only, so
    no directory a child could reach is writable whatever the host's permissions say, and hide the
    host's /proc and /sys behind empty read-only tmpfs."""
    libc = _libc()["free"]
    _check(libc.unshare(CLONE_NEWNS), "a mount namespace for the zygote")
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "making mounts private")
    if host_view:
        attr = _MountAttr(_MOUNT_ATTR_RDONLY, 0, 0, 0)
        number = _SYSCALLS[platform.machine()][1]
        done = libc.syscall(number, _AT_FDCWD, b"/", _AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr))
        _check(done, "making mounts read-only (needs Linux 5.12)")
        for hidden in ("/proc", "/sys"):  # the host's processes, and its memory, load and counters
            if os.path.isdir(hidden):
                _mount_tmpfs(hidden.encode(), b"size=4k,nr_inodes=1,mode=0555", _MS_RDONLY)
    _mount_tmpfs(PRIVATE_DIRECTORY.encode(), _private_options(uid))


def renew_private_directory(uid: int) -> None:
    """Replace the last child's tmpfs with an empty one (the last child is dead)."""
    _check(_libc()["free"].umount2(PRIVATE_DIRECTORY.encode(), _MNT_DETACH), "unmounting the private directory")
    _mount_tmpfs(PRIVATE_DIRECTORY.encode(), _private_options(uid))


def _private_options(uid: int) -> bytes:
    return f"size={TMPFS_BYTES},nr_inodes={TMPFS_INODES},mode=0700,uid={uid},gid={uid}".encode()


def _mount_tmpfs(target: bytes, options: bytes, flags: int = 0) -> None:
    flags |= _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    _check(_libc()["free"].mount(b"tmpfs", target, b"tmpfs", flags, options), f"mounting a tmpfs on {target.decode()}")


def drop_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets (and the ambient set). A root child
    loses them anyway when it drops to nobody; an unprivileged bubblewrap child keeps its uid and
    would keep what bubblewrap left the worker. Without exec, nothing can raise them again."""
    libc = _libc()["free"]
    seccomp.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    number = _SYSCALLS[platform.machine()][3]
    _check(libc.syscall(number, ctypes.byref(header), ctypes.byref(data)), "dropping capabilities")
    number = _SYSCALLS[platform.machine()][2]
    _check(libc.syscall(number, ctypes.byref(header), ctypes.byref(data)), "reading capabilities")
    if any(d.effective or d.permitted or d.inheritable for d in data):
        raise OSError("capabilities survived capset")
