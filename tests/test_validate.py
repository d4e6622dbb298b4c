"""Validating proposals: one case per rule of AZR.md section 3, and one per known trap."""

import pytest

from azr.tasks import FormatError, InductionProposal, InductionTask, Rejection, TaskType, TripletProposal, TripletTask
from azr.tasks.validate import ValidationConfig, Validator, rejection_counts

D, A = TaskType.DEDUCTION, TaskType.ABDUCTION


def triplet(program: str, input: str = "1", task_type: TaskType = D) -> TripletProposal:
    return TripletProposal(task_type, program, input)


CASES = [
    # valid: the identity seed
    (triplet("def f(a):\n    return a", "'Hello world'"), None),
    # valid: helpers, classes and nested functions (the reference rejected a second def)
    (triplet("def g(x):\n    return x + 1\nclass C:\n    pass\n"
             "def f(a):\n    def h(b):\n        return g(b)\n    return h(a)"), None),
    # valid: keyword arguments
    (triplet("def f(nums, k=1):\n    return nums[:k]", "nums=[1, 2, 3], k=2"), None),
    # a format error from the parser stays a format error
    (FormatError("no <answer> block"), Rejection.FORMAT),
    # not Python
    (triplet("def f(a) return a"), Rejection.SYNTAX),
    # no f
    (triplet("def g(a):\n    return a"), Rejection.NO_F),
    # banned import (the reference's dotted entries never matched)
    (triplet("import os.path\ndef f(a):\n    return a"), Rejection.BANNED),
    # an input that is code, not a literal argument list: never run
    (triplet("def f(a):\n    return a", "1) or (1"), Rejection.INVALID_INPUT),
    (triplet("def f(a):\n    return a", "sorted([2, 1])"), Rejection.INVALID_INPUT),
    # raises
    (triplet("def f(a):\n    return a / 0"), Rejection.ERROR),
    # wrong arity is an error too
    (triplet("def f(a, b):\n    return a"), Rejection.ERROR),
    # loops forever
    (triplet("def f(a):\n    while True:\n        a += 1"), Rejection.TIMEOUT),
    # allocates without end
    (triplet("def f(a):\n    return len(bytearray(10**11))"), Rejection.MEMORY),
    # returns something that is not plain data
    (triplet("def f(a):\n    return object()"), Rejection.INVALID_OUTPUT),
    # plain data, but not task data: complex numbers and Ellipsis (AZR.md section 3)
    (triplet("def f(a):\n    return [a, 2j]"), Rejection.INVALID_OUTPUT),
    (triplet("def f(a):\n    return {'k': ...}"), Rejection.INVALID_OUTPUT),
    (triplet("def f(a):\n    return a", "(1+2j)"), Rejection.INVALID_INPUT),
    # text that cannot be stored: a lone surrogate, as JSON "\ud800" decodes
    (triplet("def f(a):\n    return '\ud800'"), Rejection.FORMAT),
    # an oversized output is rejected, not truncated (the reference cut it to 400 characters)
    (triplet("def f(a):\n    return 'x' * 20000"), Rejection.INVALID_OUTPUT),
    # set order of strings depends on the hash seed: caught only across processes
    (triplet("def f(a):\n    return list({'apple', 'banana', 'cherry', 'date', 'elder', 'fig'})"),
     Rejection.NONDETERMINISTIC),
    # hash() of a string, likewise
    (triplet("def f(a):\n    return hash('azr') % 1000"), Rejection.NONDETERMINISTIC),
    # id() depends on the address space layout of the process
    (triplet("def f(a):\n    return id(object()) % 100003"), Rejection.NONDETERMINISTIC),
]  # fmt: skip


@pytest.mark.parametrize(("proposal", "rejection"), CASES)
def test_triplet_validation(sandbox, proposal, rejection):
    [validation] = Validator(sandbox).validate([proposal], step=3)
    assert validation.rejection is rejection, validation
    if rejection is None:
        task = validation.task
        assert isinstance(task, TripletTask) and task.step == 3 and task.source == "proposed"
    else:
        assert validation.task is None


def test_a_valid_task_is_canonical(sandbox):
    proposal = triplet(
        "import math\ndef f(d, k):\n    return {k: math.floor(v) for k, v in d.items()}", "{'b': 2.5, 'a': 1.5},k=0"
    )
    [validation] = Validator(sandbox).validate([proposal])
    task = validation.task
    assert task.input == "{'b': 2.5, 'a': 1.5}, k=0"  # canonical spelling, in the order written
    assert task.output == "{'a': 1, 'b': 2}"
    assert task.imports == ("import math",)


def test_the_same_proposal_validates_the_same_in_one_batch(sandbox):
    proposals = [triplet("def f(a):\n    return a * 2", str(i)) for i in range(20)]
    proposals.insert(5, triplet("def f(a):\n    return a / 0"))
    validations = Validator(sandbox).validate(proposals)
    assert [v.valid for v in validations] == [True] * 5 + [False] + [True] * 15
    assert [v.task.output for v in validations if v.valid] == [str(2 * i) for i in range(20)]
    assert rejection_counts(validations) == {"error": 1, "valid": 20}


