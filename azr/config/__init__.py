"""The configuration of a run: typed dataclasses whose docstrings are the documentation.

Defaults are the `tiny-cpu` preset: self-play of the embedded model on a 2-core CPU in about 15
minutes (the preset file is empty on purpose; experiments/tiny-selfplay shows what they do). Presets in `azr/configs/`
override some of them (`paper-7b`: the paper's numbers; `gpu-1.5b-lora`: one GPU, LoRA); dotted
`key=value` overrides on the command line come last. OmegaConf (structured configs) does the
merging and type checking; `check` adds the cross-field rules, with errors that say what to change.

This package is the bottom layer: it imports no implementation. Where a key takes one of a few
values, the choices are Enums owned here, and the implementations read them from here. Reading
files and overrides, and `azr train --help-config`, are in `azr.config.files`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING, OmegaConf

from azr.tasks.registry import PAPER, REGISTRY

_ = MISSING


class TemplateName(str, Enum):
    """`selfplay.template` (azr.prompts)."""

    AZR = "azr"
    COMPACT = "compact"


class Shaping(str, Enum):
    """`selfplay.reward_shaping` (azr.selfplay.reward)."""

    PAPER = "paper"
    NONE = "none"


class AdvantageStats(str, Enum):
    """`selfplay.advantage_stats` (azr.selfplay.advantages)."""

    SAMPLE = "sample"
    TOKEN = "token"


class Backend(str, Enum):
    """`generation.backend` (azr.engine.generation)."""

    TRANSFORMERS = "transformers"
    TRANSFORMERS_CB = "transformers-cb"
    VLLM = "vllm"
    VLLM_SERVER = "vllm-server"


VLLM_BACKENDS = (Backend.VLLM.value, Backend.VLLM_SERVER.value)


class Isolation(str, Enum):
    """`executor.isolation` (azr.executor: the same three, which the executor checks itself)."""

    AUTO = "auto"
    BWRAP = "bwrap"
    NONE = "none"


def choices(kind: type[Enum]) -> tuple[str, ...]:
    return tuple(member.value for member in kind)


def is_device(name: str, auto: bool = True) -> bool:
    """A device name azr accepts: cpu, cuda, cuda:N, and `auto` where one may be guessed (the CLI's
    --device options and model.device share this one rule)."""
    return (auto and name == "auto") or re.fullmatch(r"cpu|cuda(:\d+)?", name) is not None


@dataclass
class LoraConfig:
    """Low-rank adapters through PEFT (`pip install 'azr[lora]'`): train a few million parameters
    instead of all of them, so a 1.5B model fits one GPU."""

    enabled: bool = False
    """Train adapters instead of the whole model."""
    r: int = 16
    """Rank of each adapter."""
    alpha: int = 32
    """Scale: the adapter's update is multiplied by alpha / r."""
    dropout: float = 0.0
    """Dropout on the adapters' input."""
    target_modules: str = "all-linear"
    """Which modules get adapters: PEFT's `all-linear`, or a comma-separated list of names."""


