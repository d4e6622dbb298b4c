"""A seccomp-bpf filter that takes processes, sockets and signals to others away from a child.

Installed by the sandboxed child on itself, after it has dropped privileges and before it runs
the program; it cannot be removed afterwards, and no_new_privs is set with it. It is a deny
list: ordinary computation is untouched, the system calls below fail with EPERM.

- new processes and threads: clone, fork, vfork, and clone3 (which fails with ENOSYS: its flags
  sit behind a pointer a filter cannot read, and ENOSYS makes libc fall back to clone);
  RLIMIT_NPROC=0 says the same a second way;
- running another executable: execve, execveat;
- sockets of every family, and io_uring, which can open sockets without the socket call;
- signals to any process but the child itself (kill, tkill, tgkill, pidfd_*), and reading or
  writing other processes (ptrace, process_vm_*);
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

# System call numbers, from the kernel's unistd headers.
_ARCHES = {
    "x86_64": {
        "audit_arch": 0xC000003E,
        "deny": {
            "clone": 56, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322,
            "socket": 41, "socketpair": 53,
            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
            "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
            "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
            "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
            "chroot": 161, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsmount": 432,
            "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
            "add_key": 248, "request_key": 249, "keyctl": 250,
        },
        "clone3": 435, "kill": 62, "tkill": 200, "tgkill": 234,
    },
    "aarch64": {
        "audit_arch": 0xC00000B7,
        "deny": {
            "clone": 220, "execve": 221, "execveat": 281,
            "socket": 198, "socketpair": 199,
            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
            "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
            "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
            "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41,
            "chroot": 51, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsmount": 432,
            "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
            "add_key": 217, "request_key": 218, "keyctl": 219,
        },
        "clone3": 435, "kill": 129, "tkill": 130, "tgkill": 131,
    },
}  # fmt: skip


def supported() -> bool:
    """Whether a filter can be built for this machine's architecture."""
    return platform.machine() in _ARCHES


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def build_filter(own_pid: int) -> bytes:
    """The filter program for a child whose pid is `own_pid`, as packed `struct sock_filter`s."""
    arch = _ARCHES[platform.machine()]
    deny = _op(_RET_K, _RET_ERRNO | errno.EPERM)
    allow = _op(_RET_K, _RET_ALLOW)
    prog = [
        _op(_LD_W_ABS, _ARCH),
        _op(_JEQ_K, arch["audit_arch"], jt=1),
        _op(_RET_K, _RET_KILL_PROCESS),
        _op(_LD_W_ABS, _NR),
    ]
    if platform.machine() == "x86_64":
        prog += [_op(_JGE_K, _X32_SYSCALL_BIT, jf=1), _op(_RET_K, _RET_KILL_PROCESS)]
    for number in arch["deny"].values():
        prog += [_op(_JEQ_K, number, jf=1), deny]
    prog += [_op(_JEQ_K, arch["clone3"], jf=1), _op(_RET_K, _RET_ERRNO | errno.ENOSYS)]
    # kill(0, sig) is the child's own process group, which holds only the child (it is a
    # session leader and cannot fork); anything else must name the child's own pid.
    # The comparison reads the low 32 bits of the argument, as the kernel reads a pid_t.
    own = own_pid & 0xFFFFFFFF
    for name, may_be_zero in (("kill", True), ("tkill", False), ("tgkill", False)):
        checks = [_op(_LD_W_ABS, _ARG0), _op(_JEQ_K, own, jt=2 if may_be_zero else 1)]
        if may_be_zero:
            checks.append(_op(_JEQ_K, 0, jt=1))
        checks += [deny, allow]
        # Every path through `checks` returns, so a jump over them leaves the number loaded.
        prog += [_op(_JEQ_K, arch[name], jf=len(checks)), *checks]
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
