"""What a task program may reach for at run time, enforced inside the sandboxed child.

The static filter (azr.tasks.programs) judges a program's text; a program can still reach a banned
module through an allowed one (`pkgutil.resolve_name('time.time')`, `pydoc.locate`,
`email.utils.formatdate`, `fnmatch.os.getpid`). A request that carries a policy (azr.executor.protocol.Policy) runs with
more layers, armed in its child just before the program is compiled:

- a PEP 578 audit hook that refuses files (any `open` other than a read of the interpreter's
  library; listing, creating, removing, renaming), processes, signals, sockets, ctypes, `mmap`;
- `__import__` and `importlib.import_module` refuse banned modules (even ones already loaded), and
  the audit hook refuses loading them;
- the functions that read ambient state outside any audit event refuse: the clocks, process ids,
  load, randomness and file times (`time.time`, `os.getpid`, `os.stat`...), in the modules that
  define them.

Each refuses only what is done on the program's behalf: walking out from the call, the first
frame that decides is the program's own (refused), or the import guard's, under which an import
the policy let through runs (allowed: `import base64` may load binascii, importlib may stat and
read library files). Frames decide by their code objects' identity or by the program's own file
name, never by a library's name, which a code object can be given. The first refusal is recorded;
whatever the program does next (it may catch the exception), its request ends with status
`banned`.

This is a second line behind the determinism check, not a boundary: a reference to an original
function taken before these layers went in (`random`'s own `_urandom`), a C function reading the
clock (`datetime.datetime.now`), or string-based reflection that reaches the policy's own objects
(a closure's cells) escapes it; what they read is caught by the two validation runs differing in
clock and hash seed, or is the same for every request (see azr.executor's threat model).

Standard library only: the sandbox worker imports this module.
"""

from __future__ import annotations

import builtins
import os
import sys
import time
from types import FrameType
from typing import Any

_REFUSED_EVENTS = (
    "os.", "subprocess.", "socket.", "ctypes.", "shutil.", "tempfile.", "glob.", "pty.", "mmap.", "signal.",
    "fcntl.", "resource.", "sqlite3.", "urllib.", "http.", "ftplib.", "smtplib.", "poplib.", "imaplib.",
    "nntplib.", "telnetlib.", "webbrowser.", "syslog.", "msvcrt.", "winreg.", "_winapi.",
)  # fmt: skip
_ALLOWED_EVENTS = frozenset({"os.putenv", "os.unsetenv"})  # the child's own environment, scrubbed and private

_TIME = (
    "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "process_time",
    "process_time_ns", "thread_time", "thread_time_ns", "clock_gettime", "clock_gettime_ns",
)  # fmt: skip
_TIME_UNLESS_GIVEN = {"localtime": 1, "gmtime": 1, "ctime": 1, "asctime": 1, "strftime": 2}
"""Functions that read the clock when not given a time: the position of that argument."""
_OS = (
    "getpid", "getppid", "getpgrp", "getpgid", "getsid", "getloadavg", "times", "urandom", "getrandom",
    "getlogin", "getpriority", "stat", "lstat", "fstat", "statvfs", "fstatvfs",
)  # fmt: skip
_RANDOM = (
    "random", "uniform", "randint", "randrange", "choice", "choices", "sample", "shuffle", "gauss",
    "getrandbits", "randbytes", "seed", "getstate", "triangular", "betavariate", "expovariate",
    "gammavariate", "lognormvariate", "normalvariate", "paretovariate", "vonmisesvariate", "weibullvariate",
)  # fmt: skip


class Refused(BaseException):
    """Raised at the program when the policy refuses it something. A BaseException, so that an
    `except Exception` in the program does not hide it (the refusal is recorded either way)."""


