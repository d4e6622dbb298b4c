"""One step of Absolute Zero self-play: the file to read first (AZR paper, Algorithm 1).

    1. PROPOSE    B tasks per type, each proposer shown what its family draws from the buffers:
                  K reference triplets (deduction, abduction), one program (induction), K
                  earlier problems (math)                                          (propose.py)
    2. VALIDATE   the proposals that parse, pass the family's checks and the filter, run, return
                  plain data and are deterministic become tasks, stamped with the step
                                                                       (azr/tasks/validate.py)
    3. LEARNABILITY  N_mc solver rollouts at temperature 1 on each new task: solve rate s,
                  proposer reward 1 - s if 0 < s < 1 else 0 (Eq. 4)              (solve.py, reward.py)
    4. SOLVE      B tasks per type from the buffers, newest first, one answer each, judged by
                  its family: solver reward 1 or 0 (Eq. 5)          (solve.py, azr/tasks/verify.py)
    5. ADVANTAGES rewards shaped for format (Eq. 6), then TRR++: one baseline per (task type,
                  role), (r - mean) / std (Eq. 8)                                (advantages.py)
    6. UPDATE     one policy-gradient update on the step's trajectories, PPO clipped surrogate with
                  a token mean; with one mini-batch and one epoch (the paper) it is REINFORCE
                                                                                (update.py, loss.py)

Deviations from the paper and the authors' code, and where each one lives:
- Determinism is checked by two runs in separate processes with different PYTHONHASHSEED (the
  authors ran twice in one process); oversized outputs are rejected, not truncated; programs may
  have helpers and classes (azr/tasks/validate.py).
- Answers are parsed as literals and compared outside the sandbox, never spliced into code and
  `eval`'d (azr/tasks/verify.py).
- Task types beyond the paper's three, off unless configured: `math`, word problems grounded by a
  program and judged by math-verify (azr/tasks/math.py).
- Options beyond the paper, off unless configured: `selfplay.reuse_rollouts` trains the solver on
  the N_mc rollouts of stage 3 too (the paper discards them, ~80% of the tokens it generates);
  `selfplay.partial_credit` rewards an induction answer with the fraction of hidden pairs it gets;
  `selfplay.baseline=prompt` uses a per-prompt (GRPO-style) baseline for them, and keeps only
  the rollouts of tasks solved sometimes (0 < s < 1: the others have advantage 0);
  `selfplay.advantage_stats=token` weighs responses by length (as the authors' code does);
  `optim.scratchpad_weight` weighs the scratchpad of a wrong answer's solver less than its answer.
- A buffer that is still empty (a model that cannot yet write a valid task of that type) skips
  that type's solver batch for the step instead of stopping the run.
- No completion can end the run: each stage handles its samples one at a time under a guard
  (azr.tasks.guard), so a bug of ours that one sample hits rejects that sample as `internal_error`
  (rewarded as any rejected proposal or wrong answer) and the step goes on; every such sample is
  written to samples.jsonl with its stage and exception, counted in `errors/internal`, and logged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from azr.config import Config
from azr.engine.distributed import World
from azr.engine.generation import Generator, Sampling
from azr.prompts import Template
from azr.selfplay.advantages import group_advantages
from azr.selfplay.propose import Proposed, plan, write
from azr.selfplay.reward import accuracy, learnability, shaped, solve_rate
from azr.selfplay.solve import Solved, solve
from azr.selfplay.update import Trajectory, Updater
from azr.tasks import FormatError, InductionTask, InternalError, Role, Stage, Task, Validation
from azr.tasks.guard import guarded
from azr.tasks.programs import form_key, normalized
from azr.tasks.registry import family
from azr.tasks.store import TaskStore
from azr.tasks.validate import Validator, rejection_counts
from azr.tasks.verify import Verifier

log = logging.getLogger("azr.selfplay.step")


@dataclass
class SelfPlay:
    """What a step needs: the model behind `generator` and `updater`, the sandbox behind
    `validator` and `verifier`, the buffers in `store`."""

    config: Config
    generator: Generator
    template: Template
    store: TaskStore
    validator: Validator
    verifier: Verifier
    updater: Updater | None
    """None: no update (evaluation, or tests of the other stages)."""
    chat: Any = None
    """A tokenizer with a chat template, for instruct models (model.chat_template)."""
    answer_markers: dict[str, int] = field(default_factory=dict)
    """Per task type, the token that ends a solver's scratchpad (Template.answer_marker), where the
    model has it as one token: what optim.scratchpad_weight weighs is the completion before it."""
    world: World = field(default_factory=World)
    """The ranks sharing the step (azr.engine.distributed): rank 0 holds `store` (None elsewhere)
    and makes every draw; each rank generates, validates and judges its share."""
    timer: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def task_types(self) -> list[str]:
        return list(self.config.selfplay.task_types)

    def sampling(self) -> Sampling:
        g = self.config.generation
        return Sampling(g.temperature, g.top_p, g.max_new_tokens, self.template.stop, g.sampler_logprobs)


@dataclass(frozen=True)
class StepResult:
    metrics: dict[str, float]
    samples: list[dict[str, Any]]
    """A few proposals and answers, and every sample that hit an internal error, for samples.jsonl."""
    trained: list[Trajectory]
    """The sequences of the update, with their rewards and advantages."""
    internal_errors: list[InternalErrorSample]
    """The samples whose handling raised: bugs of ours."""


@dataclass(frozen=True)
class InternalErrorSample:
    """A proposal or an answer whose handling raised (azr.tasks.guard): where, what, and the text that did it."""

    role: Role
    task_type: str
    prompt: str
    completion: str
    error: InternalError

    def row(self, step: int) -> dict[str, Any]:
        """Its line in samples.jsonl."""
        return {"step": step, "role": self.role.value, "task_type": self.task_type,
                "prompt": self.prompt[-2000:], "completion": self.completion, "outcome": "internal_error",
                "stage": self.error.stage.value, "detail": self.error.detail}  # fmt: skip


def selfplay_step(play: SelfPlay, step: int) -> StepResult:
    """Run one step; the buffers gain this step's valid tasks and the policy is updated."""
    cfg = play.config.selfplay
    seed = stage_seed(play.config.train.seed, "step", step, "draws")  # every draw follows from (seed, step)
    rng = random.Random(seed)
    world = play.world
    seeds = {stage: rank_seed(stage_seed(play.config.train.seed, "step", step, stage), world.rank)
             for stage in ("propose", "mc", "solve")}  # fmt: skip
    play.timer.clear()
    started = time.perf_counter()

    # 1. PROPOSE (rank 0 draws the references; every rank writes its share of the proposals)
    with _timed(play, "propose"):
        jobs = world.broadcast(
            plan(play.template, play.store, play.task_types, cfg.batch_size, cfg.references, rng, play.chat)
            if world.is_main else None
        )  # fmt: skip
        proposed = world.across(
            jobs, lambda mine: write(_TimedGenerator(play), play.template, mine, play.sampling(), seeds["propose"])
        )

    # 2. VALIDATE: valid proposals become tasks in the buffers (rank 0's), stamped with this step
    with _timed(play, "validate"), _timed(play, "executor"):
        validations = world.across(
            proposed, lambda mine: play.validator.validate([p.proposal for p in mine], step=step)
        )
    stored = world.broadcast(
        play.store.try_add([v.task for v in validations if v.task is not None]) if world.is_main else None
    )
    validations = _unstored_rejected(validations, stored)

    # 3. LEARNABILITY: N_mc rollouts on each new task (all on one rank) -> solve rate -> proposer reward (Eq. 4)
    new_tasks = [v.task for v in validations if v.task is not None]
    with _timed(play, "learnability"):
        rollouts = world.across(new_tasks, lambda mine: solve(
            _TimedGenerator(play), play.template, _TimedVerifier(play), mine, cfg.n_mc, play.sampling(),
            seeds["mc"], play.chat,
        ))  # fmt: skip
    rates = iter([solve_rate([r.verdict.correct for r in task_rollouts]) for task_rollouts in rollouts])
    role_reward = learnability if cfg.proposer_reward == "learnability" else (lambda _: 1.0)  # ablation: any valid
    proposer_rewards = [
        shaped(role_reward(next(rates)) if v.valid else 0.0, v.valid, cfg.reward_shaping) for v in validations
    ]

    # 4. SOLVE: B tasks per type, the newest first (drawn by rank 0) -> solver reward (Eq. 5)
    batch = world.broadcast(_solver_batch(play, rng, step) if world.is_main else None)
    with _timed(play, "solve"):
        solved = world.across(batch, lambda mine: [r[0] for r in solve(
            _TimedGenerator(play), play.template, _TimedVerifier(play), mine, 1, play.sampling(),
            seeds["solve"], play.chat,
        )])  # fmt: skip

    # 5. ADVANTAGES: format shaping (Eq. 6), then TRR++ (Eq. 8), on every rank's samples at once
    trajectories = [
        _trajectory(Role.PROPOSE, p.task_type, p.completion, reward, cfg.baseline, p.prompt, None)
        for p, reward in zip(proposed, proposer_rewards, strict=True)
    ]
    solver_rollouts = solved + ([r for task in rollouts for r in task] if cfg.reuse_rollouts else [])
    trajectories += [
        _trajectory(Role.SOLVE, r.task.task_type, r.completion, _solver_reward(r, cfg.reward_shaping,
                    cfg.partial_credit), cfg.baseline, r.prompt, play.answer_markers.get(r.task.task_type))
        for r in solver_rollouts
    ]  # fmt: skip
    advantages = group_advantages(
        [t.reward for t in trajectories],
        [t.group for t in trajectories],
        [len(t.ids) for t in trajectories],
        cfg.advantage_stats,
    )
    trajectories = [_with_advantage(t, a) for t, a in zip(trajectories, advantages, strict=True)]
    if cfg.reuse_rollouts and cfg.baseline == "prompt":
        # A prompt whose answers all earned the same reward (a task solved always or never) has
        # advantage 0 throughout: in a token mean its rollouts would only dilute every other
        # sequence's gradient, so only tasks solved sometimes (0 < s < 1) keep theirs (DAPO's
        # dynamic sampling, arXiv:2503.14476, section 3.2). The batch's own answers always stay.
        rewards = defaultdict(set)
        for t in trajectories:
            rewards[t.group].add(t.reward)
        reused = len(trajectories) - sum(len(task) for task in rollouts)
        trajectories = trajectories[:reused] + [t for t in trajectories[reused:] if len(rewards[t.group]) > 1]

    # 6. UPDATE (each rank on its share; the updater makes it one update)
    update = {}
    if play.updater is not None:
        torch.manual_seed(seed)  # whatever in the update draws (LoRA dropout) follows from the step too
        with _timed(play, "update"):
            update = play.updater.update(world.share(trajectories), seed)

    play.timer["step"] = time.perf_counter() - started
    # the valid programs' normal forms, for distinct_programs: metrics read model text too
    forms = [guarded(Stage.METRICS, normalized, v.task.program) if v.task else None for v in validations]
    errors = _internal_errors(proposed, validations, forms, [*solved, *(r for task in rollouts for r in task)])
    if errors:
        log.error("%d samples hit internal errors (bug in azr): see samples.jsonl", len(errors))
    play.timer["generated_tokens"] = world.sum(play.timer.get("generated_tokens", 0.0))  # every rank's
    if not world.is_main:  # metrics read the store, and rank 0 logs them
        return StepResult({}, [], trajectories, errors)
    metrics = _metrics(play, proposed, validations, forms, stored, rollouts, solved, trajectories, update)
    metrics["errors/internal"] = len(errors)
    examples = _examples(play, step, proposed, validations, solved) + [e.row(step) for e in errors]
    return StepResult(metrics, examples, trajectories, errors)


