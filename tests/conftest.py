import os
import subprocess
from pathlib import Path

import pytest

from azr.executor import Executor, ExecutorConfig
from azr.executor.sandbox import find_bwrap

SHARED = Path(os.environ.get("AZR_SHARED", Path(__file__).resolve().parents[2] / "shared"))
"""The team's shared data (CRUXEval, the AZR seed files): ../shared beside the repository, or
$AZR_SHARED. Tests that need it are skipped, saying so, where it is missing."""

TEST_LIMITS = {"timeout": 2.0, "memory_mb": 256, "max_stdout_bytes": 10_000}


def bwrap_works() -> bool:
    if find_bwrap() is None:
        return False
    try:
        with Executor(ExecutorConfig(isolation="bwrap", workers=1)) as executor:
            return executor.run("def f():\n    return 1", "").ok
    except Exception:
        return False


BWRAP = bwrap_works()

requires_bwrap = pytest.mark.skipif(not BWRAP, reason="bubblewrap cannot run here")


@pytest.fixture(scope="module", params=["bwrap", "none"])
def executor(request):
    """An executor per isolation; the bwrap one is skipped where bubblewrap cannot run."""
    if request.param == "bwrap" and not BWRAP:
        pytest.skip("bubblewrap cannot run here")
    with Executor(ExecutorConfig(isolation=request.param, **TEST_LIMITS)) as executor:
        yield executor


@pytest.fixture(scope="session")
def sandbox():
    """One executor with the default isolation, for tests of what runs on top of it."""
    with Executor(ExecutorConfig(**TEST_LIMITS)) as executor:
        yield executor


@pytest.fixture(scope="session")
def quick_model(tmp_path_factory):
    """A small embedded-style model built by `azr build-base-model --quick` (about 15 s): a real
    tokenizer and held-out set, weights that barely learned."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("quick") / "model"
    done = subprocess.run(
        [sys.executable, "-m", "azr.cli", "build-base-model", "--out", str(out), "--quick"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


class Disk:
    """A tmpfs of its own for a test: `path`, and `remount("size=2m")`, `remount("ro")`..."""

    def __init__(self, path):
        self.path = path

    def remount(self, options):
        subprocess.run(["mount", "-o", f"remount,{options}", str(self.path)], check=True)


@pytest.fixture
def disk(tmp_path):
    """A 64 MiB tmpfs, to be filled or made read-only, where the test runs as root and may mount;
    else skipped, saying why."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield Disk(mount)
    subprocess.run(["umount", "-l", str(mount)], check=False)
