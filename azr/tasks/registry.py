"""The task families, by name: one line each. A family's module is imported when first asked for,
so reading this (as the config does, to check `selfplay.task_types`) imports no implementation."""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azr.tasks.family import TaskFamily

REGISTRY: dict[str, str] = {
    "deduction": "azr.tasks.deduction",
    "abduction": "azr.tasks.abduction",
    "induction": "azr.tasks.induction",
    "math": "azr.tasks.math",
}
"""Family name -> the module whose `FAMILY` it is."""

PAPER = ("deduction", "abduction", "induction")
"""The paper's three families: the default task types."""


@cache
def family(name: str) -> TaskFamily:
    """The family called `name` (a TaskType member works too)."""
    key = getattr(name, "value", name)
    if key not in REGISTRY:
        raise ValueError(f"unknown task type {key!r}: choose from {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[key]).FAMILY
