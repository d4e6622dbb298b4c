"""Seeding the buffers before step 1 (AZR.md section 6): seed files, or the identity triplet and
the model's own proposals."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from azr.selfplay.propose import plan, write
from azr.selfplay.step import SelfPlay, rank_seed, stage_seed
from azr.tasks.seeds import identity_proposals, read_rows
from azr.tasks.validate import rejection_counts
from azr.userfiles import read_text, split_lines

log = logging.getLogger("azr.run.seeding")


def seed_buffers(play: SelfPlay, say: Any, stop: Any = None) -> None:
    """Before step 1 (AZR.md section 6): seed files when configured; else the identity triplet,
    then the model's own proposals until each buffer holds seed_factor x B tasks. Each round is
    committed with its number, so a run stopped while seeding goes on where it was, with the same
    draws; a finished seeding is not repeated. With several ranks, rank 0 (the store's) plans each
    round and stores its tasks; every rank writes and validates its share of the proposals."""
    s = play.config.selfplay
    world, validator, store = play.world, play.validator, play.store
    if world.broadcast(store.meta("seeding") == "done" if world.is_main else None):
        return
    if s.seed_files:
        if world.is_main:  # a few hundred sandboxed runs: rank 0 alone
            for entry in s.seed_files:
                task_type, path = entry.split(":", 1)
                proposals = list(read_rows(split_lines(read_text(path, "seed file")), task_type))
                validations = validator.validate(proposals, step=0, source=f"seed:{Path(path).name}")
                added = store.add([v.task for v in validations if v.task is not None])
                say(f"seeded {sum(added)} {task_type} tasks from {path} ({rejection_counts(validations)})")
            store.add([], meta={"seeding": "done"})
        return
    if world.is_main:
        store.add([v.task for v in validator.validate(identity_proposals(), step=0, source="identity") if v.task])
    target = s.seed_factor * s.batch_size
    first = world.broadcast(int(store.meta("seeding_rounds") or 0) if world.is_main else None)
    stopped = False
    for round_ in range(first, s.max_seed_rounds):
        short = world.broadcast([t for t in play.task_types if store.count(t) < target] if world.is_main else None)
        stopped = bool(world.max(int(stop is not None and stop.requested is not None)))
        if not short or stopped:
            break
        rng = random.Random(stage_seed(play.config.train.seed, "seeding", round_))
        jobs = world.broadcast(
            plan(play.template, store, short, s.batch_size, s.references, rng, play.chat) if world.is_main else None
        )
        seed = rank_seed(stage_seed(play.config.train.seed, "seeding", round_, "propose"), world.rank)
        proposed = world.across(
            jobs, lambda mine, seed=seed: write(play.generator, play.template, mine, play.sampling(), seed)
        )
        validations = world.across(
            proposed, lambda mine: validator.validate([p.proposal for p in mine], step=0, source="seeding")
        )
        if world.is_main:
            store.add([v.task for v in validations if v.task is not None], meta={"seeding_rounds": str(round_ + 1)})
    if not world.is_main:
        return
    counts = {t: store.count(t) for t in play.task_types}
    if not stopped:
        store.add([], meta={"seeding": "done"})
    if any(n < target for n in counts.values()):
        log.warning(
            "seeding stopped after %d rounds short of %d tasks per buffer: %s. Training goes on; a buffer "
            "that is empty skips its solver batch until the model proposes valid tasks of that type.",
            s.max_seed_rounds, target, counts,
        )  # fmt: skip
    say(f"buffers: {counts}")
