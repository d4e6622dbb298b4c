"""Executor throughput against a fresh interpreter per program, side by side in one run.

    python perf/executor_throughput.py [--programs 256] [--seeds PATH.jsonl]
    python perf/executor_throughput.py --against OTHER_CHECKOUT [--rounds 5]

Baseline: what a simple harness does, `python -I -S` started anew for every program, two at a
time, with no isolation at all. Ours: `azr.executor.Executor` with its default isolation (bwrap
when it works: namespaces, uid drop, rlimits, seccomp), one worker per core. Both run the same
programs on the same inputs; their outputs are compared. Also reported: the per-request round
trip of a trivial program through `Executor.run` (p50/p99), and worker start-up time.

With --against, it compares two versions of azr instead: this checkout's and another's (e.g. a
`git worktree` of the previous commit), each in its own process, in alternating rounds on the same
machine: programs run per second, proposals validated per second (`Validator.validate`: both
determinism runs, with whatever each version does in them), and the trivial round trip. Printed:
each version's median, the median and range of the change within a round (the paired comparison),
and every round's figures.

Programs: 5-20 line functions made by a seeded generator (loops, conditionals, comprehensions,
helpers over ints, strings and lists), and, with --seeds, the programs of a seed file in the AZR
authors' format (e.g. ../shared/data/azr-seeds/7b_coder_seed_io.jsonl).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from azr.executor import ExecRequest, Executor, ExecutorConfig, canonical, parse_value

# Runs one program from stdin; the harness a project writes when it doesn't have a sandbox.
BASELINE_RUNNER = """
import ast, json, sys
request = json.load(sys.stdin)
namespace = {}
exec(request["program"], namespace)
call = ast.parse("f(" + request["input"] + ")", mode="eval").body
args = [ast.literal_eval(a) for a in call.args]
kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
print(repr(namespace["f"](*args, **kwargs)))
"""

STATEMENTS = [
    ["acc += sum(x for x in xs if x % {k} == {r})"],
    ["for i, x in enumerate(xs):", "    if x > acc:", "        acc += x * i", "    else:", "        acc -= {k}"],
    ["xs = sorted(xs, reverse={b})"],
    ["xs = [x * {k} - i for i, x in enumerate(xs)]"],
    ["words = s.split('{c}')", "acc += len(words) * {k}"],
    ["s = s.replace('{c}', '{d}')[::-1]"],
    [
        "counts = {{}}",
        "for ch in s:",
        "    counts[ch] = counts.get(ch, 0) + 1",
        "acc += max(counts.values(), default=0)",
    ],
    ["if acc % 2 == 0:", "    xs.append(acc // {k})", "else:", "    xs.insert(0, -acc)"],
    ["while n > {k}:", "    n = n // 2 if n % 2 == 0 else n - 1", "    acc += 1"],
    ["pairs = [(x, y) for x in xs[:4] for y in xs[-3:] if x < y]", "acc += len(pairs)"],
    ["acc = helper(acc, {k})"],
    ["s = ''.join(sorted(set(s)))"],
    ["total = 0", "for x in xs:", "    total = (total * {k} + x) % 1000003", "acc ^= total"],
]


def generated_programs(count: int, seed: int = 0) -> list[ExecRequest]:
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        lines = [
            "def helper(a, b):",
            f"    return (a * {rng.randint(2, 9)} + b) % 997",
            "",
            "def f(xs, s, n):",
            "    acc = 0",
        ]
        while len(lines) < rng.randint(10, 24):
            template = rng.choice(STATEMENTS)
            fill = {
                "k": rng.randint(2, 7),
                "r": rng.randint(0, 1),
                "b": rng.choice([True, False]),
                "c": rng.choice("abc"),
                "d": rng.choice("xyz"),
            }
            lines += ["    " + line.format(**fill) for line in template]
        lines.append("    return acc, xs[:5], s")
        xs = [rng.randint(-20, 50) for _ in range(rng.randint(3, 12))]
        text = "".join(rng.choice("abcab ") for _ in range(rng.randint(4, 30)))
        requests.append(ExecRequest("\n".join(lines), f"{xs!r}, {text!r}, {rng.randint(1, 10**6)}"))
    return requests


def seed_programs(path: Path, count: int) -> list[ExecRequest]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [ExecRequest(row["snippet"], row["input"]) for row in rows[:count]]


def baseline(requests: list[ExecRequest]) -> tuple[float, list[str | None]]:
    def one(request: ExecRequest) -> str | None:
        try:
            completed = subprocess.run(
                [sys.executable, "-I", "-S", "-c", BASELINE_RUNNER],
                input=json.dumps({"program": request.program, "input": request.input}),
                capture_output=True,
                text=True,
                timeout=10,
            )
        except subprocess.TimeoutExpired:
            return None
        return completed.stdout.strip() if completed.returncode == 0 else None

    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        outputs = list(pool.map(one, requests))
    return time.perf_counter() - started, outputs


def as_canonical(text: str | None) -> str | None:
    try:
        return canonical(parse_value(text)) if text is not None else None
    except ValueError:
        return None


def measure(name: str, requests: list[ExecRequest], isolation: str) -> dict:
    base_seconds, base_outputs = baseline(requests)
    with Executor(ExecutorConfig(isolation=isolation)) as executor:
        started = time.perf_counter()
        executor.run_batch(requests[:1])  # starts the workers
        startup = time.perf_counter() - started
        started = time.perf_counter()
        results = executor.run_batch(requests)
        ours = time.perf_counter() - started
        described = executor.describe()
    agree = sum((r.output if r.ok else None) == as_canonical(b) for r, b in zip(results, base_outputs, strict=True))
    return {
        "set": name,
        "programs": len(requests),
        "isolation": described,
        "baseline_per_s": len(requests) / base_seconds,
        "ours_per_s": len(requests) / ours,
        "speedup": base_seconds / ours,
        "agree": agree,
        "ok": sum(r.ok for r in results),
        "startup_s": startup,
    }


def round_trips(isolation: str, count: int = 300) -> dict:
    with Executor(ExecutorConfig(isolation=isolation)) as executor:
        executor.run("def f(x):\n    return x", "1")
        latencies, inside = [], []
        for i in range(count):
            started = time.perf_counter()
            result = executor.run("def f(x):\n    return x", str(i))
            latencies.append(time.perf_counter() - started)
            inside.append(result.seconds)
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "p50_ms": 1000 * quantiles[49],
        "p99_ms": 1000 * quantiles[98],
        "child_p50_ms": 1000 * statistics.median(inside),
    }


def one_version(programs: int, isolation: str) -> dict:
    """This process's azr: programs and validations per second, and the trivial round trip."""
    from azr.tasks import TaskType, TripletProposal
    from azr.tasks.validate import Validator

    requests = generated_programs(programs)
    proposals = [TripletProposal(TaskType.DEDUCTION, r.program, r.input) for r in requests]
    with Executor(ExecutorConfig(isolation=isolation)) as executor:
        validator = Validator(executor)
        validator.validate(proposals[:4])  # the determinism check's worker groups started
        executor.run_batch(requests[:4])  # and the plain one (the same as validation's first, before)
        started = time.perf_counter()
        results = executor.run_batch(requests)
        run_s = time.perf_counter() - started
        started = time.perf_counter()
        validations = validator.validate(proposals)
        validate_s = time.perf_counter() - started
    return {
        "azr": os.path.dirname(os.path.dirname(os.path.abspath(sys.modules["azr"].__file__))),
        "run_per_s": len(requests) / run_s,
        "ok": sum(r.ok for r in results),
        "validate_per_s": len(proposals) / validate_s,
        "valid": sum(v.valid for v in validations),
        **round_trips(isolation, 200),
    }


