"""`azr train` end to end on the tiny random model: smoke, resume after SIGKILL, and the update."""

import dataclasses
import math
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import SHARED
from runs import FAST, assert_same_run, azr_train, exported_tasks, seeded, training
from safetensors.torch import load_file

from azr.config import Config, ConfigError
from azr.config.files import load
from azr.engine import tiny
from azr.engine.generation import TransformersGenerator
from azr.engine.policy import Policy
from azr.run.runlog import read_metrics
from azr.selfplay.update import Trajectory, Updater
from azr.tasks import Role, TaskType


def test_two_steps_from_the_cli(tmp_path):
    run = tmp_path / "run"
    # The random model's answers are all malformed, so every group's rewards tie and advantages
    # are 0; a small entropy bonus gives the update a gradient to show the weights move.
    done = azr_train(run, "train.steps=2", "optim.entropy_coef=0.01", "train.tensorboard=true")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "done: step 2" in done.stderr
    assert "valid proposals" in done.stderr and "s a step" in done.stderr  # the closing summary
    metrics = read_metrics(run)
    assert [m["step"] for m in metrics] == [1, 2]
    for row in metrics:
        for key, value in row.items():
            assert value is None or (isinstance(value, (int, float)) and math.isfinite(value)), key
        assert row["update/sequences"] > 0
    assert (run / "config.yaml").exists() and (run / "tasks.db").exists() and (run / "samples.jsonl").exists()
    assert any((run / "tensorboard").iterdir())
    model = run / "checkpoints" / "step-2" / "model"
    before = load_file(str(tiny.path(0) / "model.safetensors"))
    after = load_file(str(model / "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # the checkpoint is a model directory transformers loads as is
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(model)
    # and `azr report` reads the run back
    from azr.cli import main

    assert main(["report", "--run-dir", str(run)]) == 0
    page = (run / "report" / "index.html").read_text()
    assert "rewards.png" in page and (run / "report" / "rewards.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_run_directory_defaults_to_the_preset_name(tmp_path):
    done = subprocess.run([sys.executable, "-m", "azr.cli", "train", *FAST, "train.steps=1"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert [m["step"] for m in read_metrics(tmp_path / "runs" / "tiny-cpu")] == [1]
    assert "runs/tiny-cpu (the same command resumes it)" in done.stderr
    preset = subprocess.run(
        [sys.executable, "-m", "azr.cli", "train", "--config", "gpu-1.5b-lora", "model.path=/nonexistent/model"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert preset.returncode == 2 and (tmp_path / "runs" / "gpu-1.5b-lora").is_dir()  # not runs/gpu-1


def test_a_crash_loses_nothing_and_the_resumed_run_equals_an_unbroken_one(tmp_path):
    """Seeded with real tasks, so the solver batches are real draws from a real buffer."""
    settings = ["train.steps=4", "train.save_every=2", "optim.entropy_coef=0.01", *seeded(tmp_path)]
    unbroken = tmp_path / "unbroken"
    assert azr_train(unbroken, *settings).returncode == 0

    crashed = tmp_path / "crashed"
    first = azr_train(crashed, *settings, env={"AZR_FAULT": "step-logged:3"})
    assert first.returncode == -9  # SIGKILL after step 3 was logged; the last checkpoint is step 2
    assert [m["step"] for m in read_metrics(crashed)] == [1, 2, 3]
    second = azr_train(crashed, *settings)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stderr and "from step 2" in second.stderr

    assert [m["step"] for m in read_metrics(crashed)] == [1, 2, 3, 4]  # step 3 once, rewritten
    assert_same_run(crashed, unbroken, 4)
    assert '"task_type": "deduction"' in exported_tasks(crashed)


def test_resuming_with_another_algorithm_is_refused(tmp_path):
    run = tmp_path / "run"
    assert azr_train(run, "train.steps=1").returncode == 0
    refused = azr_train(run, "train.steps=2", "selfplay.n_mc=6")
    assert refused.returncode == 2
    assert "selfplay.n_mc=4" in refused.stderr and "only train.* (but the seed) may change" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert azr_train(run, "train.steps=2").returncode == 0  # more steps is fine
    assert [m["step"] for m in read_metrics(run)] == [1, 2]


def test_a_failed_start_does_not_lock_the_run_directory(tmp_path):
    run = tmp_path / "run"
    assert azr_train(run, "train.steps=1", "model.path=/nonexistent/model").returncode == 2
    assert azr_train(run, "train.steps=1").returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train.steps=many"], "train.steps"),
        (["optim.warmup_steps=-5"], "optim.warmup_steps"),
        (["optim.betas=[2,3]"], "optim.betas"),
        (["model.lora.enabled=true", "model.lora.target_modules=nonexistent_proj"], "model.lora"),
        (["generation.max_new_tokens=100000"], "exceeds the model's"),
        (["selfplay.seed_files=[deduction:/nonexistent.jsonl]"], "no file"),
        (["selfplay.templat=azr"], "unknown key"),
        (["selfplay.n_mc=1"], "selfplay.n_mc must be >= 2"),
        (["--config", "paper-13b"], "no config file"),
        (["model.path=/nonexistent/model"], "cannot load model.path"),
        (["selfplay.reuse_rollouts=false", "selfplay.baseline=prompt"], "needs selfplay.reuse_rollouts"),
        (["eval.bench=/nonexistent/tasks.jsonl"], "eval.bench: no file /nonexistent/tasks.jsonl"),
        (["eval.bench=cruxeval=/nonexistent.jsonl"], "eval.bench: no file /nonexistent.jsonl"),
        (["eval.bench=humaneval"], "eval.bench: humaneval is a code benchmark"),
        (["optim.tis_cap=0.5"], "optim.tis_cap must be 0 (off) or >= 1"),
        (["optim.scratchpad_weight=1.5"], "optim.scratchpad_weight must be between 0 and 1"),
        (["generation.backend=sglang"], "generation.backend must be one of transformers, transformers-cb, vllm"),
        (["generation.backend=vllm", "generation.top_p=0.9"], "generation.top_p must be 1 with vLLM"),
        (["generation.backend=vllm-server"], "needs generation.server_url=http://HOST:PORT"),
        (["train.world_size=-1"], "train.world_size must be >= 0"),
        (["model.path=tiny-random", "selfplay.reject_copies=true"], "has no programs.sha256"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(tmp_path, args, message):
    done = subprocess.run(
        [sys.executable, "-m", "azr.cli", "train", "--run-dir", str(tmp_path / "r"), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_presets_load():
    assert load("paper-7b").selfplay.batch_size == 64
    assert load("gpu-1.5b-lora").model.lora.enabled
    assert load("tiny-cpu") == Config()
    with pytest.raises(ConfigError, match="key=value"):
        load(None, ["train.steps"])


# -- the update ------------------------------------------------------------------------------------


def test_help_config_prints_every_key_with_its_default_and_its_documentation(capsys):
    import yaml

    from azr.cli import main
    from azr.config import as_dict

    assert main(["train", "--help-config"]) == 0
    text = capsys.readouterr().out
    assert yaml.safe_load(text) == as_dict(Config())  # the defaults, as YAML a config file may copy
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if not line.lstrip().startswith("#"):
            assert lines[number - 1].lstrip().startswith("# "), f"{line.strip()} has no documentation"


@pytest.fixture(scope="module")
def policy():
    config = Config().model
    config.path, config.device = "tiny-random", "cpu"
    return Policy(config)


def _samples(policy, count=8):
    generator = torch.Generator().manual_seed(0)
    samples = []
    for i in range(count):
        prompt = tuple(torch.randint(20, 1000, (3 + i % 3,), generator=generator).tolist())
        ids = tuple(torch.randint(20, 1000, (2 + (i * 5) % 7,), generator=generator).tolist())
        samples.append(
            Trajectory(Role.SOLVE, TaskType.DEDUCTION, prompt, ids, 0.0, "g", advantage=(-1) ** i * (1 + i / 8))
        )
    return samples


@pytest.mark.parametrize("loss_mean", ["token", "group"])
def test_gradient_accumulation_equals_one_big_batch(policy, loss_mean):
    """micro_batch_size 8 (one pass) and 1 (eight accumulated passes) give the same gradient, with
    one token mean or a mean per (task type, role) group (three groups of 3, 3 and 2 sequences)."""
    samples = _samples(policy)
    kinds = [(TaskType.DEDUCTION, Role.SOLVE), (TaskType.ABDUCTION, Role.SOLVE), (TaskType.DEDUCTION, Role.PROPOSE)]
    samples = [dataclasses.replace(s, task_type=kinds[i % 3][0], role=kinds[i % 3][1]) for i, s in enumerate(samples)]
    initial = {k: v.clone() for k, v in policy.model.state_dict().items()}
    results = []
    for micro in (8, 1):
        policy.model.load_state_dict(initial)
        config = Config().optim
        config.micro_batch_size, config.loss_mean = micro, loss_mean
        stats = Updater(policy, config).update(samples, seed=0)
        grads = {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.grad is not None}
        results.append((grads, stats))
    (one, one_stats), (many, many_stats) = results
    assert one_stats["loss"] == pytest.approx(many_stats["loss"], abs=1e-6)
    assert one_stats["grad_norm"] == pytest.approx(many_stats["grad_norm"], rel=1e-4)
    assert one.keys() == many.keys() and one
    assert all(torch.allclose(one[k], many[k], rtol=1e-4, atol=1e-7) for k in one)
    assert any(g.abs().sum() > 0 for g in one.values())
    policy.model.load_state_dict(initial)


def test_mini_batches_and_epochs_use_the_old_logprobs(policy):
    """With 2 mini-batches x 2 epochs the later passes see a moved policy: the ratio to the old
    log-probabilities leaves 1 and the clip binds (recomputing the old ones each pass would keep
    the ratio at 1 and the clip fraction at 0)."""
    samples = _samples(policy)
    initial = {k: v.clone() for k, v in policy.model.state_dict().items()}
    config = Config().optim
    config.mini_batches, config.epochs, config.lr = 2, 2, 3e-2
    stats = Updater(policy, config).update(samples, seed=0)
    assert stats["clip_fraction"] > 0 and math.isfinite(stats["loss"])
    policy.model.load_state_dict(initial)
    config.mini_batches, config.epochs = 1, 1  # the paper's setting: on policy, nothing clipped
    assert Updater(policy, config).update(samples, seed=0)["clip_fraction"] == 0.0
    policy.model.load_state_dict(initial)


def test_a_positive_advantage_makes_its_response_more_likely(policy):
    initial = {k: v.clone() for k, v in policy.model.state_dict().items()}
    up, down = _samples(policy, 2)
    up = Trajectory(up.role, up.task_type, up.prompt_ids, up.ids, 1.0, "g", advantage=1.0)
    down = Trajectory(down.role, down.task_type, down.prompt_ids, down.ids, -1.0, "g", advantage=-1.0)

    def logprob(sample):
        with torch.no_grad():
            values, _ = policy.logprobs(policy.batch([sample.prompt_ids], [sample.ids]))
        return values.sum().item()

    before = logprob(up), logprob(down)
    config = Config().optim
    config.lr = 1e-3
    Updater(policy, config).update([up, down], seed=0)
    assert logprob(up) > before[0] and logprob(down) < before[1]
    policy.model.load_state_dict(initial)


def test_the_scratchpad_weight_spares_a_wrong_answers_steps(policy):
    """optim.scratchpad_weight=0: a wrong answer (negative advantage) pushes down only its answer's
    tokens, a right one reinforces all of its own; the update's gradient is that of the loss with
    the scratchpad's tokens weighted 0."""
    up, down = _samples(policy, 2)
    up = dataclasses.replace(up, ids=(21, 22, 23, 24), advantage=1.0, scratchpad=2)
    down = dataclasses.replace(down, ids=(31, 32, 33, 34, 35), advantage=-1.0, scratchpad=3)
    config = Config().optim
    config.scratchpad_weight = 0.0
    updater = Updater(policy, config)
    batch = policy.batch([up.prompt_ids, down.prompt_ids], [up.ids, down.ids])
    weights = updater._token_weights([up, down], batch.completion_mask)
    assert weights.tolist() == [[1.0] * batch.completion_mask.shape[1], [0.0] * 3 + [1.0] * (weights.shape[1] - 3)]
    config.scratchpad_weight = 1.0
    assert Updater(policy, config)._token_weights([up, down], batch.completion_mask) is None


def test_learnability_rollouts_are_sampled_not_greedy(policy, sandbox):
    """The N_mc rollouts of stage 3 must differ (the authors' newer code sampled them greedily by
    accident, which collapses every solve rate to 0 or 1): through the step's own `solve`."""
    from azr.prompts import get_template
    from azr.selfplay.solve import solve
    from azr.selfplay.step import SelfPlay
    from azr.tasks import TripletTask
    from azr.tasks.verify import Verifier

    config = Config()
    play = SelfPlay(config, TransformersGenerator(policy, config.generation), get_template("compact"), None, None,
                    Verifier(sandbox), None)  # type: ignore[arg-type]  # fmt: skip
    task = TripletTask(TaskType.DEDUCTION, "def f(x):\n    return x", "1", "1")
    [rollouts] = solve(play.generator, play.template, play.verifier, [task], config.selfplay.n_mc, play.sampling(), 0)
    assert len(rollouts) == config.selfplay.n_mc
    assert len({r.completion.text for r in rollouts}) > 1
    [again] = solve(play.generator, play.template, play.verifier, [task], config.selfplay.n_mc, play.sampling(), 0)
    assert [r.completion.text for r in again] == [r.completion.text for r in rollouts]  # and reproducible


def test_logprobs_match_what_generate_sampled_from(policy):
    """The training log-probabilities of a sampled completion equal the log-softmax of the logits
    `generate` sampled each token from (no off-by-one), batched with other lengths or alone."""
    prompts = [policy.encode([text], 64)[0] for text in ("<D>def f(x):\n    return x<I>1<O>", "<PD>", "<A>x<O>1<I>")]
    batch = policy.batch(prompts, [[] for _ in prompts])
    torch.manual_seed(0)
    with torch.no_grad():
        out = policy.model.generate(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, do_sample=True, top_k=0,
            max_new_tokens=6, min_new_tokens=6, output_logits=True, return_dict_in_generate=True,
            pad_token_id=policy.tokenizer.pad_token_id,
        )  # fmt: skip
    completions = out.sequences[:, batch.prompt_width :].tolist()
    sampled = torch.stack([torch.log_softmax(step.float(), -1) for step in out.logits], 1)
    expected = sampled.gather(-1, torch.tensor(completions).unsqueeze(-1)).squeeze(-1)
    together, _ = policy.logprobs(policy.batch(prompts, completions))
    assert torch.allclose(together, expected, atol=1e-4)
    for i in range(len(prompts)):
        alone, _ = policy.logprobs(policy.batch([prompts[i]], [completions[i]]))
        assert torch.allclose(alone[0], expected[i], atol=1e-4)


def test_lora_trains_saves_and_restores_the_adapter(tmp_path):
    pytest.importorskip("peft")
    config = Config().model
    config.path, config.device = "tiny-random", "cpu"
    config.lora.enabled = True
    config.lora.target_modules = "q_proj,v_proj"
    lora = Policy(config)
    trainable = {n for n, p in lora.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    optim = Config().optim
    optim.entropy_coef, optim.lr = 0.1, 1e-2
    before = {n: p.detach().clone() for n, p in lora.model.named_parameters() if p.requires_grad}
    Updater(lora, optim).update(_samples(lora), seed=0)
    after = {n: p.detach().clone() for n, p in lora.model.named_parameters() if p.requires_grad}
    assert any(not torch.equal(before[n], after[n]) for n in before)
    lora.save(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    fresh = Policy(config)
    fresh.load_weights(tmp_path / "adapter")
    restored = {n: p.detach() for n, p in fresh.model.named_parameters() if p.requires_grad}
    assert all(torch.equal(after[n], restored[n]) for n in after)


def test_kl_to_the_initial_policy(policy):
    initial = {k: v.clone() for k, v in policy.model.state_dict().items()}
    optim = Config().optim
    optim.kl_coef, optim.lr = 0.1, 1e-2
    updater = Updater(policy, optim)
    samples = _samples(policy)
    first = updater.update(samples, seed=0)
    second = updater.update(samples, seed=1)
    assert first["kl"] == pytest.approx(0.0, abs=1e-7)  # the policy still is the reference
    assert second["kl"] > 0.0  # one update later it has moved away
    assert "entropy" not in first  # not computed without optim.entropy_coef: no 0 logged as if measured
    policy.model.load_state_dict(initial)


def test_ctrl_c_finishes_the_step_saves_and_resumes(tmp_path):
    run = tmp_path / "run"
    process = training(run, "train.steps=50", "train.save_every=100", steps_logged=2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "interrupted: saved step" in stderr
    steps = [m["step"] for m in read_metrics(run)]
    saved = [int(p.name.split("-")[1]) for p in (run / "checkpoints").iterdir() if p.name.startswith("step-")]
    assert saved == [steps[-1]] and steps == list(range(1, steps[-1] + 1))
    resumed = azr_train(run, f"train.steps={steps[-1] + 1}", "train.save_every=100")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [m["step"] for m in read_metrics(run)] == list(range(1, steps[-1] + 2))


@pytest.mark.skipif(not (SHARED / "data" / "azr-seeds").exists(), reason="the AZR seed files are not here")
def test_seed_files_seed_the_buffers(tmp_path):
    seeds = SHARED / "data" / "azr-seeds"
    induction = tmp_path / "induction.jsonl"  # the first 24 rows: the whole file takes ~15 s to validate
    induction.write_text("".join((seeds / "7b_coder_code_f_seed_io.jsonl").read_text().splitlines(True)[:24]))
    files = f"[deduction:{seeds / '7b_coder_seed_io.jsonl'},induction:{induction}]"
    done = azr_train(
        tmp_path / "run", "train.steps=1", "selfplay.task_types=[deduction,induction]",
        f"selfplay.seed_files={files}", "selfplay.induction_inputs=10",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "seeded 248 deduction tasks" in done.stderr
    counts = dict(sqlite3.connect(tmp_path / "run" / "tasks.db").execute(
        "SELECT task_type, COUNT(*) FROM tasks WHERE step = 0 GROUP BY 1"
    ))  # fmt: skip
    validated = subprocess.run(
        [sys.executable, "-m", "azr.cli", "tasks", "validate", str(induction), "--task-type", "induction"],
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert counts == {"deduction": 248, "induction": validated.count('"valid": true')}
    assert counts["induction"] > 10


def test_held_out_and_cruxeval_validation_during_training(tmp_path, quick_model):
    run = tmp_path / "run"
    cruxeval = SHARED / "data" / "cruxeval" / "cruxeval.jsonl"
    if not cruxeval.exists():
        pytest.skip(f"CRUXEval data not found at {cruxeval}")
    done = azr_train(
        run, "train.steps=2", f"model.path={quick_model}", "eval.every=2",
        f"eval.bench=heldout={quick_model / 'heldout.jsonl'},cruxeval={cruxeval}", "eval.limit=4",
        "eval.max_new_tokens=8",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == [0, 1, 2]
    for row in (rows[0], rows[2]):  # the base model, and after step 2
        assert {f"eval/{t}/pass@1" for t in ("deduction", "abduction", "induction")} <= row.keys()
        assert {f"eval/cruxeval/{t}/pass@1" for t in ("deduction", "abduction")} <= row.keys()
        assert "eval/cruxeval/induction/pass@1" not in row
    assert "eval/deduction/pass@1" not in rows[1]


def test_a_list_override_may_be_written_with_commas():
    config = load(None, ["selfplay.task_types=deduction,abduction", "optim.betas=0.8,0.9", "selfplay.seed_files="])
    assert config.selfplay.task_types == ["deduction", "abduction"] and config.optim.betas == [0.8, 0.9]
    assert config.selfplay.seed_files == [] and load(None, ["eval.task_types=[induction]"]).eval.task_types == [
        "induction"
    ]


def test_math_in_self_play_with_the_math_suite_as_its_validation_set(tmp_path):
    pytest.importorskip("math_verify")
    run = tmp_path / "run"
    math500 = Path(__file__).parent / "fixtures" / "benchmarks" / "math500.jsonl"
    done = azr_train(
        run, "train.steps=1", "selfplay.task_types=deduction,math", "eval.every=1", f"eval.bench=math500={math500}",
        "eval.limit=2", "eval.max_new_tokens=8",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    first, last = read_metrics(run)
    assert [key for key in first if key.startswith("eval/math500/")] == ["eval/math500/math500/pass@1"]
    assert {"propose/math/valid_rate", "store/math/size", "eval/math500/math500/pass@1"} <= last.keys()


def test_the_samplers_log_probabilities_are_measured_and_may_correct_the_update(tmp_path):
    """generation.sampler_logprobs keeps the sampler's numbers; with the transformers backend the
    sampler is the trained model, so the gap the update measures is ~0 and TIS changes nothing."""
    run = tmp_path / "run"
    done = azr_train(run, "train.steps=1", "generation.sampler_logprobs=true", "optim.tis_cap=2")
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = read_metrics(run)
    assert 0.0 <= row["update/sampler_logp_diff"] < 1e-4
