"""Run untrusted, model-written Python programs: fast, many at a time, in a real sandbox.

A request is a program (source defining an entry function `f`) and an input (the argument list of
one call to `f`, in Python literals: `'abc', [1, 2]` or `nums=[1, 2], k=3`), and optionally a
run-time `Policy` (self-play's requests have one). The result is a status from a closed set (ok,
error, timeout, memory, invalid_input, invalid_output, banned), the canonical repr of the output
when ok, a short error text otherwise, and the seconds taken.

    from azr.executor import Executor, ExecRequest
    with Executor() as executor:
        results = executor.run_batch([ExecRequest("def f(x):\\n    return x * 2", "21")])

Threat model
============
The programs come from a model that is rewarded for whatever gets through, so they are assumed
hostile: they may loop, allocate without end, fork, open sockets, read files, patch builtins,
signal other processes, print floods, forge results, crash the interpreter, leave traces for the
programs after them, or make a task whose answer changes later, on purpose. The calling process
(the trainer, holding model weights and credentials) and the machine around it are what we
protect, the verdicts must be ones the program could only earn by returning a value, and a task
that passes the determinism check must keep its answer.

Assets: the caller's process, memory and environment; the user's files and other processes; the
network; the machine's availability (a fork bomb has taken this kind of machine down before); the
integrity of each verdict, and of the task store.

Out of scope: kernel exploits and CPU side channels. The sandbox narrows the kernel surface
(seccomp) but a kernel bug is not defended against; run on a machine you are willing to lose if
you fear one. Programs can read what the interpreter's files contain and what the process reports
about itself (CPU model, kernel version, core count): the same for every request on a machine.

Layers, from the outside in:

1. The caller never runs model text. Inputs are parsed as literals (`literals.py`: a syntax tree
   is walked, nothing is evaluated; every parser of model text is total and linear) and rejected
   as `invalid_input` before anything starts; outputs come back as a repr which is parsed and
   re-serialized (`plain.py`), and accepted only if canonical (`protocol.interpret`, which no
   report can make raise). The caller never forks: workers are started with fork+exec.
2. Workers (`worker.py`): one lean interpreter per slot, started once with nothing of its working
   directory (`/`) or environment on its import path, which runs no untrusted code itself. Its
   children are created by a zygote (`zygote.py`) that was split off before any request was read
   and never holds request data, so no program can find an earlier program, input or output in
   its own memory. The worker is non-dumpable (children with its uid cannot open its memory) and
   refuses to start if a directory on its import path is writable by the children's uid.
3. Fresh namespaces per child (`namespaces.py`), where the kernel allows (bubblewrap keeps
   CAP_SYS_ADMIN for the zygote; root has it): the zygote works in a mount namespace of its own
   (without bubblewrap: every mount read-only, the host's /proc hidden) and gives each child a
   fresh size- and inode-limited tmpfs on /tmp, its working directory, and a pid namespace of its
   own. Every program starts from the same state: pid 1 and parent 0, an empty directory with the
   same path, inode numbers and no access times, whatever earlier programs did.
4. bubblewrap (isolation `bwrap`, the default when it works): each worker lives in new mount, pid,
   network, IPC, UTS and cgroup namespaces (and a user namespace when not root), sees a read-only
   root with /usr and the interpreter and nothing else of the host's files (no home directories,
   no /proc, no /etc beyond the loader cache), a read-only minimal /dev, with a scrubbed
   environment, dies with its parent, and, as root, keeps only the capabilities it uses.
5. The child (`child.py`), before it even reads its request: its own session and process group;
   stdin closed; stdout and stderr into a capped capture pipe; every other inherited descriptor
   closed (the worker's channel to the caller among them); a scrubbed environment; if root,
   setgroups/setgid/setuid to nobody; every capability dropped; death with the zygote; rlimits on
   address space (memory_mb), CPU seconds, file size, open files, core dumps, and RLIMIT_NPROC = 0
   (no new process or thread: void for root, hence the uid drop); then no_new_privs and a seccomp
   filter (`seccomp.py`) denying process creation, exec, sockets, io_uring, anything aimed at
   another process (signals by any route, limits, scheduling, ptrace), System V IPC, POSIX queues
   and memfd (memory that escapes RLIMIT_AS), namespaces and mounts. Only then does it write one
   byte that says it is confined, and read its request.
6. With a `Policy` (`policy.py`), the child refuses, on the program's behalf, files, processes,
   sockets, ctypes, the clock, process ids, randomness and imports of banned modules, whatever the
   spelling (PEP 578 audit hooks and guarded functions): status `banned`.
7. The worker enforces the wall clock with SIGKILL to the child, whatever the child does with
   signals; the caller replaces a worker that stops answering, dies, retires, or reports a child
   that died before confining itself, in the background while the batch goes on.

The determinism check (azr.tasks.validate) runs each proposal twice, in two worker groups (`Ambient`)
that differ in everything a program can read that is not its input: the hash seed (so set order,
`hash()` and addresses), and the clock, every clock, ahead of the real one by one of two secret
offsets a century and more apart (`run_batch`'s clocks 1 and 2: libfaketime, preloaded into both
groups' workers, with the offset read once and then gone from the environment). A program may
tell the runs apart (the hash seeds are public) but cannot undo an offset it does not know. What
is not made to differ is made the same for every request: process ids, the private directory,
the environment, the working directory; and what a program could read of the machine's state
(free memory and load through sysinfo, locks on the files every sandbox sees) is denied.

Property by property (tests in tests/test_sandbox.py and tests/test_isolation.py, run under both
isolations unless marked):

| threat | held by |
|---|---|
| infinite loop, sleep, signal handlers that ignore SIGTERM | wall-clock SIGKILL (7), RLIMIT_CPU |
| memory bomb; System V shared memory, memfd, POSIX queues | RLIMIT_AS -> `memory`; seccomp |
| fork bomb, daemonized grandchild, threads | RLIMIT_NPROC=0 after the uid drop, seccomp; pid namespaces |
| network (connect to a listener on 127.0.0.1) | seccomp on socket; network namespace [bwrap] |
| writing files outside the private directory | read-only mounts: bubblewrap's, the zygote's (3) |
| reading the caller's environment | scrubbed environment at every level; no /proc |
| killing, stopping or re-limiting a bystander or the worker | seccomp (own pid only), uid drop; pid namespaces |
| reading earlier requests from memory | children created by a zygote that never held them |
| state surviving a request: files, directory times, inode numbers, pids, builtins | a child, tmpfs, pid ns each (3) |
| filling /tmp with empty files (kernel memory for inodes) | the tmpfs's inode limit (3) |
| a module planted where a later worker or child imports it | nothing writable is on any import path (2, 3, 4) |
| forging the setup-failure exit, to restart workers | the confinement byte (5): only a child without it failed setup |
| a worker that dies or hangs holding up the batch | replaced in the background (7) |
| forged results (fake lines on any fd); outputs the caller cannot parse | a separate result pipe; a total check |
| sys.exit, os._exit, segfault, recursion, stdin reads | `error`, the worker carries on |
| non-plain, huge or deep outputs | exact-type serializer with size and depth limits -> `invalid_output` |
| a task reading the clock by any route (name resolver, date formatter, C, file times) | policy (6); else clock offset |
| a task reading process ids, the directory's path or metadata | policy (6); else the same for all (3) |
| a task telling the two runs apart and taking the clock offset back off | secret offsets, a century apart |
| a task reading the machine's free memory or load; locks as a channel | seccomp (5): sysinfo, flock, fcntl locks |
| a program reading the checkout azr runs from (tests, run directories) | only the package on the import path (2) |
| tests that exit early, forge a pass, fork, connect, flood (test requests) | as for programs: `error` [test requests] |
| writing into `python_paths`, or importing from them unasked | read-only bind, off sys.path by default [bwrap] |
| a forged or oversized trace (`ExecRequest.trace`) | checked like an output, else `error`; never a verdict |

Results: stdout is a separate pipe, so lines printed there are only output. The result channel
must carry the confinement byte, then exactly one well-formed message, with a canonical output,
from a child that then exits 0; anything else is `error` (a message claiming `invalid_input` too:
the caller checked the input). A program that writes such a message itself and exits at once gets
its output accepted: the same power as returning that value, so it forges nothing.

Test requests (`TestRequest`: a program, then its tests in the same namespace, ok iff nothing
raises; for benchmarks such as HumanEval) run in the same children under the same layers and limits,
and are tested against the same attacks (tests/test_sandbox.py, "test requests"). Leaving early is
never a pass: sys.exit, os._exit and a forged message followed by a failure are all `error`. What
a test request cannot promise is a verdict against a program built to fake one: the tests share
its interpreter, so an object equal to everything or patched builtins pass them. It scores
benchmarks; it is not a reward to train a policy against.

`python_paths` (ExecutorConfig) lets programs import from extra directories, mounted read-only
(layer 4 shows nothing else of the host) and appended to sys.path; empty by default, and self-play
never sets it. The math scorer uses it to run math-verify, which parses with sympy's `eval`, inside
the sandbox, with only site-packages directories (azr.eval.benchmarks.maths.scorer_paths).

Isolation `none` keeps every layer but 4. It is allowed only as root, where the children drop to
nobody and, with layer 3, see every mount read-only and no /proc; they can still read
world-readable host files. For a non-root user it is refused (the children would run as that
user, able to read and write the user's files and the caller's memory through /proc), and `auto`
never falls back to it; as root, `auto` falls back to it with a loud warning where bubblewrap
cannot run.

Where the kernel refuses layer 3 (a container without CAP_SYS_ADMIN, or Linux before 5.12 without
bubblewrap), children are forked and share one private directory that the worker empties after
each request (and retires when it cannot), with a warning: then earlier programs show in pids,
inode numbers and directory times, and without bubblewrap a program can write world-writable host
directories (none of them may be on the import path: layer 2 refuses to start). Where libfaketime
is missing (`azr.executor.sandbox.find_faketime`), the second validation run has the real clock,
with a warning, and a clock read the policy misses can pass the check.

Known limits, not yet held: the machine's memory is bounded per child (memory_mb) but not per
worker by a cgroup. File times are the kernel's real clock, which libfaketime does not move: only
the policy keeps a program from reading them. Global kernel counters (pipe inode numbers, mount
ids) move with what earlier requests did; only the policy keeps a program from reading them
(fstat, ctypes). A program that sleeps on a clock run ahead sleeps for the offset (libfaketime
moves the monotonic clock, the kernel's absolute sleep does not): it times out. The policy itself
is not a boundary (see azr.executor.policy): string-based reflection can reach its own objects or
an original function; what such a program reads is then the clock, caught by the offsets, or a
pid, the same for everyone.
"""

import atexit

from azr.executor.literals import Arguments, is_canonical, parse_arguments, parse_value
from azr.executor.plain import NotPlainData, canonical
from azr.executor.pool import Executor, ExecutorConfig, ExecutorError
from azr.executor.protocol import ExecRequest, ExecResult, ExecStatus, Policy, TestRequest, TraceEvent

__all__ = [
    "Arguments",
    "ExecRequest",
    "ExecResult",
    "ExecStatus",
    "Executor",
    "ExecutorConfig",
    "ExecutorError",
    "NotPlainData",
    "Policy",
    "TestRequest",
    "TraceEvent",
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
