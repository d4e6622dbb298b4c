"""Several ranks give what one process gives: launched through torchrun on CPU (gloo), with the
tiny random model. Each launch runs a check of tests/distributed_checks.py and writes its result."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from runs import FAST, assert_same_run, check_invariants, seeded

from azr.engine import tiny
from azr.run.runlog import read_metrics

CHECKS = Path(__file__).parent / "distributed_checks.py"


def torchrun(ranks: int) -> list[str]:
    """The launcher's arguments: torchrun for several ranks; for one, a plain process (nothing
    sharded), what the ranks must equal."""
    if ranks == 1:
        return []
    return ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]


def launch(ranks: int, check: str, argument: str, out: Path) -> dict:
    tiny.path(0)  # built once here, not by two ranks at once
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}  # gloo with a visible GPU has crashed
    done = subprocess.run(
        [sys.executable, *torchrun(ranks), str(CHECKS), check, argument, str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return torch.load(out, weights_only=False)


@pytest.fixture(scope="module")
def one_rank(tmp_path_factory):
    return launch(1, "update", "even", tmp_path_factory.mktemp("one") / "result.pt")


@pytest.fixture(scope="module")
def one_rank_per_group(tmp_path_factory):
    return launch(1, "update", "group", tmp_path_factory.mktemp("group") / "result.pt")


@pytest.mark.parametrize("layout", ["even", "lopsided", "group"])
def test_two_ranks_update_as_one_process(one_rank, one_rank_per_group, tmp_path, layout):
    """2 ranks x 4 sequences (or 8 and 0) of uneven lengths, micro-batches of 3 (so the ranks run
    3, 2 or 0 passes and the idle one runs zero-weight passes): after two updates, the same
    parameters and statistics as 1 rank x 8. The token mean divides by the global count; a mean
    per (task type, role) group by each group's global count (`group`, which moves the weights
    otherwise than the token mean)."""
    two = launch(2, "update", layout, tmp_path / "result.pt")
    if layout == "group":
        token = one_rank
        one_rank = one_rank_per_group
        assert max(float((one_rank["state"][k] - token["state"][k]).abs().max()) for k in token["state"]) > 1e-6
    assert one_rank["state"].keys() == two["state"].keys()
    for name, expected in one_rank["state"].items():
        torch.testing.assert_close(two["state"][name], expected, rtol=0, atol=2e-6, msg=name)
    moved = max(float((one_rank["state"][k] - one_rank["initial"][k]).abs().max()) for k in one_rank["state"])
    assert moved > 1e-4  # the updates did something to compare
    for ours, theirs in zip(two["stats"], one_rank["stats"], strict=True):
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-7), key


def test_two_machines_update_as_one_process(one_rank, tmp_path):
    """Two torchrun launches of one rank each, meeting by rendezvous as two machines would: HSDP
    (each machine a sharded copy, the machines' gradients all-reduced) ends two updates with the
    parameters of one process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
               "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=hsdp", str(CHECKS), "update",
               "even", str(tmp_path / "result.pt")]  # fmt: skip
    machines = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
                for _ in range(2)]  # fmt: skip
    for machine in machines:
        assert machine.wait(timeout=300) == 0, machine.stderr.read()[-4000:]
    two = torch.load(tmp_path / "result.pt", weights_only=False)
    for name, expected in one_rank["state"].items():
        torch.testing.assert_close(two["state"][name], expected, rtol=0, atol=2e-6, msg=name)


def test_a_save_that_fails_on_one_rank_stops_every_rank(tmp_path):
    """Rank 0's export hits a full disk after both ranks wrote their shards: rank 0 raises the
    one-line WriteRefused, rank 1 `Stopped` (nobody waits in a collective), nothing half-written
    is left."""
    (tmp_path / "run").mkdir()
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, *torchrun(2), str(CHECKS), "full_disk", str(tmp_path / "run"), str(tmp_path / "raised")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    zero = torch.load(tmp_path / "raised.0", weights_only=False)["raised"]
    one = torch.load(tmp_path / "raised.1", weights_only=False)["raised"]
    assert zero[0] == "WriteRefused" and "No space left on device" in zero[1] and "step-1" in zero[1], zero
    assert one[0] == "Stopped", one
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []


