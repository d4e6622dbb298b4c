"""The embedded base model: a tiny code model trained here from synthetic programs, shipped in the
package, so that `azr train` learns for real on a laptop CPU (see MODEL_CARD.md beside the weights)."""

from __future__ import annotations

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"
HELDOUT = "heldout.jsonl"
PROGRAM_KEYS = "programs.sha256"
"""The pretraining programs' keys, one per line, sorted (azr.tasks.programs.program_key): a run can
tell the proposals that copy the model's own pretraining programs without the programs themselves."""


def model_path() -> Path | None:
    """The shipped model's directory, if this install has it."""
    return MODEL_DIR if (MODEL_DIR / "config.json").exists() else None


def heldout_path() -> Path | None:
    """The held-out tasks shipped with the model: the project's own evaluation set."""
    path = MODEL_DIR / HELDOUT
    return path if path.exists() else None
