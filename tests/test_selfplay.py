"""One whole self-play step driven by a scripted generator: exact rewards, advantages and store."""

import pytest

from azr.config import Config
from azr.engine.generation import Completion
from azr.prompts import get_template
from azr.selfplay.step import SelfPlay, selfplay_step
from azr.tasks import InductionTask, Role, TaskType, TripletTask
from azr.tasks.seeds import identity_proposals
from azr.tasks.store import TaskStore
from azr.tasks.validate import ValidationConfig, Validator
from azr.tasks.verify import Verifier

D, A, N = TaskType.DEDUCTION, TaskType.ABDUCTION, TaskType.INDUCTION
PLUS_ONE = "def f(x):\n    return x + 1"
TIMES_TWO = "def f(x):\n    return x * 2"
IDENTITY = "def f(a):\n    return a"


def respond(prompt: str, k: int) -> str:
    """The scripted model: what it writes for a prompt, as its k-th sample."""
    # proposers: one good and one bad proposal per type
    if prompt.endswith("<PD>"):
        return PLUS_ONE + "<I>2<E>" if "x + 1" not in prompt else "garbage without an end marker"
    if prompt.endswith("<PA>"):
        return TIMES_TWO + "<I>5<E>" if "x * 2" not in prompt else "def f(x):\n    return x / 0<I>1<E>"
    if prompt.startswith("<PN>"):
        return "returns its argument<I>1<I>2<I>3<I>4<E>" if "first" not in prompt else "x<I>1<I>1<E>"
    # solvers
    if prompt == f"<D>{PLUS_ONE}<I>2<O>":
        return ["3<E>", "3<E>", "4<E>", "3<E>"][k]  # 3 of 4 right: solve rate 0.75
    if prompt == f"<A>{TIMES_TWO}<O>10<I>":
        return ["5<E>", "4<E>", "4<E>", "4<E>"][k]  # 1 of 4: solve rate 0.25
    if prompt.startswith("<N>returns its argument"):
        return IDENTITY + "<E>"  # always right: solve rate 1, not learnable
    if prompt == f"<D>{IDENTITY}<I>'Hello world'<O>":
        return "'hello'<E>"  # wrong
    if prompt == f"<A>{IDENTITY}<O>'Hello world'<I>":
        return "'Hello world'<E>"  # right
    raise AssertionError(f"unscripted prompt {prompt!r}")


class ScriptedGenerator:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def generate(self, prompts, n, sampling, seed):
        self.calls.append((len(prompts), n))
        out, seen = [], {}
        for prompt in prompts:
            index = seen[prompt] = seen.get(prompt, -1) + 1
            texts = [respond(self._mark(prompt, index), k) for k in range(n)]
            out.append([Completion((1,), tuple(range(len(t))), t, True) for t in texts])
        return out

    @staticmethod
    def _mark(prompt: str, index: int) -> str:
        """The second proposer prompt of a type writes the bad proposal."""
        if index == 1 and prompt.endswith("<PD>"):
            return "x + 1" + prompt
        if index == 1 and prompt.endswith("<PA>"):
            return "x * 2" + prompt
        if index == 1 and prompt.startswith("<PN>"):
            return prompt.replace("<PN>", "<PN>first", 1)
        return prompt


@pytest.fixture
def play(tmp_path, sandbox):
    config = Config()
    config.selfplay.batch_size = 2
    config.selfplay.reuse_rollouts = False  # the paper's step; the test below turns it on
    config.selfplay.n_mc = 4
    config.selfplay.references = 1
    config.selfplay.induction_inputs = 4
    store = TaskStore(tmp_path / "tasks.db")
    validator = Validator(sandbox, ValidationConfig(induction_inputs=4))
    store.add([v.task for v in validator.validate(identity_proposals(), step=0, source="identity")])
    template = get_template("compact", n_inputs=4)
    yield SelfPlay(config, ScriptedGenerator(), template, store, validator, Verifier(sandbox), updater=None)
    store.close()