@dataclass
class ModelConfig:
    """The policy: one model proposes and solves (AZR's two roles share the weights)."""

    path: str = "embedded"
    """A Hugging Face model directory or hub id; `embedded`: the 5.8M-parameter code model shipped in
    the package (azr/base/model, see its MODEL_CARD.md); `tiny-random`: a tiny random-weight Qwen2
    model with a locally trained tokenizer, built on first use (exercises every code path, learns
    nothing: the tests use it)."""
    dtype: str = "float32"
    """float32, bfloat16 or float16: the computation, under autocast. Trained weights stay float32
    (with LoRA the frozen base is stored in this dtype). On 2 CPU cores with AVX512-BF16, bfloat16
    generated ~11% faster than float32 and its default run scored within noise of it
    (experiments/run-time); float32 stays the default, being also `azr eval`'s."""
    device: str = "auto"
    """auto (CUDA if available, else CPU), cpu, cuda, cuda:N."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, ~30% more compute."""
    chat_template: bool = False
    """Wrap prompts in the tokenizer's chat template (instruct models) instead of the plain
    R1-style framing (base models, as in the paper)."""
    attn_implementation: str = ""
    """Passed to from_pretrained when set: eager, sdpa, flash_attention_2."""
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class GenerationConfig:
    """How rollouts are sampled."""

    backend: str = "transformers"
    """How completions are sampled (azr.engine.generation). `transformers`: a KV-cache decoding loop
    (azr/engine/decode.py) batched with left padding, each row leaving its batch as it stops, on the
    trained model (with several ranks, on each rank's own copy, refreshed after every update).
    `transformers-cb`: transformers' continuous batching
    (`generate_batch`, paged attention) on the same model. `vllm`: a vLLM engine on each rank's GPU,
    beside the trainer, its weights pushed from the trainer after every update (`pip install
    'azr[vllm]'`). `vllm-server`: a `vllm serve` on other GPUs (`generation.server_url`), sent the
    prompts over HTTP and the weights after every update."""
    temperature: float = 1.0
    """Sampling temperature of every rollout (paper: 1.0)."""
    top_p: float = 1.0
    """Nucleus sampling of every rollout (paper: 1.0, none)."""
    max_prompt_tokens: int = 1024
    """Longer prompts are cut from the left (paper: 6144)."""
    max_new_tokens: int = 192
    """Longest completion (paper: 8096). The embedded model's proposals are mostly 40-90 tokens, its
    solvers' scratchpads and answers up to ~150."""
    batch_size: int = 64
    """Sequences generated together; prompts are grouped by length to waste little padding."""
    sampler_logprobs: bool = False
    """Keep the sampler's log-probability of every generated token: for `optim.tis_cap` and the
    health metric `update/sampler_logp_diff` (how far the sampler's numbers are from the trainer's,
    which always recomputes its own). With `transformers` the sampler is the trained model itself
    (its generation copy with several ranks): the difference is the kernels' and the dtype's. The
    vLLM backends always keep them (vLLM computes them as it samples)."""
    vllm_memory: float = 0.5
    """`vllm`: the fraction of each GPU's memory vLLM may take (its weights and KV cache; it sleeps,
    giving it back, while the trainer updates)."""
    server_url: str = ""
    """`vllm-server`: where `vllm serve` listens, e.g. http://gpu-node-2:8000."""
    server_timeout: float = 600.0
    """`vllm-server`: seconds to wait for an answer (a batch of completions, a weight update)
    before the run stops with an error."""