# -- induction ------------------------------------------------------------------------------------

SQUARES = "def f(x):\n    return x * x"


def induction(inputs, message="squares its argument", program=SQUARES):
    return InductionProposal(program, tuple(inputs), message)


INDUCTION_CASES = [
    # valid: 4 distinct inputs, a message that does not repeat the code
    (induction(["1", "2", "3", "4"]), None),
    # duplicates (after canonicalisation) do not count
    (induction(["1", "2", "2", " 2 "]), Rejection.TOO_FEW_INPUTS),
    (induction(["1", "2", "3"]), Rejection.TOO_FEW_INPUTS),
    # every input must be a literal
    (induction(["1", "2", "3", "4 + 1"]), Rejection.INVALID_INPUT),
    # and run
    (induction(["1", "2", "3", "'a'"]), Rejection.ERROR),
    # an empty message
    (induction(["1", "2", "3", "4"], message="  "), Rejection.EMPTY_MESSAGE),
    # repeated set items make one input: {1} and {1, 1} are not two
    (induction(["{1}", "{1, 1}", "{1, 1, 1}", "{1, 1, 1, 1}"], program="def f(s):\n    return len(s)"),
     Rejection.TOO_FEW_INPUTS),
    (induction(["1", "2", "3", "4"], message="squares \ud800"), Rejection.FORMAT),
    # a message that gives the code away
    (induction(["1", "2", "3", "4"], message="def f(x): return x * x"), Rejection.MESSAGE_LEAKS_PROGRAM),
    # determinism holds for every input
    (induction(["1", "2", "3", "4"], program="def f(x):\n    return [x, list({'a', 'b', 'c', 'd', 'e', 'f'})]"),
     Rejection.NONDETERMINISTIC),
]  # fmt: skip


@pytest.mark.parametrize(("proposal", "rejection"), INDUCTION_CASES)
def test_induction_validation(sandbox, proposal, rejection):
    validator = Validator(sandbox, ValidationConfig(induction_inputs=4))
    [validation] = validator.validate([proposal], step=2)
    assert validation.rejection is rejection, validation
    if rejection is None:
        task = validation.task
        assert isinstance(task, InductionTask)
        assert task.outputs == ("1", "4", "9", "16")
        assert len(task.given) == 2 and len(task.hidden_pairs) == 2
        assert task.message == "squares its argument"


def test_extra_inputs_beyond_n_are_dropped(sandbox):
    [validation] = Validator(sandbox, ValidationConfig(induction_inputs=2)).validate([induction(["1", "2", "3"])])
    assert validation.task.inputs == ("1", "2")


def test_the_split_is_seeded(sandbox):
    proposal = induction([str(i) for i in range(10)])
    config = ValidationConfig(induction_inputs=10)
    splits = {Validator(sandbox, config, seed=0).validate([proposal], step=1)[0].task.given for _ in range(3)}
    assert len(splits) == 1  # reproducible
    other_seeds = {Validator(sandbox, config, seed=s).validate([proposal], step=1)[0].task.given for s in range(1, 6)}
    assert len(other_seeds | splits) > 1  # and it does depend on the seed
    assert all(len(given) == 5 for given in other_seeds | splits)


def test_config_errors():
    with pytest.raises(ValueError, match="must differ"):
        ValidationConfig(hash_seeds=(1, 1))
    with pytest.raises(ValueError, match="induction_inputs"):
        ValidationConfig(induction_inputs=1)


def test_copies_of_the_pretraining_programs_are_rejected_when_asked(sandbox, tmp_path):
    from azr.tasks.programs import program_key, read_program_keys

    memorised = "def f(x):\n    v0 = x + 1\n    return v0"
    (tmp_path / "programs.sha256").write_text(program_key(memorised) + "\n" + "0" * 16 + "\n")
    known = read_program_keys(tmp_path / "programs.sha256")
    respelled = "def f(x):  # the same program\n    v0 = (x + 1)\n    return v0"
    proposals = [
        triplet(respelled, "2"),
        triplet(respelled, "2", A),
        triplet("def f(x):\n    v0 = x + 2\n    return v0", "2"),
        # induction proposers write inputs for a program they were given: never their copy
        InductionProposal(memorised, ("1", "2", "3", "4"), "add one"),
    ]
    rejecting = Validator(sandbox, ValidationConfig(induction_inputs=4, known_programs=known, reject_copies=True))
    verdicts = rejecting.validate(proposals)
    assert [v.rejection for v in verdicts] == [Rejection.COPY, Rejection.COPY, None, None]
    assert "pretraining programs" in verdicts[0].detail
    counting = Validator(sandbox, ValidationConfig(induction_inputs=4, known_programs=known))
    assert all(v.valid for v in counting.validate(proposals))