@pytest.mark.parametrize(("saved_by", "resumed_by"), [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_at_another_world_size(one_rank, tmp_path, saved_by, resumed_by):
    """DCP: one update and a save at N ranks, then a load and the second update at M ranks, give
    what two updates in one process give (the optimizer's moments and the scheduler came back, and
    were resharded); the exported HF directory loads with from_pretrained and holds the weights."""
    from transformers import AutoModelForCausalLM

    saved = launch(saved_by, "save", str(tmp_path / "checkpoint"), tmp_path / "saved.pt")
    resumed = launch(resumed_by, "resume", str(tmp_path / "checkpoint"), tmp_path / "resumed.pt")
    for name, expected in one_rank["state"].items():
        torch.testing.assert_close(resumed["state"][name], expected, rtol=0, atol=2e-6, msg=name)
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "checkpoint" / "model", dtype=torch.float32)
    for name, tensor in exported.state_dict().items():
        torch.testing.assert_close(tensor, saved["state"][name], rtol=0, atol=0, msg=name)


def test_a_self_play_step_on_two_ranks_is_the_step_of_one(tmp_path):
    """Two whole steps with a scripted model: on 2 ranks (rank 0 draws and stores, each rank writes,
    validates and judges its share, TRR++ on everything gathered, the update sharded) the store's
    rows, every trajectory's reward and advantage, the metrics and the weights equal 1 rank's."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = launch(1, "steps", str(tmp_path / "one"), tmp_path / "one.pt")
    two = launch(2, "steps", str(tmp_path / "two"), tmp_path / "two.pt")
    assert two["rows"] == one["rows"] and len(one["rows"]) > 6 + 3  # the six seeds, and new tasks
    assert two["trained"] == one["trained"]
    rewards = {reward for step in one["trained"] for _, _, reward, _, _ in step}
    assert {1.0, -0.5, -1.0} <= rewards  # right, wrong and malformed, valid and invalid all happened
    for ours, theirs in zip(two["metrics"], one["metrics"], strict=True):  # the update's sums in another order
        assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-7)
    # Two Adam steps at lr <= 6.7e-4 move a weight by up to about 1e-3 (Adam's step is about lr
    # whatever the gradient's scale). float32 sums in another order reached 2.0e-6 on an AMD EPYC
    # VM (under 2e-6 on earlier machines); 1e-5 stays two orders of magnitude under a step.
    for name, expected in one["state"].items():
        torch.testing.assert_close(two["state"][name], expected, rtol=0, atol=1e-5, msg=name)


def test_each_rank_generates_on_its_own_copy(tmp_path):
    """After a sharded update, every rank generates on its own unsharded copy, refreshed from the
    shards: the ranks decode different lengths without waiting for each other, and the completions
    are those of one process after the same update."""
    one = launch(1, "generate", "-", tmp_path / "one.pt")
    two = launch(2, "generate", "-", tmp_path / "two.pt")
    assert two["completions"] == one["completions"] and len(one["completions"]) == 4


def test_lora_under_fsdp2_trains_exports_and_merges_like_peft(tmp_path):
    """LoRA applied before sharding: 2 ranks end two updates with the adapters of 1 rank; the
    adapter exported from the shards loads with PEFT, and its `merge_and_unload` equals the
    generation copy that every rank merged functionally from the shards."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    one = launch(1, "lora", str(tmp_path / "one"), tmp_path / "one.pt")
    two = launch(2, "lora", str(tmp_path / "two"), tmp_path / "two.pt")
    assert one["adapters"].keys() == two["adapters"].keys() and one["adapters"]
    for name, expected in one["adapters"].items():
        torch.testing.assert_close(two["adapters"][name], expected, rtol=0, atol=2e-6, msg=name)
    assert any(float(t.abs().max()) > 0 for n, t in two["adapters"].items() if "lora_B" in n)  # it trained
    base = AutoModelForCausalLM.from_pretrained(tiny.path(0), dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, tmp_path / "two").merge_and_unload().state_dict()
    assert merged.keys() == two["copy"].keys()
    for name, expected in merged.items():
        torch.testing.assert_close(two["copy"][name], expected, rtol=0, atol=1e-6, msg=name)


# -- azr train on two ranks ------------------------------------------------------------------------

TRAIN = ["model.path=embedded", "generation.max_new_tokens=96", "train.steps=4", "train.save_every=2"]
"""The embedded model, which writes valid tasks (new ones reach the store and the solver batches)."""


def torchrun_train(ranks, run, *overrides, env=None):
    """`torchrun --nproc_per_node RANKS -m azr.cli train` on CPU (gloo); a plain `azr train` for 1."""
    tiny.path(0)
    return subprocess.run(
        [sys.executable, *torchrun(ranks), "-m", "azr.cli", "train", "--run-dir", str(run), *FAST, *overrides],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", **(env or {})},
    )  # fmt: skip


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return [*seeded(tmp_path_factory.mktemp("seeds")), *TRAIN]


def test_azr_train_on_two_ranks_resumes_after_a_rank_is_killed(tmp_path, settings):
    """Rank 1 SIGKILLed after step 3 is logged (torchrun then stops rank 0): the rerun resumes from
    step 2's checkpoint (written by both ranks) and ends where an unbroken 2-rank run ends: metrics,
    samples, tasks and weights."""
    unbroken = tmp_path / "unbroken"
    done = torchrun_train(2, unbroken, *settings)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stderr.count("done: step 4") == 1  # rank 0 speaks for both
    check_invariants(unbroken, 4)
    assert sum(row["store/added"] for row in read_metrics(unbroken)) > 0  # tasks the model wrote

    run = tmp_path / "run"
    killed = torchrun_train(2, run, *settings, env={"AZR_FAULT": "step-logged:3@1"})
    assert killed.returncode != 0 and "exitcode  : -9" in killed.stderr, killed.stderr[-4000:]
    resumed = torchrun_train(2, run, *settings)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "from step 2" in " ".join(resumed.stderr.split())  # rich wraps lines
    check_invariants(run, 4)
    assert_same_run(run, unbroken, 4)


def test_a_run_changes_its_number_of_ranks_between_resumes(tmp_path, settings):
    """1 plain process to step 2, 2 ranks to step 4, 1 plain process to step 6: each resume reads
    the other's checkpoint (DCP reshards; a plain process reads shards as whole tensors). A
    refusal on 2 ranks is one line, from rank 0, exit 2."""
    run = tmp_path / "run"
    for ranks, steps in [(1, 2), (2, 4), (1, 6)]:
        done = torchrun_train(ranks, run, *settings, f"train.steps={steps}")
        assert done.returncode == 0, done.stderr[-4000:]
        check_invariants(run, steps)
    refused = torchrun_train(2, run, *settings, "train.steps=8", "selfplay.n_mc=2")
    errors = [line for line in refused.stderr.splitlines() if "error:" in line]
    assert errors == [errors[0]] and "azr train: error:" in errors[0] and "selfplay.n_mc" in errors[0], refused.stderr
    assert "exitcode  : 2" in refused.stderr
    assert [row["step"] for row in read_metrics(run)] == list(range(1, 7))
