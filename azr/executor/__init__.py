"""Run untrusted, model-written Python programs: fast, many at a time, in a real sandbox.

A request is a program (source defining an entry function `f`) and an input (the argument list of
one call to `f`, in Python literals: `'abc', [1, 2]` or `nums=[1, 2], k=3`). The result is a status
from a closed set (ok, error, timeout, memory, invalid_input, invalid_output), the canonical repr of
the output when ok, a short error text otherwise, and the seconds taken.

    from azr.executor import Executor, ExecRequest
    with Executor() as executor:
        results = executor.run_batch([ExecRequest("def f(x):\\n    return x * 2", "21")])

Threat model
============
The programs come from a model that is rewarded for whatever gets through, so they are assumed
hostile: they may loop, allocate without end, fork, open sockets, read files, patch builtins,
signal other processes, print floods, forge results, or crash the interpreter on purpose. The
calling process (the trainer, holding model weights and credentials) and the machine around it
are what we protect, and the verdicts must be ones the program could only earn by returning a
value.

Assets: the caller's process, memory and environment; the user's files and other processes; the
network; the machine's availability (a fork bomb has taken this kind of machine down before); and
the integrity of each verdict.

Out of scope: kernel exploits and CPU side channels. The sandbox narrows the kernel surface
(seccomp) but a kernel bug is not defended against; run on a machine you are willing to lose if
you fear one. Programs can read what the interpreter's files contain and what the process reports
about itself (CPU model, kernel version).

Layers, from the outside in:

1. The caller never runs model text. Inputs are parsed as literals (a syntax tree is walked,
   nothing is evaluated) and rejected as `invalid_input` before anything starts; outputs come back
   as a repr which is parsed and re-serialized, and accepted only if canonical
   (`protocol.interpret`). The caller never forks: workers are started with fork+exec.
2. Workers (`worker.py`): one lean interpreter per slot, started once, which runs no untrusted
   code itself. Its children are forked by a zygote that was split off before any request was
   read and never holds request data, so no program can find an earlier program, input or output
   in its own memory. The worker is non-dumpable (children with its uid cannot open its memory),
   and leaves the scratch space empty after each request; if it cannot, it retires and a fresh
   sandbox is started.
3. bubblewrap (isolation `bwrap`, the default when it works): each worker lives in new mount, pid,
   network, IPC, UTS and cgroup namespaces (and a user namespace when not root), sees a read-only
   /usr and interpreter and nothing else of the host's files (no home directories, no /proc, no
   /etc beyond the loader cache), a private size-limited /tmp and a read-only minimal /dev, with
   a scrubbed environment, dies with its parent, and, as root, keeps only the capabilities it uses.
4. The child (`worker._confine`), before it even reads its request: its own session and process
   group; stdin closed; stdout and stderr into a capped capture pipe; every other inherited
   descriptor closed (the worker's channel to the caller among them); an empty private working
   directory; a scrubbed environment; if root, setgroups/setgid/setuid to nobody; death with the
   zygote; rlimits on address space (memory_mb), CPU seconds, file size, open files, core dumps,
   and RLIMIT_NPROC = 0 (no new process or thread: void for root, hence the uid drop); then
   no_new_privs and a seccomp filter (`seccomp.py`) denying process creation, exec, sockets,
   io_uring, anything aimed at another process (signals by any route, limits, scheduling, ptrace),
   System V IPC, POSIX queues and memfd (memory that escapes RLIMIT_AS), namespaces and mounts.
5. The worker enforces the wall clock with SIGKILL to the child, whatever the child does with
   signals; the caller replaces a worker that stops answering, dies, retires, or reports a child
   that could not confine itself.

Property by property (each has a test in tests/test_sandbox.py, run under both isolations
unless marked):

| threat | held by |
|---|---|
| infinite loop, sleep, signal handlers that ignore SIGTERM | wall-clock SIGKILL (5), RLIMIT_CPU |
| memory bomb; System V shared memory, memfd, POSIX queues | RLIMIT_AS -> `memory`; seccomp |
| fork bomb, daemonized grandchild, threads | RLIMIT_NPROC=0 after the uid drop, seccomp; pid namespace |
| network (connect to a listener on 127.0.0.1) | seccomp on socket; network namespace |
| writing files outside the private directory | bwrap: read-only mounts, private /tmp [bwrap only] |
| reading the caller's environment | scrubbed environment at every level; no /proc in bwrap |
| killing, stopping or re-limiting a bystander or the worker | seccomp (own pid only), uid drop; pid namespace |
| reading earlier requests from memory | children forked from a zygote that never held them |
| state leaking between requests (builtins, files) | a fresh child per request; scratch emptied |
| paths too long or trees too deep to clean up | descriptor-based cleanup; else a fresh sandbox |
| forged results (fake lines on stdout or any fd) | a separate result pipe, see below |
| sys.exit, os._exit, segfault, recursion, stdin reads | `error`, the worker carries on |
| non-plain, huge or deep outputs | exact-type serializer with size and depth limits -> `invalid_output` |
| tests that exit early, forge a pass, fork, connect, flood (test requests) | as for programs: `error` [test requests] |
| writing into `python_paths`, or importing from them unasked | read-only bind, off sys.path by default [bwrap only] |

Results: stdout is a separate pipe, so lines printed there are only output. The result channel
must carry exactly one well-formed message, with a canonical output, from a child that then exits
0; anything else is `error` (a message claiming `invalid_input` too: the caller checked the input).
A program that writes such a message itself and exits at once gets its output accepted: the same
power as returning that value, so it forges nothing.

Test requests (`TestRequest`: a program, then its tests in the same namespace, ok iff nothing
raises; for benchmarks such as HumanEval) run in the same children under the same layers and limits,
and are tested against the same attacks (tests/test_sandbox.py, "test requests"). Leaving early is
never a pass: sys.exit, os._exit and a forged message followed by a failure are all `error`. What
a test request cannot promise is a verdict against a program built to fake one: the tests share
its interpreter, so an object equal to everything or patched builtins pass them. It scores
benchmarks; it is not a reward to train a policy against.

`python_paths` (ExecutorConfig) lets programs import from extra directories, mounted read-only
(layer 3 shows nothing else of the host) and appended to sys.path; empty by default, and self-play
never sets it. The math scorer uses it to run math-verify, which parses with sympy's `eval`, inside
the sandbox, with only site-packages directories (azr.benchmarks.maths.scorer_paths).

Isolation `none` keeps layers 1, 2, 4 and 5 but not 3. It is allowed only as root, where the
children drop to nobody: without the mount namespace they can still read world-readable files.
For a non-root user it is refused (the children would run as that user, able to read and write
the user's files and the caller's memory through /proc), and `auto` never falls back to it;
as root, `auto` falls back to it with a loud warning where bubblewrap cannot run.

Known limits, not yet held: a program may fill the private /tmp with empty files up to the time
limit (kernel memory for inodes, which tmpfs's size limit does not count; it is freed when the
request ends), and the machine's memory is bounded per child (memory_mb) but not per worker by a
cgroup.
"""

import atexit

from azr.executor.literals import Arguments, NotPlainData, canonical, is_canonical, parse_arguments, parse_value
from azr.executor.pool import Executor, ExecutorConfig, ExecutorError
from azr.executor.protocol import ExecRequest, ExecResult, ExecStatus, TestRequest

__all__ = [
    "Arguments",
    "ExecRequest",
    "ExecResult",
    "ExecStatus",
    "Executor",
    "ExecutorConfig",
    "ExecutorError",
    "NotPlainData",
    "TestRequest",
    "canonical",
    "is_canonical",
    "parse_arguments",
    "parse_value",
    "run",
]

_default: Executor | None = None


def run(program: str, input: str) -> ExecResult:
    """Run one program with a shared default executor (started on first use)."""
    global _default
    if _default is None:
        _default = Executor()
        atexit.register(_default.close)
    return _default.run(program, input)
