"""A seccomp-bpf filter that takes processes, sockets, other processes and shared memory away from a child.

Installed by the sandboxed child on itself, after it has dropped privileges and before it reads its
request; it cannot be removed afterwards, and no_new_privs is set with it. It is a deny list:
ordinary computation is untouched, the calls below fail with EPERM.

- new processes and threads: clone, fork, vfork, and clone3 (which fails with ENOSYS: its flags
  sit behind a pointer a filter cannot read, and ENOSYS makes libc fall back to clone);
  RLIMIT_NPROC=0 says the same a second way;
- running another executable: execve, execveat;
- sockets of every family, and io_uring, which can open sockets without the socket call;
- other processes: signals (kill, tkill, tgkill, rt_(tg)sigqueueinfo) and limits or scheduling
  (prlimit64, sched_set*) unless aimed at the child itself; fcntl F_SETOWN/F_SETSIG and the ioctls
  that make the kernel signal someone else; ptrace, process_vm_*, pidfd_*, setpriority...;
- memory that escapes RLIMIT_AS and outlives the process: System V shared memory, semaphores and
  message queues, POSIX message queues, memfd; special files (mknod);
- state shared with other requests: file locks (flock, fcntl record locks: every sandbox sees the
  same read-only files), and the machine's free memory and load (sysinfo);
- new namespaces, mounts, and rarely needed kernel surfaces (bpf, perf_event_open, userfaultfd,
  keyrings).

A call from a foreign ABI (32-bit x86, x32) kills the process. Only x86_64 and aarch64 are known;
elsewhere `supported()` is False and the other layers stand alone.

The program is written with the classic BPF opcodes in a few lines rather than through libseccomp,
so that the worker needs nothing outside the standard library and the filter can name the child's
own pid, which is only known after the fork.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import platform
import struct
from typing import Any

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
_NR, _ARCH, _ARG0 = 0, 4, 16

_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K

_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

_X32_SYSCALL_BIT = 0x40000000

# System call numbers, from the kernel's unistd headers. Unguarded: denied whatever the arguments.
_DENY = {
    # new processes, other executables
    "clone": (56, 220), "fork": (57, None), "vfork": (58, None), "execve": (59, 221),
    "execveat": (322, 281),
    # sockets, and io_uring, which opens sockets without the socket call
    "socket": (41, 198), "socketpair": (53, 199),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    # other processes
    "pidfd_open": (434, 434), "pidfd_send_signal": (424, 424), "pidfd_getfd": (438, 438),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "process_madvise": (440, 440), "kcmp": (312, 272), "migrate_pages": (256, 238),
    "move_pages": (279, 239), "get_robust_list": (274, 100), "setpriority": (141, 140),
    "ioprio_set": (251, 30),
    # memory outside RLIMIT_AS that outlives the process: System V IPC, POSIX queues, memfd
    "shmget": (29, 194), "shmat": (30, 196), "shmctl": (31, 195), "shmdt": (67, 197),
    "semget": (64, 190), "semop": (65, 193), "semctl": (66, 191), "semtimedop": (220, 192),
    "msgget": (68, 186), "msgsnd": (69, 189), "msgrcv": (70, 188), "msgctl": (71, 187),
    "mq_open": (240, 180), "mq_unlink": (241, 181), "mq_timedsend": (242, 182),
    "mq_timedreceive": (243, 183), "mq_notify": (244, 184), "mq_getsetattr": (245, 185),
    "memfd_create": (319, 279), "memfd_secret": (447, 447), "mknod": (133, None), "mknodat": (259, 33),
    # namespaces and mounts
    "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40), "umount2": (166, 39),
    "pivot_root": (155, 41), "chroot": (161, 51), "open_tree": (428, 428), "move_mount": (429, 429),
    "fsopen": (430, 430), "fsmount": (432, 432),
    # state shared between requests: locks on files every sandbox sees (the read-only library), and
    # the machine's memory and load
    "flock": (73, 32), "sysinfo": (99, 179),
    # rarely needed kernel surfaces
    "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "add_key": (248, 217), "request_key": (249, 218), "keyctl": (250, 219),
}  # fmt: skip

# Allowed only when the first argument names the child itself (its pid, or 0 where 0 means self).
_SELF_ONLY = {
    "kill": ((62, 129), True), "tkill": ((200, 130), False), "tgkill": ((234, 131), False),
    "rt_sigqueueinfo": ((129, 138), False), "rt_tgsigqueueinfo": ((297, 240), False),
    "prlimit64": ((302, 261), True), "sched_setaffinity": ((203, 122), True),
    "sched_setscheduler": ((144, 119), True), "sched_setparam": ((142, 118), True),
    "sched_setattr": ((314, 274), True),
}  # fmt: skip

# Denied for these values of the second argument: ways to have signals sent to another process, and
# record locks (POSIX and open-file-description), which another request could see.
_F_SETOWN, _F_SETSIG, _F_SETOWN_EX, _FIOSETOWN, _SIOCSPGRP = 8, 10, 15, 0x8901, 0x8902
_F_GETLK, _F_SETLK, _F_SETLKW, _F_OFD_GETLK, _F_OFD_SETLK, _F_OFD_SETLKW = 5, 6, 7, 36, 37, 38
_DENY_COMMANDS = {
    "fcntl": (
        (72, 25),
        (_F_SETOWN, _F_SETSIG, _F_SETOWN_EX, _F_GETLK, _F_SETLK, _F_SETLKW, _F_OFD_GETLK, _F_OFD_SETLK, _F_OFD_SETLKW),
    ),
    "ioctl": ((16, 29), (_FIOSETOWN, _SIOCSPGRP)),
}
_CLONE3 = 435

_ARCHES = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}
"""machine -> (column in the tables above, AUDIT_ARCH value)."""


def supported() -> bool:
    """Whether a filter can be built for this machine's architecture."""
    return platform.machine() in _ARCHES


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def _on_argument(number: int, argument: int, values: list[int], hit: bytes, miss: bytes) -> list[bytes]:
    """If the call is `number`: return `hit` when the argument's low 32 bits are one of
    `values` (as the kernel reads an int), else `miss`. Every path returns, so a jump over the
    block leaves the call number in the accumulator for the next one."""
    block = [_op(_LD_W_ABS, _ARG0 + 8 * argument)]
    for i, value in enumerate(values):
        block.append(_op(_JEQ_K, value & 0xFFFFFFFF, jt=len(values) - i))
    block += [miss, hit]
    return [_op(_JEQ_K, number, jf=len(block)), *block]