class Policy:
    """The run-time layer, built once in the worker and armed in a child: `arm` it with the
    banned modules, run the program, then read `refused`."""

    def __init__(self, library_dirs: list[str]) -> None:
        self.banned: frozenset[str] = frozenset()
        # As given and resolved: paths are then compared without resolving links (which stats).
        dirs = {os.path.normpath(d) for d in library_dirs if d} | {os.path.realpath(d) for d in library_dirs if d}
        self.library_dirs = tuple(os.path.join(d, "") for d in sorted(dirs))
        self.refused = ""
        """What was refused first, or '' when nothing was."""
        self._vetted: set[Any] = set()
        """The code of the import guards: what runs under them is an import the policy let through."""
        self._replacements = self._replacements_of_ambient_functions() + self._import_guards()

    def arm(self, banned_modules: list[str]) -> None:
        """Install every layer in this process (a child, about to compile its program); for good."""
        self.banned = frozenset(banned_modules) | {"azr"}  # the sandbox's own code, this policy among it
        for module, name, function in self._replacements:
            setattr(module, name, function)
        sys.addaudithook(self._audit)

    def _replacements_of_ambient_functions(self) -> list[tuple[Any, str, Any]]:
        found = [self._guard(time, name, f"time.{name}() (the clock)") for name in _TIME]
        found += [
            self._guard(time, name, f"time.{name}() without a time (the clock)", unless_argument=position)
            for name, position in _TIME_UNLESS_GIVEN.items()
        ]
        for module in {os, sys.modules.get("posix")} - {None}:
            found += [self._guard(module, name, f"os.{name}()") for name in _OS]
        random = sys.modules.get("random")
        found += [self._guard(random, name, f"random.{name}()") for name in (_RANDOM if random is not None else ())]
        resource = sys.modules.get("resource")  # loaded by the worker: CPU time, memory in use
        found += [self._guard(resource, name, f"resource.{name}()") for name in ("getrusage",) if resource]
        return [replacement for replacement in found if replacement is not None]

    def _import_guards(self) -> list[tuple[Any, str, Any]]:
        import importlib  # its import_module is how name resolvers (pkgutil) import

        original_import, original_import_module = builtins.__import__, importlib.import_module

        def guarded_import(
            name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
        ) -> Any:
            if level == 0:
                self._check_import(name, sys._getframe(1))
            return original_import(name, globals, locals, fromlist, level)

        def guarded_import_module(name: str, package: str | None = None) -> Any:
            self._check_import(name, sys._getframe(1))
            return original_import_module(name, package)

        self._vetted = {guarded_import.__code__, guarded_import_module.__code__}
        return [(builtins, "__import__", guarded_import), (importlib, "import_module", guarded_import_module)]

    def refuse(self, what: str) -> None:
        if not self.refused:
            self.refused = what
        raise Refused(f"not allowed in a task program: {what}")

    # -- who is asking --------------------------------------------------------------------------

    def _for_program(self, frame: FrameType | None) -> bool:
        """Whether the call made in `frame` is made on the program's behalf: walking outward, a
        frame of the program's own code comes before an import guard (under which the import
        system and the modules it loads do their work) or the end of the stack (the child's own
        code). Only code objects decide, by identity or by the program's file name: a frame that
        claims to be library code by its names decides nothing."""
        while frame is not None:
            code = frame.f_code
            if code.co_filename == "<program>":
                return True
            if code in self._vetted:
                return False
            frame = frame.f_back
        return False

    def _check_import(self, module: Any, frame: FrameType | None) -> None:
        if not isinstance(module, str):
            return
        top = module.partition(".")[0]
        underscored = top.startswith("_") and top != "__future__"
        if top not in self.banned and not underscored:
            return
        asking = frame
        while asking is not None and asking.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            asking = asking.f_back
        # `_` modules are the C halves of others: the program may not import them, its modules may.
        if (asking is not None and asking.f_code.co_filename == "<program>") or (
            top in self.banned and self._for_program(frame)
        ):
            self.refuse(f"import of {module}")

    # -- the audit hook -------------------------------------------------------------------------

    def _audit(self, event: str, arguments: tuple) -> None:
        if event == "import":
            self._check_import(arguments[0], sys._getframe(1))

        elif event == "open":
            if not self._reads_library(arguments) and self._for_program(sys._getframe(1)):
                self.refuse(f"open({arguments[0]!r:.100})")
        elif event.startswith(_REFUSED_EVENTS) and event not in _ALLOWED_EVENTS and self._for_program(sys._getframe(1)):
            self.refuse(event)

    def _reads_library(self, arguments: tuple) -> bool:
        """An `open` that reads a file of the interpreter's library: what every import does."""
        path, mode = arguments[0], arguments[1] if len(arguments) > 1 else "r"
        flags = arguments[2] if len(arguments) > 2 and isinstance(arguments[2], int) else 0
        reading = mode is None or (isinstance(mode, str) and not set(mode) & set("wax+"))
        writes = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        if not (isinstance(path, (str, bytes)) and reading and not writes):
            return False
        return os.path.normpath(os.path.abspath(os.fsdecode(path))).startswith(self.library_dirs)

    # -- ambient state outside the audit events ---------------------------------------------------

    def _guard(self, module: Any, name: str, what: str, unless_argument: int = 0) -> tuple[Any, str, Any] | None:
        """A replacement for `module.name` that refuses calls on the program's behalf (with
        `unless_argument`: those that leave that positional argument out, or None)."""
        original = getattr(module, name, None)
        if original is None:
            return None

        def guarded(*arguments: Any, **keywords: Any) -> Any:
            given = unless_argument and len(arguments) >= unless_argument and arguments[unless_argument - 1] is not None
            if not given and self._for_program(sys._getframe(1)):
                self.refuse(what)
            return original(*arguments, **keywords)

        return module, name, guarded
