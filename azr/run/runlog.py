"""What a run writes as it goes: metrics.jsonl, samples.jsonl, TensorBoard, and W&B when asked.

Every line of metrics.jsonl is one step: `{"step": N, "time": ..., <flat metric names>}`. A line is
appended (and fsynced) once the step is done. On resume from a checkpoint at step s, lines of later
steps, which a crash lost the state of, are removed before the run goes on: every step appears
once. TensorBoard events past s are purged the same way.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from azr.disk import WriteRefused, write_atomically


def _truncate_jsonl(path: Path, after_step: int) -> list[int]:
    """Keep the lines whose step is <= after_step (rewritten atomically); drop a line a crash cut
    short, or any other that is not an object with an integer step (a hand edit, a bad disk).
    Returns the steps kept, in order."""
    if not path.exists():
        return []
    kept, steps = [], []
    for raw in path.read_bytes().split(b"\n"):
        try:
            line = raw.decode("utf-8")
            row = json.loads(line)
        except (ValueError, RecursionError):  # not UTF-8, not JSON, cut short
            continue
        step = row.get("step", 0) if isinstance(row, dict) else None
        if isinstance(step, int) and not isinstance(step, bool) and step <= after_step:
            kept.append(line)
            steps.append(step)
    write_atomically(path, "".join(line + "\n" for line in kept))
    return steps


class RunLog:
    def __init__(self, run_dir: Path, resume_step: int, tensorboard: bool, wandb_project: str, config: dict) -> None:
        self.metrics_path = run_dir / "metrics.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        # Without a checkpoint nothing is committed, not even the step-0 evaluation: start afresh.
        kept = resume_step if resume_step > 0 else -1
        logged = set(_truncate_jsonl(self.metrics_path, kept))
        _truncate_jsonl(self.samples_path, kept)
        lost = sorted(set(range(1, resume_step + 1)) - logged)
        if lost:
            logging.getLogger("azr").warning(
                "%s lacks the lines of steps %s (deleted or damaged): they are not in the run's record; "
                "the run goes on", self.metrics_path, _ranges(lost),
            )  # fmt: skip
        self.tensorboard = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            _quiet_tensorboard_thread()
            self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"), purge_step=kept + 1)
        self.wandb = None
        if wandb_project:
            try:
                import wandb
            except ImportError:
                logging.getLogger("azr").warning("train.wandb_project is set but wandb is not installed: skipping")
            else:
                id_file = run_dir / "wandb_id"  # one W&B run per run directory, across resumes
                run_id = id_file.read_text().strip() if id_file.exists() else wandb.util.generate_id()
                id_file.write_text(run_id)
                self.wandb = wandb.init(
                    project=wandb_project, dir=str(run_dir), config=config, id=run_id, resume="allow"
                )

    def step(self, step: int, metrics: dict[str, float], samples: list[dict[str, Any]]) -> None:
        """Append a step's lines; a WriteRefused when the disk refuses (a line it cut short is
        dropped on resume, with the rest of the uncommitted steps)."""
        clean = {k: (v if isinstance(v, (int, float)) and math.isfinite(v) else None) for k, v in metrics.items()}
        _append(self.metrics_path, [{"step": step, "time": time.time(), **clean}])
        _append(self.samples_path, samples)
        if self.tensorboard is not None:
            try:
                for key, value in clean.items():
                    if value is not None:
                        self.tensorboard.add_scalar(key, value, step)
                self.tensorboard.flush()
            except OSError as error:
                raise WriteRefused(f"cannot write {self.tensorboard.log_dir}: {error.strerror or error}") from None
        if self.wandb is not None:
            self.wandb.log(clean, step=step)

    def close(self) -> None:
        """Flush and close the writers; one that fails (a full disk) is reported, not raised, so
        that closing never hides the error that ended the run."""
        for name, closer in (("tensorboard", self.tensorboard and self.tensorboard.close),
                             ("wandb", self.wandb and self.wandb.finish)):  # fmt: skip
            if closer:
                try:
                    closer()
                except Exception as error:
                    logging.getLogger("azr").warning("closing %s failed: %s", name, error)


def _quiet_tensorboard_thread() -> None:
    """TensorBoard writes from a thread of its own, whose failure (a full disk) its next write or
    flush raises again here, as one WriteRefused: Python need not print the thread's traceback too."""
    previous = threading.excepthook
    if getattr(previous, "azr_quiet", False):
        return

    def hook(args: Any) -> None:
        if type(args.thread).__name__ != "_AsyncWriterThread":
            previous(args)

    hook.azr_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def _ranges(steps: list[int]) -> str:
    """1, 2, 3, 5 -> '1-3, 5'."""
    spans: list[list[int]] = []
    for step in steps:
        if spans and step == spans[-1][1] + 1:
            spans[-1][1] = step
        else:
            spans.append([step, step])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise WriteRefused(f"cannot write {path}: {error.strerror or error}") from None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The steps of a run's metrics.jsonl; a line a crash cut short is skipped."""
    from azr.report.summary import read_metrics

    path = run_dir / "metrics.jsonl"
    return read_metrics(path) if path.exists() else []