def build_filter(own_pid: int) -> bytes:
    """The filter program for a child whose pid is `own_pid`, as packed `struct sock_filter`s."""
    column, audit_arch = _ARCHES[platform.machine()]
    deny = _op(_RET_K, _RET_ERRNO | errno.EPERM)
    allow = _op(_RET_K, _RET_ALLOW)
    prog = [
        _op(_LD_W_ABS, _ARCH),
        _op(_JEQ_K, audit_arch, jt=1),
        _op(_RET_K, _RET_KILL_PROCESS),
        _op(_LD_W_ABS, _NR),
    ]
    if platform.machine() == "x86_64":
        prog += [_op(_JGE_K, _X32_SYSCALL_BIT, jf=1), _op(_RET_K, _RET_KILL_PROCESS)]
    for numbers in _DENY.values():
        if numbers[column] is not None:
            prog += [_op(_JEQ_K, numbers[column], jf=1), deny]
    prog += [_op(_JEQ_K, _CLONE3, jf=1), _op(_RET_K, _RET_ERRNO | errno.ENOSYS)]
    for numbers, zero_is_self in _SELF_ONLY.values():
        allowed = [own_pid, 0] if zero_is_self else [own_pid]
        prog += _on_argument(numbers[column], 0, allowed, hit=allow, miss=deny)
    for numbers, commands in _DENY_COMMANDS.values():
        prog += _on_argument(numbers[column], 1, list(commands), hit=deny, miss=allow)
    prog.append(allow)
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


@functools.lru_cache(maxsize=1)
def _libc_prctl() -> Any:
    # Made once in the worker before it forks: building it in every child costs ~0.3 ms.
    function = ctypes.CDLL(None, use_errno=True).prctl
    function.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return function


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    """prctl(2); raises OSError on failure."""
    if _libc_prctl()(option, arg2, arg3, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl({option}) failed: {errno.errorcode.get(code, code)}")


def install(own_pid: int) -> None:
    """Set no_new_privs and load the filter on the calling (single-threaded) process.

    Raises OSError if the kernel refuses; the caller must then not run the program.
    """
    program = build_filter(own_pid)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    prctl(_PR_SET_NO_NEW_PRIVS, 1)
    prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog))