# -- the pieces ------------------------------------------------------------------------------------


def _solver_batch(play: SelfPlay, rng: random.Random, step: int) -> list[Task]:
    batch = []
    for task_type in play.task_types:
        if play.store.count(task_type):
            batch += play.store.solver_batch(task_type, play.config.selfplay.batch_size, rng, since_step=step)
    return batch


def stage_seed(seed: int, *where: object) -> int:
    """A seed for one stage of one step (or seeding round), independent of every other's."""
    digest = hashlib.sha256(":".join(map(str, (seed, *where))).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def rank_seed(seed: int, rank: int) -> int:
    """The sampling seed of one rank's share of a stage: rank 0 keeps the stage's own (one process
    samples as ever), the others get their own (one seed on every rank would draw the same noise
    for every rank's prompts)."""
    return seed if rank == 0 else stage_seed(seed, "rank", rank)


def _unstored_rejected(validations: list[Validation], stored: list[bool | InternalError]) -> list[Validation]:
    """The validations, with a task the store could not take (a bug of ours) rejected."""
    outcomes = iter(stored)
    kept = []
    for v in validations:
        outcome = next(outcomes) if v.task is not None else None
        kept.append(outcome.rejection() if isinstance(outcome, InternalError) else v)
    return kept


def _internal_errors(
    proposed: list[Proposed],
    validations: list[Validation],
    forms: list[str | InternalError | None],
    answers: list[Solved],
) -> list[InternalErrorSample]:
    """The samples whose handling raised: proposals rejected as internal_error or whose program's
    normal form raised (`forms`), and answers judged internal_error."""
    errors = []
    for p, v, form in zip(proposed, validations, forms, strict=True):
        error = v.internal_error or (form if isinstance(form, InternalError) else None)
        if error is not None:
            errors.append(InternalErrorSample(Role.PROPOSE, p.task_type, p.prompt, p.completion.text, error))
    for r in answers:
        error = r.verdict.internal_error
        if error is not None:
            errors.append(InternalErrorSample(Role.SOLVE, r.task.task_type, r.prompt, r.completion.text, error))
    return errors


def _solver_reward(rollout: Solved, shaping: str, partial_credit: bool) -> float:
    verdict = rollout.verdict
    score = verdict.passed if partial_credit and verdict.passed is not None else accuracy(verdict.correct)
    return shaped(score, not isinstance(rollout.answer, FormatError), shaping)


def _trajectory(
    role: Role, task_type: str, completion: Any, reward: float, baseline: str, prompt: str, answer_marker: int | None
) -> Trajectory:
    # TRR++: one baseline per (task type, role). GRPO-style (`prompt`): one per solver prompt, the
    # groups the reused rollouts form; proposer prompts never repeat, so proposers keep TRR++'s.
    per_prompt = baseline == "prompt" and role is Role.SOLVE
    group = (task_type, role.value, prompt) if per_prompt else (task_type, role.value)
    # A completion without the marker has no answer to tell its scratchpad from: all of it counts.
    scratchpad = completion.ids.index(answer_marker) if answer_marker in completion.ids else 0
    return Trajectory(role, task_type, completion.prompt_ids, completion.ids, reward, group,
                      sampler_logprobs=completion.logprobs, scratchpad=scratchpad)  # fmt: skip


def _with_advantage(trajectory: Trajectory, advantage: float) -> Trajectory:
    return dataclasses.replace(trajectory, advantage=advantage)


class _timed:
    def __init__(self, play: SelfPlay, key: str) -> None:
        self.play, self.key = play, key

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        self.play.timer[self.key] += time.perf_counter() - self.started


class _TimedGenerator:
    """The generator, counting its seconds and tokens for the step's metrics."""

    def __init__(self, play: SelfPlay) -> None:
        self.play = play

    def generate(self, prompts: Sequence[str], n: int, sampling: Sampling, seed: int) -> Any:
        with _timed(self.play, "generate"):
            result = self.play.generator.generate(prompts, n, sampling, seed)
        self.play.timer["generated_tokens"] += sum(len(c.ids) for group in result for c in group)
        return result


class _TimedVerifier:
    def __init__(self, play: SelfPlay) -> None:
        self.play = play

    def verify(self, items: Any) -> Any:
        with _timed(self.play, "executor"):
            return self.play.verifier.verify(items)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _metrics(play, proposed, validations, forms, stored, rollouts, solved, trajectories, update) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for task_type in play.task_types:
        name = task_type
        mine = [
            (p, v, form) for p, v, form in zip(proposed, validations, forms, strict=True) if p.task_type == task_type
        ]
        if mine:
            metrics[f"propose/{name}/valid_rate"] = _mean([v.valid for _, v, _ in mine])
            metrics[f"propose/{name}/format_error_rate"] = _mean(
                [isinstance(p.proposal, FormatError) for p, _, _ in mine]
            )
            for reason, count in rejection_counts([v for _, v, _ in mine]).items():
                if reason != "valid":
                    metrics[f"propose/{name}/rejected/{reason}"] = count / len(mine)
            valid = [(v.task, form) for _, v, form in mine if v.task is not None]
            if valid:
                metrics[f"propose/{name}/program_chars"] = _mean([len(task.program) for task, _ in valid])
                # a program whose normal form raised (an internal error, counted) counts as its own text
                forms_or_texts = {form if isinstance(form, str) else task.program for task, form in valid}
                metrics[f"propose/{name}/distinct_programs"] = len(forms_or_texts)
                known = play.validator.config.known_programs
                if known and family(task_type).writes_program:
                    keys = [form_key(form) for _, form in valid if isinstance(form, str)]
                    # of the valid ones: with selfplay.reject_copies they are rejected/copy instead
                    metrics[f"propose/{name}/copies"] = _mean([key in known for key in keys])
        task_rollouts = [r for r in rollouts if r and r[0].task.task_type == task_type]
        if task_rollouts:
            rates = [solve_rate([x.verdict.correct for x in r]) for r in task_rollouts]
            metrics[f"propose/{name}/solve_rate"] = _mean(rates)
            metrics[f"propose/{name}/learnability"] = _mean([learnability(s) for s in rates])
        answers = [r for r in solved if r.task.task_type == task_type]
        if answers:
            metrics[f"solve/{name}/accuracy"] = _mean([r.verdict.correct for r in answers])
            metrics[f"solve/{name}/format_error_rate"] = _mean([isinstance(r.answer, FormatError) for r in answers])
            metrics[f"solve/{name}/internal_error"] = _mean([r.verdict.internal_error is not None for r in answers])
        for role in Role:
            rewards = [t.reward for t in trajectories if t.role is role and t.task_type == task_type]
            if rewards:
                metrics[f"{role.value}/{name}/reward"] = _mean(rewards)
        metrics[f"store/{name}/size"] = play.store.count(task_type)
    metrics["store/added"] = sum(outcome is True for outcome in stored)
    for key, value in update.items():
        metrics[f"update/{key}"] = value
    timer = play.timer
    for key in ("step", "propose", "validate", "learnability", "solve", "update", "generate", "executor"):
        metrics[f"time/{key}"] = timer.get(key, 0.0)
    metrics["tokens/generated"] = timer.get("generated_tokens", 0.0)
    metrics["tokens/per_second"] = timer.get("generated_tokens", 0.0) / max(timer.get("generate", 0.0), 1e-9)
    return metrics


def _examples(play, step, proposed, validations, solved) -> list[dict[str, Any]]:
    keep = play.config.train.log_samples
    examples: list[dict[str, Any]] = []
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for p, v in zip(proposed, validations, strict=True):
        key = ("propose", p.task_type)
        if counts[key] < keep and v.internal_error is None:  # those have rows of their own
            counts[key] += 1
            outcome = "valid" if v.valid else v.rejection.value  # type: ignore[union-attr]
            examples.append({"step": step, "role": "propose", "task_type": p.task_type,
                             "prompt": p.prompt[-2000:], "completion": p.completion.text, "outcome": outcome,
                             "detail": v.detail})  # fmt: skip
    for r in solved:
        key = ("solve", r.task.task_type)
        if counts[key] < keep and r.verdict.internal_error is None:
            counts[key] += 1
            examples.append({"step": step, "role": "solve", "task_type": r.task.task_type,
                             "prompt": r.prompt[-2000:], "completion": r.completion.text,
                             "outcome": r.verdict.reason, "detail": r.verdict.detail,
                             "induction": isinstance(r.task, InductionTask)})  # fmt: skip
    return examples
