"""Validation during training: greedy pass@1 on fixed benchmarks (the held-out tasks by default;
CRUXEval and the math suite when configured in `eval.bench`)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from azr.config import Config, ConfigError
from azr.engine.generation import Sampling
from azr.executor import Executor
from azr.selfplay.step import SelfPlay
from azr.userfiles import UserFileError, read_text


def eval_benches(config: Config) -> list[tuple[str, Path | None]]:
    """eval.bench as (name, file) pairs, checked before the model loads."""
    import importlib.util

    from azr.base import heldout_path
    from azr.eval.benchmarks import SPECS, BenchmarkError, parse_benchmarks

    try:
        benches = parse_benchmarks(config.eval.bench or "heldout")
    except BenchmarkError as error:
        raise ConfigError(f"eval.bench: {error}") from None
    if sum(name in ("heldout", "file") for name, _ in benches) > 1:
        raise ConfigError("eval.bench: at most one of heldout and seed files (each logs as eval/<type>/pass@1)")
    for name, path in benches:
        if name != "file" and SPECS[name].kind not in ("reasoning", "math"):
            raise ConfigError(
                f"eval.bench: {name} is a code benchmark; training validates on heldout, cruxeval* and the math "
                "suite (math500, aime24...): score code after training with azr eval"
            )
        if path is not None and not path.exists():
            raise ConfigError(f"eval.bench: no file {path}")
        if path is not None and path.suffix != ".gz":  # read now, not after minutes of model loading
            try:
                read_text(path, "benchmark file")
            except UserFileError as error:
                raise ConfigError(f"eval.bench: {error}") from None
        if name == "heldout" and path is None and heldout_path() is None:
            raise ConfigError("eval.bench: the embedded held-out set is not installed; give heldout=FILE")
        if name not in ("heldout", "file") and path is None and importlib.util.find_spec("datasets") is None:
            raise ConfigError(f"eval.bench: give {name}=FILE (or pip install datasets to fetch it from the hub)")
        if name != "file" and SPECS[name].kind == "math":
            from azr.eval.benchmarks.maths import scorer_paths

            try:
                scorer_paths()
            except BenchmarkError as error:
                raise ConfigError(f"eval.bench: {error}") from None
    return benches


class Evaluator:
    """Greedy pass@1 on fixed benchmarks (the held-out tasks by default; CRUXEval and the math suite
    when configured), loaded and checked once. The held-out set and seed files log as
    eval/<type>/pass@1, a named benchmark as eval/<name>/<type>/pass@1 (a math one as
    eval/<name>/<name>/pass@1)."""

    def __init__(self, play: SelfPlay, executor: Executor, benches: list[tuple[str, Path | None]]) -> None:
        # Rank 0 loads and checks them (a benchmark drops the problems its sandbox cannot run, which
        # could differ between ranks) and sends every rank the same list.
        world = play.world
        self.benchmarks = world.broadcast(world.on_main(_load, play, executor, benches))
        self.play = play
        self.sampling = Sampling(0.0, 1.0, play.config.eval.max_new_tokens, play.template.stop)

    def __call__(self) -> dict[str, float]:
        """The metrics, on rank 0 (every rank generates its share of each benchmark; rank 0 judges)."""
        from azr.eval.harness import generate, judge

        started = time.perf_counter()
        metrics: dict[str, float] = {}
        play, world = self.play, self.play.world
        for prefix, benchmark in self.benchmarks:
            completions = world.across(benchmark.problems, lambda mine, benchmark=benchmark: generate(
                play.generator, play.template, dataclasses.replace(benchmark, problems=mine), 1, self.sampling, 0,
                play.chat,
            ))  # fmt: skip
            if not world.is_main:
                continue
            result = judge(benchmark, completions, play.template, play.verifier, [1])
            metrics.update({f"{prefix}{name}/pass@1": numbers["pass@1"] for name, numbers in result["results"].items()})
        metrics["time/eval"] = time.perf_counter() - started
        return metrics


def _load(play: SelfPlay, executor: Executor, benches: list[tuple[str, Path | None]]) -> list[tuple[str, Any]]:
    """(metric prefix, benchmark) for each of `benches`, with the problems of eval.task_types."""
    from azr.eval.benchmarks import BenchmarkError, load

    config = play.config.eval
    types = list(config.task_types)
    loaded = []
    for name, path in benches:
        try:
            benchmark = load(name, path, executor, types, config.limit, play.config.train.seed)
        except BenchmarkError as error:
            raise ConfigError(f"eval.bench: {error}") from None
        if benchmark.kind == "reasoning":
            benchmark.problems = [p for p in benchmark.problems if p.task.task_type in types]
        if not benchmark.problems:
            raise ConfigError(f"eval.bench: no task of eval.task_types in {name} ({benchmark.reasons})")
        prefix = "eval/" if name in ("heldout", "file") else f"eval/{name}/"
        loaded.append((prefix, benchmark))
    return loaded