def test_one_step_by_hand(play):
    result = selfplay_step(play, step=1)
    by_role = {}
    for s in result.trained:
        by_role.setdefault((s.role, s.task_type), []).append((s.reward, round(s.advantage, 4)))

    # proposer rewards: learnability 1 - s (Eq. 4), shaped (Eq. 6); invalid proposals -1
    assert by_role[Role.PROPOSE, D] == [(0.25, 1.0), (-1.0, -1.0)]  # s = 0.75; format error
    assert by_role[Role.PROPOSE, A] == [(0.75, 1.0), (-1.0, -1.0)]  # s = 0.25; raises
    assert by_role[Role.PROPOSE, N] == [(-0.5, 1.0), (-1.0, -1.0)]  # s = 1: not learnable; 1 input
    # solver rewards: the new task first, then the buffer; right 1, wrong but well formed -0.5
    assert by_role[Role.SOLVE, D] == [(1.0, 1.0), (-0.5, -1.0)]
    assert by_role[Role.SOLVE, A] == [(1.0, 0.0), (1.0, 0.0)]  # zero variance: no signal, no nan
    assert by_role[Role.SOLVE, N] == [(1.0, 0.0), (1.0, 0.0)]  # one task, drawn twice: never short

    # the buffers gained exactly the valid tasks, stamped with the step
    new = [t for t in play.store.tasks() if t.step == 1]
    assert new[:2] == [
        TripletTask(D, PLUS_ONE, "2", "3", step=1, source="proposed"),
        TripletTask(A, TIMES_TWO, "5", "10", step=1, source="proposed"),
    ]
    induction = new[2]
    assert isinstance(induction, InductionTask)
    assert (induction.program, induction.inputs, induction.outputs) == (
        IDENTITY,
        ("1", "2", "3", "4"),
        ("1", "2", "3", "4"),
    )
    assert len(new) == 3

    m = result.metrics
    assert m["propose/deduction/valid_rate"] == 0.5 and m["propose/deduction/rejected/format"] == 0.5
    assert m["propose/abduction/rejected/error"] == 0.5
    assert m["propose/induction/rejected/too_few_inputs"] == 0.5
    assert m["propose/deduction/solve_rate"] == 0.75 and m["propose/abduction/learnability"] == 0.75
    assert m["solve/deduction/accuracy"] == 0.5 and m["solve/abduction/accuracy"] == 1.0
    assert m["store/added"] == 3 and m["store/deduction/size"] == 2
    # generation calls: proposers, N_mc rollouts on the 3 new tasks, the solver batch
    assert play.generator.calls == [(6, 1), (3, 4), (6, 1)]


def test_copies_of_pretraining_programs_are_counted_or_rejected(play):
    from dataclasses import replace

    from azr.tasks.programs import program_key

    known = frozenset({program_key(PLUS_ONE)})
    play.validator.config = replace(play.validator.config, known_programs=known)
    m = selfplay_step(play, step=1).metrics
    assert m["propose/deduction/copies"] == 1.0 and m["propose/abduction/copies"] == 0.0
    assert "propose/induction/copies" not in m  # its proposers write no program
    play.validator.config = replace(play.validator.config, reject_copies=True)
    m = selfplay_step(play, step=2).metrics
    assert m["propose/deduction/rejected/copy"] == 0.5 and m["propose/deduction/valid_rate"] == 0.0


def test_reused_rollouts_and_the_prompt_baseline(play):
    play.config.selfplay.reuse_rollouts = True
    play.config.selfplay.baseline = "prompt"
    result = selfplay_step(play, step=1)
    solver = [s for s in result.trained if s.role is Role.SOLVE]
    # the batch, and the 4 rollouts of the new deduction (s = 0.75) and abduction (s = 0.25) tasks;
    # the induction task's (s = 1, and the batch's answers to it right too) teach nothing: left out
    assert len(solver) == 6 + 8
    assert [s.task_type for s in solver[6:]] == [D] * 4 + [A] * 4
    assert [s.reward for s in solver if s.task_type == N] == [1.0, 1.0]  # the batch's own answers stay
    # GRPO-style: one baseline per solver prompt. The new deduction task's prompt has the batch's
    # answer (right) and its 4 rollouts [1, 1, -0.5, 1]: rewards [1, 1, 1, -0.5, 1], mean 0.7, std 0.6
    group = [s for s in solver if PLUS_ONE in s.group[2]]
    assert [s.reward for s in group] == [1.0, 1.0, 1.0, -0.5, 1.0]
    assert [round(s.advantage, 4) for s in group] == [0.5, 0.5, 0.5, -2.0, 0.5]
    # the identity prompt answered once: a lone member, advantage 0
    assert [s.advantage for s in solver if s.task_type == D and IDENTITY in s.group[2]] == [0.0]
    # proposers keep TRR++'s (task type, role) baseline: their prompts never repeat
    proposers = [s for s in result.trained if s.role is Role.PROPOSE]
    assert {s.group for s in proposers} == {(t.value, "propose") for t in (D, A, N)}
    assert [round(s.advantage, 4) for s in proposers if s.task_type == D] == [1.0, -1.0]


def test_a_solvers_scratchpad_is_the_completion_before_its_answers_marker():
    from azr.selfplay.step import _trajectory

    def trajectory(role, ids, marker):
        completion = Completion((1,), ids, "", True)
        return _trajectory(role, D, completion, 0.0, "task", "prompt", marker)

    assert trajectory(Role.SOLVE, (5, 6, 99, 7, 8), 99).scratchpad == 2
    assert trajectory(Role.SOLVE, (99, 7), 99).scratchpad == 0  # an empty scratchpad
    assert trajectory(Role.SOLVE, (5, 6, 7), 99).scratchpad == 0  # no answer: all of it counts
    assert trajectory(Role.SOLVE, (5, 6, 99), None).scratchpad == 0  # a template without one
    assert trajectory(Role.PROPOSE, (5, 6, 99), None).scratchpad == 0