@dataclass
class SelfPlayConfig:
    """The algorithm (AZR paper, section 3)."""

    task_types: list[str] = field(default_factory=lambda: list(PAPER))
    """The task types self-play proposes and solves (paper: all three), each with its own buffer."""
    batch_size: int = 8
    """B: proposals and solver tasks per (task type, role) per step (paper: 64)."""
    references: int = 2
    """K: reference triplets shown to the deduction and abduction proposers (paper: 6)."""
    n_mc: int = 4
    """Solver rollouts per valid proposal to estimate its solve rate (paper: 8)."""
    induction_inputs: int = 4
    """Inputs an induction proposal must give, half shown to the solver (paper: 10)."""
    template: str = "compact"
    """Prompt format: `azr` (the paper's, for real models) or `compact` (markers, tiny models)."""
    proposer_reward: str = "learnability"
    """`learnability` (the paper, Eq. 4: 1 - s for 0 < s < 1) or `valid` (1 for any valid task): the
    ablation that removes the learnability signal."""
    reward_shaping: str = "paper"
    """`paper` (Eq. 6: well formed keeps its reward, 0 -> -0.5, malformed -1) or `none`."""
    advantage_stats: str = "sample"
    """TRR++ statistics: `sample` (the paper) or `token` (the authors' code: token-weighted)."""
    baseline: str = "task_role"
    """`task_role`: TRR++'s six baselines (the paper). `prompt`: GRPO-style, one per prompt, which
    only applies to responses that share a prompt (the reused N_mc rollouts); the rollouts of a task
    whose answers all earned the same reward (solved always or never) carry no signal and are left
    out of the update, as in DAPO's dynamic sampling. Beyond the paper."""
    reuse_rollouts: bool = False
    """Train the solver on the N_mc rollouts that estimated each proposal's solve rate, too. The
    paper discards them (about 80% of all generated tokens). Beyond the paper. On azr 0.4's model it
    did not help held-out scores (experiments/tiny-selfplay); on 0.7.0's, with `baseline=prompt`,
    held-out deduction and abduction rose +3.7 and +4.1 points over the base (the default run: +4.1
    and +1.7), at ~40% more time a step (experiments/run-time)."""
    partial_credit: bool = False
    """Reward a solver's answer that is judged by several runs (an induction program on its hidden
    inputs) with the fraction of them it gets right, instead of 1 only when all are (the paper).
    Format shaping still applies (Eq. 6); the proposers' solve rates stay all-or-nothing. Beyond
    the paper."""
    reject_copies: bool = False
    """Reject, as `copy` (an invalid proposal: reward -0.5 under the paper's shaping), a deduction or
    abduction proposal whose program is one of the model's own pretraining programs, however it is
    spelled (the model directory's `programs.sha256`, which the embedded model ships; with another
    model the option is refused). Keeps the proposer off the programs it memorised, where solving is
    recall. Whether on or not, `propose/<type>/copies` counts them when the file is there. Beyond the
    paper."""
    seed_factor: int = 4
    """Before step 1, the model proposes until each buffer holds seed_factor x B tasks (paper: 4)."""
    seed_files: list[str] = field(default_factory=list)
    """Seed files in the authors' JSONL format, as `task_type:path` (induction rows need
    `induction:`); when given, they seed the buffers instead of the model's own proposals."""
    max_seed_rounds: int = 10
    """Give up seeding (with an error) after this many rounds of proposals."""
    max_tasks: int = 0
    """Tasks kept per buffer; past it the oldest are evicted. 0: no cap."""
    hash_seeds: list[int] = field(default_factory=lambda: [0, 1])
    """PYTHONHASHSEED of the two runs of the determinism check."""
    shift_clock: bool = True
    """The determinism check's two runs each see every clock ahead by a secret offset, a century and
    more apart (libfaketime): a task that reads the time by any route is `nondeterministic`."""
    runtime_policy: bool = True
    """Run proposed programs and solvers' programs under the sandbox's run-time policy: one that
    reaches a file, a process, the clock or a banned module by a route the static filter misses is
    `banned` (azr.executor.policy)."""
    equality: str = "strict"
    """How answers are compared: `strict` (1, 1.0, True differ) or `python` (==)."""


@dataclass
class OptimConfig:
    """The policy update: PPO's clipped surrogate on TRR++ advantages, with AdamW."""

    lr: float = 3e-5
    """AdamW learning rate (paper: 1e-6 for 7B). For the embedded model, which thinks in a
    scratchpad: at 1e-4 the default run wore the scratchpad down (held-out deduction -4.3 points,
    abduction -5.2); at 3e-5 it held (-0.9, -0.9, within noise): experiments/reasoning-base."""
    weight_decay: float = 0.0
    """AdamW weight decay (paper: 0)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW's two moment decay rates."""
    warmup_steps: int = 0
    """Linear warm-up, then constant."""
    grad_clip: float = 1.0
    """Gradient norm clip (paper: 1.0)."""
    clip_ratio: float = 0.2
    """PPO clip epsilon; it never binds with one mini-batch and one epoch."""
    mini_batches: int = 1
    """Optimizer steps per training step (paper: 1)."""
    epochs: int = 1
    """Passes over each step's sequences (paper: 1)."""
    micro_batch_size: int = 8
    """Sequences per forward/backward; gradients accumulate over a mini-batch."""
    loss_mean: str = "token"
    """`token`: one token mean over the mini-batch (the paper's and the authors' code). `group`: a
    token mean per (task type, role), the groups averaged, so each of TRR++'s six groups weighs the
    same whatever its tokens (a solver's short answers are not drowned by the proposers' programs).
    Beyond the paper."""
    scratchpad_weight: float = 1.0
    """The weight of a solver's scratchpad (the tokens before its answer's marker) in the policy
    loss when its advantage is negative. 1: every token alike (the paper). Below 1, a wrong answer
    pushes down the steps that led to it less (they are often right: the embedded model's copying
    of its input eroded at 1), while a right answer's steps are reinforced in full. Takes effect
    with templates whose answer marker is one token (`compact` on a model with a scratchpad).
    Beyond the paper; with the embedded model, 0 kept held-out scores even at lr 1e-4 but did not
    raise them (experiments/worked-steps)."""
    kl_coef: float = 0.0
    """KL penalty to the initial policy (paper: none)."""
    entropy_coef: float = 0.0
    """Entropy bonus (paper: none)."""
    tis_cap: float = 2.0
    """Truncated importance sampling: each token's policy-gradient term is weighted by
    min(exp(logp_old - logp_sampler), tis_cap), correcting for a sampler whose numbers differ from
    the trainer's (Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL
    training"). Applies where the sampler's log-probabilities are kept: always with the vLLM
    backends, with `transformers` when generation.sampler_logprobs is on. 0: off."""