def compare(other: Path, rounds: int, programs: int, isolation: str) -> None:
    here = Path(__file__).resolve().parents[1]
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {programs} programs, {rounds} rounds")
    seen: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(rounds):
        for label, tree in (("before", other.resolve()), ("after", here)):
            done = subprocess.run(
                [sys.executable, __file__, "--one-version", "--programs", str(programs), "--isolation", isolation],
                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=str(tree), check=True,
            )  # fmt: skip
            row = json.loads(done.stdout.strip().splitlines()[-1])
            assert row["azr"] == str(tree), f"imported azr from {row['azr']}, not {tree}"
            seen[label].append(row)
    measured = (("run_per_s", "programs/s"), ("validate_per_s", "validations/s"), ("p50_ms", "round trip p50 ms"))
    for key, what in measured:
        before = statistics.median(r[key] for r in seen["before"])
        after = statistics.median(r[key] for r in seen["after"])
        pairs = list(zip(seen["before"], seen["after"], strict=True))
        paired = statistics.median(a[key] / b[key] - 1 for b, a in pairs)
        spread = [a[key] / b[key] - 1 for b, a in pairs]
        print(
            f"{what:>20}: before {before:7.1f}  after {after:7.1f};  change per round: median {paired:+.1%}, "
            f"from {min(spread):+.1%} to {max(spread):+.1%}"
        )
        print(f"{'':>20}  rounds " + " / ".join(f"{b[key]:.1f}->{a[key]:.1f}" for b, a in pairs))
    print(f"{'outputs':>20}: ok {seen['before'][0]['ok']} -> {seen['after'][0]['ok']}, "
          f"valid {seen['before'][0]['valid']} -> {seen['after'][0]['valid']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=256)
    parser.add_argument("--seeds", type=Path, help="a seed file in the AZR authors' JSONL format")
    parser.add_argument("--isolation", default="auto", choices=["auto", "bwrap", "none"])
    parser.add_argument("--against", type=Path, metavar="CHECKOUT", help="compare with another checkout's azr")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--one-version", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_version:
        print(json.dumps(one_version(args.programs, args.isolation)))
        return
    if args.against:
        compare(args.against, args.rounds, args.programs, args.isolation)
        return
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    sets = [("generated 5-20 line functions", generated_programs(args.programs))]
    if args.seeds:
        sets.append((f"AZR seeds ({args.seeds.name})", seed_programs(args.seeds, args.programs)))
    for name, requests in sets:
        row = measure(name, requests, args.isolation)
        print(f"\n{row['set']}: {row['programs']} programs")
        print(f"  ours:     {row['ours_per_s']:7.1f} programs/s  ({row['isolation']})")
        print(f"  baseline: {row['baseline_per_s']:7.1f} programs/s  (fresh python -I -S per program, 2 at a time)")
        print(
            f"  speedup:  {row['speedup']:7.2f}x;  outputs agree on {row['agree']}/{row['programs']};"
            f"  ok {row['ok']};  worker start-up {row['startup_s']:.2f} s"
        )
    trips = round_trips(args.isolation)
    print(
        f"\nper-request round trip of a trivial program (Executor.run, one at a time): "
        f"p50 {trips['p50_ms']:.2f} ms, p99 {trips['p99_ms']:.2f} ms "
        f"(of which the child itself: p50 {trips['child_p50_ms']:.2f} ms)"
    )


if __name__ == "__main__":
    main()
