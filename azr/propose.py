"""Stage 1: propose tasks (AZR paper section 3.3.2; AZR.md section 2).

For deduction and abduction, each proposer prompt shows K reference triplets drawn without
replacement from that type's buffer, and asks for a new, different, harder one. For induction, it
shows one program drawn from the deduction and abduction buffers and asks for N inputs and a
message. Completions are parsed by the template; a malformed one becomes a FormatError, to be
penalised, never an exception (and a parser that raises anyway, an InternalError: azr.tasks.guard).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from azr.generation import Completion, Generator, Sampling
from azr.tasks.guard import guarded
from azr.prompts import Template
from azr.tasks.store import TaskStore
from azr.tasks import FormatError, InternalError, Proposal, Stage, TaskType

TRIPLET_TYPES = (TaskType.DEDUCTION, TaskType.ABDUCTION)


@dataclass(frozen=True)
class Proposed:
    """One proposer rollout: its prompt, its completion, and what the template read in it."""

    task_type: TaskType
    prompt: str
    completion: Completion
    proposal: Proposal | FormatError | InternalError


def propose(
    generator: Generator,
    template: Template,
    store: TaskStore,
    task_types: Sequence[TaskType],
    batch_size: int,
    references: int,
    sampling: Sampling,
    rng: random.Random,
    seed: int,
    chat: Any = None,
) -> list[Proposed]:
    """`batch_size` proposals of each type (induction only once a triplet buffer has a program)."""
    jobs: list[tuple[TaskType, str, str | None]] = []
    for task_type in task_types:
        for _ in range(batch_size):
            if task_type is TaskType.INDUCTION:
                sources = [t for t in TRIPLET_TYPES if store.count(t)]
                if not sources:
                    continue
                shown = store.references(rng.choice(sources), 1, rng)
                program = shown[0].program
            else:
                shown, program = store.references(task_type, references, rng), None
            jobs.append((task_type, template.render(template.propose_prompt(task_type, shown), chat), program))
    completions = generator.generate([prompt for _, prompt, _ in jobs], 1, sampling, seed)
    proposed = []
    for (task_type, prompt, program), [done] in zip(jobs, completions, strict=True):
        proposal = guarded(Stage.PARSE_PROPOSAL, template.parse_proposal, task_type, done.text, program=program)
        proposed.append(Proposed(task_type, prompt, done, proposal))
    return proposed