@dataclass
class ExecutorSection:
    """The sandbox (azr.executor.ExecutorConfig's keys). These defaults are every azr command's:
    training, and `azr exec`, `verify`, `tasks` and `eval` unless given `--timeout`, `--memory-mb`...
    (`azr eval --config RUN/config.yaml` takes a run's)."""

    timeout: float = 5.0
    """Seconds a program may run (paper: 10)."""
    memory_mb: int = 512
    """Address-space limit of one program, MiB."""
    workers: int = 0
    """0: one per CPU core."""
    isolation: str = "auto"
    """`bwrap` (namespaces), `none` (rlimits, uid drop, seccomp) or `auto` (bwrap where it works)."""


@dataclass
class EvalConfig:
    """Validation during training (greedy pass@1): the held-out tasks log as eval/<task type>/pass@1,
    a named benchmark as eval/<name>/<task type>/pass@1."""

    every: int = 20
    """Evaluate before step 1 and every this many steps; 0: never. (20: the 15 minutes of the
    default run go to learning, as issue 15 asked; the evaluations never change the training, whose
    every draw follows from the seed and the step.)"""
    bench: str = ""
    """Comma-separated benchmarks, as for `azr eval --bench`: `heldout` (the embedded model's
    held-out set, the default when empty) or a tasks file in the seed format (at most one of these
    two: they log as eval/<type>/pass@1); `cruxeval=FILE` (or cruxeval-o, cruxeval-i; AZR validates
    on CRUXEval-I/O), logged as eval/cruxeval/<type>/pass@1; and the math suite (`math500=FILE`,
    `aime24=FILE`...: the `math` family's validation set, needs math-verify), logged as
    eval/<name>/<name>/pass@1. Raise `max_new_tokens` for math."""
    task_types: list[str] = field(default_factory=lambda: list(PAPER))
    """Task types evaluated on the held-out set and seed files."""
    limit: int = 200
    """At most this many rows of each benchmark (of each kind, triplets and induction, in a seed
    file); a CRUXEval row is asked both ways under `cruxeval`."""
    max_new_tokens: int = 192
    """Longest answer (an induction answer is a whole program: up to ~100 tokens here)."""


@dataclass
class TrainConfig:
    """The run: its length, checkpoints and logs; the only section a resume may change (but seed)."""

    steps: int = 60
    """Training steps of the run; more on a rerun goes on from where it stopped."""
    save_every: int = 20
    """Checkpoint every this many steps (and at the end, and on Ctrl-C)."""
    keep_checkpoints: int = 2
    """Checkpoints kept, newest first; with 2 or more a damaged newest one has a fallback."""
    seed: int = 0
    """Seeds everything: sampling, reference draws, induction splits, the tiny model's weights."""
    log_samples: int = 2
    """Proposals and answers per (task type, role) written to samples.jsonl each step."""
    tensorboard: bool = True
    """Write TensorBoard events to RUN_DIR/tensorboard."""
    wandb_project: str = ""
    """Log to Weights & Biases too, when set and wandb is installed."""
    world_size: int = 0
    """The number of ranks (processes, one a GPU) the run is meant for: `azr train` under a torchrun
    that starts another number refuses to start. 0: any. A resume may change it (checkpoints
    reshard)."""


