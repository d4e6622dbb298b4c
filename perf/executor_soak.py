"""Soak the executor: many requests mixing valid programs and every hostile kind, and check nothing grows.

    python perf/executor_soak.py [--requests 100000] [--isolation auto] [--timeout 0.5]

The mix cycles through valid programs (the seeded generator of executor_throughput.py) and the
hostile kinds of tests/test_sandbox.py and tests/test_isolation.py: loops, sleeps, memory bombs,
fork bombs, threads, sockets, file writes, floods, forged results and setup failures, crashes,
huge and non-plain outputs, run-time policy breaches, test requests. Before, during (every
tenth) and after, it prints the caller's resident memory, open file descriptors, the processes
under it and zombies anywhere, with the throughput so far; at the end, each status's count. A
leak shows as a column that grows with the number of requests.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from executor_throughput import generated_programs

from azr.executor import ExecRequest, Executor, ExecutorConfig, Policy, TestRequest
from azr.tasks.programs import BANNED_MODULES

POLICY = Policy(BANNED_MODULES)

HOSTILE = {
    "loop": ("def f():\n    while True:\n        pass", None),
    "sleep": ("import time\ndef f():\n    time.sleep(60)", None),
    "memory": ("def f():\n    return len(bytearray(10**11))", None),
    "memory-growing": ("def f():\n    chunks = []\n    while True:\n        chunks.append(' ' * 10**7)", None),
    "fork-bomb": ("import os\ndef f():\n    while True:\n        os.fork()", None),
    "thread": ("import threading\ndef f():\n    threading.Thread(target=print).start()", None),
    "socket": ("import socket\ndef f():\n    return socket.socket().fileno()", None),
    "write-outside": ("def f():\n    open('/etc/azr-soak', 'w').write('x')", None),
    "fill-tmp": ("def f():\n    for i in range(5000):\n        open(f'f{i}', 'w').close()", None),
    "flood": ("def f():\n    while True:\n        print('x' * 1000)", None),
    "forged-result": (
        'import os\ndef f():\n    os.write(3, b\'{"status": "ok", "output": "1", "error": ""}\')\n    return 2',
        None,
    ),
    "forged-setup-failure": (
        "import os\ndef f():\n    os.write(3, b'sandbox setup failed: x')\n    os._exit(113)",
        None,
    ),
    "forged-uncanonical": (
        'import os\ndef f():\n    os.write(3, b\'{"status": "ok", "output": "frozenset([[1]])", "error": ""}\')\n'
        "    os._exit(0)",
        None,
    ),
    "segfault": ("import ctypes\ndef f():\n    return ctypes.string_at(0)", None),
    "recursion": ("def f(n=0):\n    return f(n + 1)", None),
    "exit": ("import os\ndef f():\n    os._exit(7)", None),
    "kill-self": ("import os\ndef f():\n    os.kill(os.getpid(), 9)", None),
    "huge-output": ("def f():\n    return 'x' * 10**6", None),
    "deep-output": ("def f():\n    v = []\n    for _ in range(1000):\n        v = [v]\n    return v", None),
    "non-plain": ("def f():\n    return object()", None),
    "syntax": ("def f(:\n    pass", None),
    "leave-traces": ("import os\ndef f():\n    os.mkdir('d')\n    os.chmod('.', 0)\n    return 1", None),
    "policy-clock": ("import pkgutil\ndef f():\n    return pkgutil.resolve_name('time.time')()", POLICY),
    "policy-pid": ("import fnmatch\ndef f():\n    return fnmatch.os.getpid()", POLICY),
    "test-request": ("def g(x):\n    return x + 1", "tests"),
}
"""name -> (program, policy); the policy `tests` makes a TestRequest."""


def mix(count: int, every_hostile: int) -> list[tuple[str, ExecRequest | TestRequest]]:
    """`count` requests: one hostile kind (in turn) after every `every_hostile - 1` valid ones."""
    valid = generated_programs(512)
    kinds = list(HOSTILE)
    requests = []
    for i in range(count):
        if i % every_hostile:
            requests.append(("valid", valid[i % len(valid)]))
            continue
        kind = kinds[(i // every_hostile) % len(kinds)]
        source, policy = HOSTILE[kind]
        if policy == "tests":
            requests.append((kind, TestRequest(source, "assert g(1) == 2")))
        else:
            requests.append((kind, ExecRequest(source, "", policy)))  # type: ignore[arg-type]
    return requests


def vitals() -> dict[str, int]:
    """The caller's resident memory (KiB) and open descriptors, its descendant processes, and
    zombies on the whole machine."""
    with open("/proc/self/status") as handle:
        rss = next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
    parents, states = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                states[int(entry)], parents[int(entry)] = fields[0], int(fields[1])
            except (OSError, IndexError, ValueError):
                pass

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return {
        "rss_kib": rss,
        "fds": len(os.listdir("/proc/self/fd")),
        "processes": sum(1 for pid in parents if descends(pid)),
        "zombies": sum(1 for state in states.values() if state == "Z"),
    }


def _row(done: int, rate: float | None, seen: dict[str, int]) -> str:
    shown = f"{rate:>7.0f}" if rate is not None else " " * 7
    return (
        f"{done:>8} {shown} {seen['rss_kib'] / 1024:>8.1f} {seen['fds']:>4} {seen['processes']:>6} {seen['zombies']:>8}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--every-hostile", type=int, default=10, help="one hostile request in this many")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--isolation", default="auto", choices=["auto", "bwrap", "none"])
    parser.add_argument("--timeout", type=float, default=0.5)
    args = parser.parse_args()
    requests = mix(args.requests, args.every_hostile)
    config = ExecutorConfig(isolation=args.isolation, timeout=args.timeout, memory_mb=256, max_stdout_bytes=10_000)
    statuses: collections.Counter[tuple[str, str]] = collections.Counter()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {args.requests} requests, "
          f"1 in {args.every_hostile} hostile ({len(HOSTILE)} kinds), timeout {args.timeout:g} s")  # fmt: skip
    with Executor(config) as executor:
        executor.run("def f():\n    return 1", "")
        print(f"sandbox: {executor.describe()}")
        first = vitals()
        print(f"{'done':>8} {'req/s':>7} {'rss MiB':>8} {'fds':>4} {'procs':>6} {'zombies':>8}")
        print(_row(0, None, first))
        started, done, report_every = time.perf_counter(), 0, max(args.requests // 10, args.batch)
        next_report = report_every
        for at in range(0, len(requests), args.batch):
            chunk = requests[at : at + args.batch]
            results = executor.run_batch([request for _, request in chunk])
            statuses.update((kind, result.status.value) for (kind, _), result in zip(chunk, results, strict=True))
            done += len(chunk)
            if done >= next_report or done == len(requests):
                next_report += report_every
                now = vitals()
                rate = done / (time.perf_counter() - started)
                print(_row(done, rate, now))
        elapsed = time.perf_counter() - started
    closed = time.perf_counter()
    after = vitals()
    while (after["zombies"] or after["processes"]) and time.perf_counter() - closed < 10:
        time.sleep(0.1)  # the last children of the killed workers, being reaped
        after = vitals()
    print(f"{time.perf_counter() - closed:.1f} s after close: rss {after['rss_kib'] / 1024:.1f} MiB, "
          f"{after['fds']} fds, {after['processes']} processes, {after['zombies']} zombies; "
          f"{done} requests in {elapsed:.0f} s ({done / elapsed:.0f}/s)")  # fmt: skip
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for (kind, status), count in statuses.items():
        by_kind[kind][status] += count
    print("\nstatuses by kind:")
    for kind in ["valid", *HOSTILE]:
        print(f"  {kind:<22} " + ", ".join(f"{status} {count}" for status, count in by_kind[kind].most_common()))


if __name__ == "__main__":
    main()