@dataclass
class Config:
    """A run's whole configuration, one section per concern."""

    model: ModelConfig = field(default_factory=ModelConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    selfplay: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    executor: ExecutorSection = field(default_factory=ExecutorSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what to change."""


_KINDS = {int: "an integer", float: "a number", str: "a string"}


def _check_types(section: Any, prefix: str = "") -> None:
    """What OmegaConf lets through its type checks: a list item of another type (`[0, {a: 1}]` for
    a list of ints), a float that is not finite."""
    hints = typing.get_type_hints(type(section))
    for spec in dataclasses.fields(section):
        value, hint, key = getattr(section, spec.name), hints[spec.name], prefix + spec.name
        if dataclasses.is_dataclass(value):
            _check_types(value, key + ".")
        elif typing.get_origin(hint) is list:
            (kind,) = typing.get_args(hint)
            for element in value:
                if isinstance(element, bool) or not isinstance(element, (int, float) if kind is float else kind):
                    raise ConfigError(f"{key}: {element!r:.40} is not {_KINDS[kind]}; give a list of them")
        elif hint is float and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, not {value}")


def check(config: Config) -> None:
    """Cross-field rules; raises ConfigError naming the key and what to change."""
    _check_types(config)
    s, g, o, t, e, m = config.selfplay, config.generation, config.optim, config.train, config.executor, config.model
    rules: list[tuple[bool, str]] = [
        (set(s.task_types) <= set(REGISTRY) and len(set(s.task_types)) == len(s.task_types) > 0,
         f"selfplay.task_types: choose from {', '.join(REGISTRY)}, each at most once"),
        (s.batch_size >= 1, "selfplay.batch_size must be >= 1"),
        (s.references >= 0, "selfplay.references must be >= 0"),
        (s.n_mc >= 2, "selfplay.n_mc must be >= 2 (a solve rate from one rollout is 0 or 1)"),
        (s.induction_inputs >= 2, "selfplay.induction_inputs must be >= 2 (half are hidden)"),
        (s.template in choices(TemplateName), f"selfplay.template must be one of {', '.join(choices(TemplateName))}"),
        (s.reward_shaping in choices(Shaping), f"selfplay.reward_shaping must be one of {', '.join(choices(Shaping))}"),
        (s.proposer_reward in ("learnability", "valid"), "selfplay.proposer_reward must be learnability or valid"),
        (config.eval.every >= 0 and config.eval.limit >= 1 and config.eval.max_new_tokens >= 1,
         "eval.every must be >= 0, eval.limit and eval.max_new_tokens >= 1"),
        (set(config.eval.task_types) <= set(REGISTRY),
         f"eval.task_types: choose from {', '.join(REGISTRY)}"),
        (s.advantage_stats in choices(AdvantageStats),
         f"selfplay.advantage_stats must be one of {', '.join(choices(AdvantageStats))}"),
        (s.baseline in ("task_role", "prompt"), "selfplay.baseline must be task_role or prompt"),
        (s.baseline == "task_role" or s.reuse_rollouts,
         "selfplay.baseline=prompt needs selfplay.reuse_rollouts=true: only the reused rollouts share prompts"),
        (s.seed_factor >= 1, "selfplay.seed_factor must be >= 1"),
        (s.max_tasks == 0 or s.max_tasks >= s.seed_factor * s.batch_size,
         "selfplay.max_tasks must be 0 (no cap) or at least seed_factor x batch_size"),
        (len(s.hash_seeds) == 2 and s.hash_seeds[0] != s.hash_seeds[1],
         "selfplay.hash_seeds must be two different seeds"),
        (all(0 <= seed < 2**32 for seed in s.hash_seeds),
         "selfplay.hash_seeds: each is a PYTHONHASHSEED, in [0, 2**32 - 1]"),
        (s.equality in ("strict", "python"), "selfplay.equality must be strict or python"),
        (all(":" in f and f.split(":", 1)[0] in REGISTRY for f in s.seed_files),
         "selfplay.seed_files entries are task_type:path, e.g. deduction:seeds.jsonl"),
        (g.backend in choices(Backend), f"generation.backend must be one of {', '.join(choices(Backend))}"),
        (g.backend not in VLLM_BACKENDS or g.top_p == 1,
         "generation.top_p must be 1 with vLLM: its nucleus filter is applied before the log-probabilities it "
         "returns, so they would not be the sampler's"),
        (g.backend != Backend.VLLM_SERVER or g.server_url.startswith(("http://", "https://")),
         "generation.backend=vllm-server needs generation.server_url=http://HOST:PORT (where `vllm serve` listens)"),
        (0 < g.vllm_memory < 1, "generation.vllm_memory must be a fraction in (0, 1)"),
        (g.server_timeout > 0, "generation.server_timeout must be > 0 seconds"),
        (g.temperature > 0, "generation.temperature must be > 0 (the N_mc rollouts must be sampled)"),
        (0 < g.top_p <= 1, "generation.top_p must be in (0, 1]"),
        (g.max_new_tokens >= 1 and g.max_prompt_tokens >= 16, "generation token limits are too small"),
        (g.batch_size >= 1, "generation.batch_size must be >= 1"),
        (o.lr > 0, "optim.lr must be > 0"),
        (o.warmup_steps >= 0 and o.weight_decay >= 0 and o.kl_coef >= 0 and o.entropy_coef >= 0,
         "optim.warmup_steps, weight_decay, kl_coef and entropy_coef must be >= 0"),
        (o.loss_mean in ("token", "group"), "optim.loss_mean must be token or group"),
        (0 <= o.scratchpad_weight <= 1, "optim.scratchpad_weight must be between 0 and 1"),
        (o.mini_batches >= 1 and o.epochs >= 1 and o.micro_batch_size >= 1,
         "optim.mini_batches, optim.epochs and optim.micro_batch_size must be >= 1"),
        (0 < o.clip_ratio < 1, "optim.clip_ratio must be in (0, 1)"),
        (o.grad_clip > 0, "optim.grad_clip must be > 0"),
        (o.tis_cap == 0 or o.tis_cap >= 1, "optim.tis_cap must be 0 (off) or >= 1"),
        (len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas must be two numbers in [0, 1)"),
        (e.isolation in choices(Isolation), f"executor.isolation must be one of {', '.join(choices(Isolation))}"),
        (0 < e.timeout <= 3600, "executor.timeout must be > 0 and <= 3600 seconds"),
        (e.memory_mb >= 64, "executor.memory_mb must be >= 64 (the interpreter alone needs ~30)"),
        (e.memory_mb < 2**43, "executor.memory_mb must be < 2**43 (the limit in bytes must fit in 63 bits)"),
        (e.workers >= 0, "executor.workers must be >= 0 (0: one per CPU core)"),
        (-(2**63) <= t.seed < 2**63, "train.seed must be a 64-bit integer"),
        (t.world_size >= 0, "train.world_size must be >= 0 (0: any number of ranks)"),
        (t.steps >= 0 and t.save_every >= 1 and t.keep_checkpoints >= 1 and t.log_samples >= 0,
         "train.steps and train.log_samples must be >= 0, train.save_every and train.keep_checkpoints >= 1"),
        (m.lora.r >= 1 and m.lora.alpha > 0 and 0 <= m.lora.dropout < 1,
         "model.lora: r must be >= 1, alpha > 0, dropout in [0, 1)"),
        (m.dtype in ("float32", "bfloat16", "float16"), "model.dtype must be float32, bfloat16 or float16"),
        (is_device(m.device), "model.device must be auto, cpu, cuda or cuda:N"),
    ]  # fmt: skip
    for ok, message in rules:
        if not ok:
            raise ConfigError(message)


def as_dict(config: Config) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.structured(config))  # type: ignore[return-value]
