"""Issue 11's sandbox properties, attack by attack: nothing survives a request, no writable
directory is on an import path, the determinism check's two runs differ in every ambient input,
the run-time policy, and workers replaced off the dispatch path.

Each test sends hostile programs through the real sandbox, under bubblewrap and under isolation
none (the `executor` fixture), and failed on the code before issue 11.
"""

import os
import stat
import textwrap
import threading
import time
import uuid

import pytest
from conftest import BWRAP, TEST_LIMITS

from azr.executor import ExecRequest, ExecStatus, Executor, ExecutorConfig, Policy, parse_value, pool
from azr.executor.handle import ExecutorError, WorkerHandle
from azr.executor.launcher import Launcher
from azr.executor.sandbox import Ambient, find_faketime
from azr.tasks.programs import BANNED_MODULES

POLICY = Policy(BANNED_MODULES)


def program(source: str) -> str:
    return textwrap.dedent(source).strip() + "\n"


def fresh(executor) -> bool:
    executor.isolation  # noqa: B018 (starts the workers)
    return bool(next(iter(executor._groups.values()))[0].info.get("fresh_namespaces"))


def requires_fresh(executor) -> None:
    if not fresh(executor):
        pytest.skip("children cannot have namespaces of their own here")


def skip_if_unimportable(result) -> None:
    """Under isolation none as root, children run as nobody and cannot read an interpreter
    installed under /root beyond the modules the worker preloaded."""
    if "No module named" in result.error:
        pytest.skip(f"programs cannot import that module here: {result.error}")


# -- nothing survives a request ----------------------------------------------------------------------

OBSERVE = """
    import os, sys
    def f(tag):
        here = os.stat(".")
        probe = os.open("probe", os.O_CREAT | os.O_WRONLY, 0o600)
        probe_inode = os.fstat(probe).st_ino
        os.close(probe)
        os.unlink("probe")
        space = os.statvfs(".")
        return {
            "pids": [os.getpid(), os.getppid(), os.getpgrp(), os.getsid(0)],
            "ids": [os.getuid(), os.getgid(), os.getgroups()],
            "cwd": os.getcwd(),
            "listing": sorted(os.listdir(".")),
            "root": sorted(os.listdir("/")),
            "tmp": sorted(os.listdir("/tmp")),
            "directory": [here.st_ino, here.st_mode, here.st_nlink, here.st_uid, here.st_size],
            "untouched": here.st_atime_ns == here.st_mtime_ns == here.st_ctime_ns,
            "next_inode": probe_inode,
            "free": [space.f_bfree, space.f_ffree],
            "umask": os.umask(0o022),
            "environ": sorted(os.environ.items()),
            "modules": len(sys.modules),
        }
"""

TRACES = """
    import os
    def f():
        os.listdir(".")  # the directory's access time
        for i in range(200):  # inode numbers, free space
            with open(f"file{i}", "w") as handle:
                handle.write("x" * 4096)
        os.mkdir("kept")
        os.mkdir("/tmp/elsewhere") if os.path.isdir("/tmp") else None
        os.chmod(".", 0o555)
        os.umask(0o077)
        os.environ["LEFT"] = "behind"
        import json, difflib  # module state
        return os.getpid()
"""


def test_nothing_survives_a_request(executor):
    """Two different programs that look at everything they can, before and after a third that
    tries to leave traces, see the same thing (the clock aside)."""
    requires_fresh(executor)
    with Executor(ExecutorConfig(isolation=executor.isolation, workers=1, **TEST_LIMITS)) as one:
        first, _, second, third = one.run_batch(
            [
                ExecRequest(program(OBSERVE), "'first'"),
                ExecRequest(program(TRACES), ""),
                ExecRequest(program(OBSERVE) + "\n# another program\n", "'second'"),
                ExecRequest(program(OBSERVE).replace("def f(tag):", "def f(tag, unused=0):"), "'third'"),
            ]
        )
    assert first.ok and second.ok and third.ok, (first, second, third)
    seen = [parse_value(result.output) for result in (first, second, third)]
    assert seen[0] == seen[1] == seen[2]
    assert seen[0]["pids"] == [1, 0, 1, 1]
    assert seen[0]["untouched"] and seen[0]["listing"] == []


# -- no writable directory on an import path ---------------------------------------------------------

PLANT = """
    import os, sys
    def f(marker):
        candidates = {os.getcwd(), "/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/", os.environ.get("HOME", "/")}
        candidates.update(p for p in sys.path if p)
        candidates.update(os.path.dirname(p) for p in sys.path if p)
        candidates.add(CALLER_CWD)
        planted = []
        for directory in sorted(candidates):
            for name in ("sitecustomize", "usercustomize", "planted_" + marker, "json", "re", "azr"):
                try:
                    with open(os.path.join(directory, name + ".py"), "w") as handle:
                        handle.write("PLANTED = True\\nraise SystemExit('imported a planted module')\\n")
                    planted.append(directory)
                except OSError:
                    pass
            try:
                with open(os.path.join(directory, "planted.pth"), "w") as handle:
                    handle.write("import planted_" + marker + "\\n")
            except OSError:
                pass
        return sorted(set(planted))
"""

IMPORT_IT = """
    import json, re
    def f(marker):
        try:
            __import__("planted_" + marker)
            return "imported"
        except ImportError:
            return [hasattr(json, "PLANTED"), hasattr(re, "PLANTED")]
"""


def world_writable(path):
    """A new directory anyone may write, reachable by anyone (its parents made traversable)."""
    path.mkdir()
    path.chmod(0o777)
    for parent in path.parents:
        if str(parent) in ("/", "/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o011)
    return path


def test_no_later_process_imports_what_a_program_planted(executor, tmp_path, monkeypatch):
    """A program writes modules into every directory it can (the caller's working directory made
    world-writable, as a careless user's /tmp would be); workers started afterwards, and later
    programs, import none of them."""
    marker = uuid.uuid4().hex[:8]
    careless = world_writable(tmp_path / "cwd")
    monkeypatch.chdir(careless)
    config = ExecutorConfig(isolation=executor.isolation, workers=2, **TEST_LIMITS)
    source = program(PLANT).replace("CALLER_CWD", repr(str(careless)))
    with Executor(config) as first:
        planted = first.run_batch([ExecRequest(source, repr(marker))] * 4)
        assert all(result.ok for result in planted), planted
        for group in first._groups.values():  # force restarts: a fresh worker reads its import path anew
            for worker in group:
                os.killpg(worker.process.pid, 9)
        after = first.run_batch([ExecRequest(program(IMPORT_IT), repr(marker))] * 4)
    with Executor(config) as second:
        later = second.run_batch([ExecRequest(program(IMPORT_IT), repr(marker))] * 4)
    for result in after[-2:] + later:
        assert result.output == "[False, False]", result
    if fresh(executor):  # nothing outside its own tmpfs is writable at all
        assert {d for r in planted for d in parse_value(r.output)} <= {"/tmp"}, planted


def test_the_worker_refuses_an_import_path_programs_could_write(tmp_path):
    """If a directory on the workers' import path is writable by the children's uid, the sandbox
    does not start: a later worker would import what a program left there."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the children then run as nobody")
    shared = world_writable(tmp_path / "open")
    config = ExecutorConfig(isolation="none", workers=1, python_paths=(str(shared),), **TEST_LIMITS)
    with pytest.raises(pool.ExecutorError, match="writable by its programs"), Executor(config) as executor:
        executor.run("def f():\n    return 1", "")


# -- the determinism check's two runs differ in every ambient input -------------------------------------

AMBIENT = """
    import email.utils
    def f():
        now = email.utils.datetime.datetime.now()  # a C clock, reached without an import of datetime
        return [now.year, now.month, now.day, now.hour, now.minute]
"""


YEAR = 365.2425 * 86_400


@pytest.mark.skipif(find_faketime() is None, reason="no libfaketime here")
def test_the_two_checking_clocks_are_a_century_apart_and_secret(executor):
    clocks = "import time\ndef f():\n    return [time.time(), time.monotonic()]"
    (now, mono), (first, first_mono), (second, second_mono) = (
        parse_value(executor.run_batch([ExecRequest(clocks, "")], hash_seed=clock, clock=clock)[0].output)
        for clock in (0, 1, 2)
    )
    assert abs(now - time.time()) < 60
    assert 86_400 - 60 < first - now < YEAR + 60
    assert second - first > 100 * YEAR
    assert len({round(mono), round(first_mono), round(second_mono)}) == 3
    with Executor(ExecutorConfig(isolation=executor.isolation, workers=1, **TEST_LIMITS)) as other:
        elsewhere = parse_value(other.run_batch([ExecRequest(clocks, "")], clock=1)[0].output)[0]
    assert abs(elsewhere - first) > 60  # drawn anew for every executor: nothing to learn across runs
    # A C clock, reached by attribute without importing anything banned, in every child: each
    # keeps the worker's offset although its environment does not show it.
    year = "import email.utils, os\ndef f():\n    return [email.utils.datetime.datetime.now().year, sorted(os.environ)]"
    plain = executor.run_batch([ExecRequest(year, "")])[0]
    skip_if_unimportable(plain)
    seen = [parse_value(r.output) for r in executor.run_batch([ExecRequest(year, "")] * 6, hash_seed=1, clock=2)]
    assert all(y - parse_value(plain.output)[0] >= 100 for y, _ in seen)
    assert all(names == parse_value(plain.output)[1] == ["HOME", "LANG", "PATH"] for _, names in seen)
    timed = executor.run_batch([ExecRequest("def f():\n    while True:\n        pass", "")], clock=2)[0]
    assert timed.status is ExecStatus.TIMEOUT and timed.seconds < TEST_LIMITS["timeout"] + 0.5


def _faketimes() -> list[str]:
    """Every libfaketime here: Debian's, and the one PyPI's `libfaketime` vendors (the default install's)."""
    import importlib.util

    found = {find_faketime()}
    spec = importlib.util.find_spec("libfaketime")
    for location in (spec.submodule_search_locations or []) if spec else []:
        found.add(find_faketime(os.path.join(location, "vendor", "libfaketime", "src", "libfaketime.so.1")))
    return sorted(path for path in found if path)


@pytest.mark.parametrize("library", _faketimes())
def test_each_libfaketime_moves_the_clock_of_every_child(library):
    config = ExecutorConfig(isolation="bwrap" if BWRAP else "none", workers=1, faketime=library, **TEST_LIMITS)
    with Executor(config) as executor:
        results = executor.run_batch([ExecRequest("import time\ndef f():\n    return time.time()", "")] * 3, clock=2)
    assert all(parse_value(r.output) - time.time() > 100 * YEAR for r in results), results


def test_every_child_sees_the_same_process_ids(executor):
    requires_fresh(executor)
    ids = "import os\ndef f():\n    return [os.getpid(), os.getppid(), os.getpgrp()]"
    results = executor.run_batch([ExecRequest(ids, "")] * 6) + executor.run_batch(
        [ExecRequest(ids, "")] * 3, hash_seed=1, clock=2
    )
    assert {result.output for result in results} == {"[1, 0, 1]"}


# -- the run-time policy --------------------------------------------------------------------------------

REFUSED = {
    "name resolver": "import pkgutil\ndef f():\n    return pkgutil.resolve_name('time.time')()",
    "locate": "import pydoc\ndef f():\n    return pydoc.locate('os.getpid')()",
    "date formatter": "import email.utils\ndef f():\n    return email.utils.formatdate()",
    "re-exported os": "import fnmatch\ndef f():\n    return fnmatch.os.getpid()",
    "file times": "import fnmatch\ndef f():\n    return fnmatch.os.path.getmtime('/')",
    "open by another name": "import codecs\ndef f():\n    codecs.open('x', 'w').write('a')",
    "randomness": "import pkgutil\ndef f():\n    return str(pkgutil.resolve_name('uuid.uuid4')())",
    "a cached banned module": "import time\ndef f():\n    return 1",
    "a C half": "import _heapq\ndef f():\n    return 1",
    "caught and hidden": "import pkgutil\ndef f():\n    try:\n        return pkgutil.resolve_name('time.time')()\n"
    "    except BaseException:\n        return 0",
    "processes": "import fnmatch\ndef f():\n    return fnmatch.os.system('true')",
    "forged result": "def f():\n    import io\n    io.open(3, 'w').write('{}')",
}

ALLOWED = {
    "difflib": (
        "import difflib\ndef f():\n    return difflib.SequenceMatcher(None, 'abc', 'abd').ratio()",
        "0.6666666666666666",
    ),
    "base64 (loads binascii)": ("import base64\ndef f():\n    return base64.b64encode(b'hi')", "b'aGk='"),
    "dataclass": (
        "from dataclasses import dataclass\n@dataclass\nclass P:\n    a: int\ndef f():\n    return P(3).a",
        "3",
    ),
    "namedtuple": (
        "from collections import namedtuple\nP = namedtuple('P', 'a b')\ndef f():\n    return P(1, 2).b",
        "2",
    ),
    "statistics": ("import statistics\ndef f():\n    return statistics.median([3, 1, 2])", "2"),
    "a seeded generator": (
        "import pkgutil\ndef f():\n    return pkgutil.resolve_name('fractions.Fraction')(1, 3).denominator",
        "3",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_policy_refuses_what_the_static_filter_misses(executor, name):
    result = executor.run_batch([ExecRequest(REFUSED[name], "", POLICY)])[0]
    skip_if_unimportable(result)
    assert result.status is ExecStatus.BANNED, result
    assert result.error.startswith("refused at run time: ")


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_the_policy_lets_ordinary_programs_run(executor, name):
    source, output = ALLOWED[name]
    result = executor.run_batch([ExecRequest(source, "", POLICY)])[0]
    skip_if_unimportable(result)
    assert result.output == output, result


def test_without_a_policy_nothing_is_refused(executor):
    result = executor.run_batch([ExecRequest(REFUSED["re-exported os"], "")])[0]
    skip_if_unimportable(result)
    assert result.status is ExecStatus.OK, result


# -- the caller survives whatever a child sends back -----------------------------------------------------

FORGED_OUTPUTS = ["frozenset([[1]])", "(" + "9" * 400 + "+1j)", "{[]: 1}", "[" * 150 + "]" * 150, "1" * 5000]


def test_a_forged_output_the_caller_cannot_parse_costs_one_request(executor):
    """A child writes its own result message, with an output that once made the caller's output
    check raise (and the whole batch was lost), then exits."""
    forgers = [
        ExecRequest(
            "import json, os\ndef f():\n"
            f"    os.write(3, json.dumps({{'status': 'ok', 'output': {output!r}, 'error': ''}}).encode())\n"
            "    os._exit(0)",
            "",
        )
        for output in FORGED_OUTPUTS
    ]
    results = executor.run_batch([*forgers, ExecRequest("def f():\n    return 7", "")])
    assert [r.status for r in results[:-1]] == [ExecStatus.ERROR] * len(FORGED_OUTPUTS), results
    assert all("canonical" in r.error for r in results[:-1]), results
    assert results[-1].output == "7"


# -- workers replaced off the dispatch path ---------------------------------------------------------------

FORGE = """
    import os
    def f():
        os.write(3, b"sandbox setup failed: OSError()")
        os._exit(113)
"""


def test_a_program_cannot_pass_for_a_broken_sandbox(executor):
    """Forging the setup-failure exit costs an ordinary error, not a sandbox restart, so a batch of
    forgers runs as fast as a batch of programs that raise."""
    forgers = [ExecRequest(program(FORGE), "")] * 24
    raisers = [ExecRequest("def f():\n    raise ValueError", "")] * 24
    executor.run_batch(raisers[:4])
    started = time.perf_counter()
    executor.run_batch(raisers)
    raising = time.perf_counter() - started
    starts = {w.started for group in executor._groups.values() for w in group}
    started = time.perf_counter()
    results = executor.run_batch(forgers)
    forging = time.perf_counter() - started
    assert {r.error for r in results} == {"exited with code 113 before returning"}
    assert {w.started for group in executor._groups.values() for w in group} == starts  # none restarted
    assert forging < 2 * raising + 0.2


def test_a_slow_replacement_does_not_hold_up_the_batch(monkeypatch):
    """A worker that dies is replaced in the background: the batch goes on with the others."""
    config = ExecutorConfig(isolation="none", workers=2, **TEST_LIMITS)
    with Executor(config) as executor:
        executor.run_batch([ExecRequest("def f():\n    return 1", "")] * 2)
        real = WorkerHandle.wait_ready

        def slow(self):
            time.sleep(3)
            real(self)

        monkeypatch.setattr(WorkerHandle, "wait_ready", slow)
        victim = executor._groups[Ambient()][0]
        threading.Timer(0.3, lambda: os.killpg(victim.process.pid, 9)).start()
        sleeper = "import time\ndef f(x):\n    time.sleep(0.05)\n    return x"
        started = time.perf_counter()
        results = executor.run_batch([ExecRequest(sleeper, str(i)) for i in range(40)])
        elapsed = time.perf_counter() - started
        died = [r for r in results if not r.ok]
        assert len(died) <= 1 and all("worker died" in r.error for r in died), died
        assert elapsed < 2.8, f"the batch waited for the replacement ({elapsed:.1f} s)"
        monkeypatch.setattr(WorkerHandle, "wait_ready", real)
        assert executor.run_batch([ExecRequest("def f():\n    return 2", "")] * 4)[0].output == "2"


def test_a_replacement_that_cannot_start_is_an_error_and_is_tried_again(monkeypatch):
    with Executor(ExecutorConfig(isolation="none", workers=1, **TEST_LIMITS)) as executor:
        executor.run("def f():\n    return 1", "")
        real = Launcher.start

        def broken(self, ambient, slot):
            raise ExecutorError("no more sandboxes")

        for _ in range(50):  # a successor already being started would serve the run below: let it land
            if not executor._starting.get(Ambient()):
                break
            time.sleep(0.1)
            executor.run("def f():\n    return 1", "")
        monkeypatch.setattr(Launcher, "start", broken)
        group = executor._groups[Ambient()]
        for victim in list(group):  # every worker dies, and is to be replaced (as the pool does on a death)
            os.killpg(victim.process.pid, 9)
            victim.process.wait()
            executor._replace_later(group, victim, Ambient())
        with pytest.raises(ExecutorError, match="no more sandboxes"):
            executor.run("def f():\n    return 1", "")
        monkeypatch.setattr(Launcher, "start", real)
        assert executor.run("def f():\n    return 2", "").output == "2"


def test_private_directory_permissions_are_the_childs_own(executor):
    requires_fresh(executor)
    mode = executor.run("import os\ndef f():\n    s = os.stat('.')\n    return [oct(s.st_mode & 0o777), s.st_uid]", "")
    uid = 65534 if os.geteuid() == 0 else os.getuid()
    assert parse_value(mode.output) == [oct(stat.S_IRWXU), uid]


# -- validation: tasks that are not repeatable are not stored -------------------------------------------

NOT_REPEATABLE = {
    # a name resolver given the clock
    "resolver": "import pkgutil\ndef f(a):\n    return int(pkgutil.resolve_name('time.time')()) // 86400",
    # a date formatter: the day, the same in two runs a second apart
    "formatter": "import email.utils\ndef f(a):\n    return email.utils.formatdate()[:16]",
    # the clock through C, by attribute: no import of a banned module, no guarded function
    "c clock": "import email.utils\ndef f(a):\n    return email.utils.datetime.date.today().isoformat()",
    # a process id through a documentation helper
    "pid": "import pydoc\ndef f(a):\n    return pydoc.os.getpid() % 7",
    # file times are the kernel's clock
    "file time": "import fnmatch\ndef f(a):\n    return int(fnmatch.os.stat('.').st_ctime) // 86400",
}


@pytest.mark.parametrize("name", sorted(NOT_REPEATABLE))
def test_validation_rejects_tasks_that_read_the_clock_or_a_pid(sandbox, name):
    from azr.tasks import Rejection, TaskType, TripletProposal
    from azr.tasks.validate import ValidationConfig, Validator

    proposal = TripletProposal(TaskType.DEDUCTION, NOT_REPEATABLE[name], "1")
    checked = Validator(sandbox).validate([proposal])[0]
    if "No module named" in checked.detail:
        pytest.skip(checked.detail)
    assert checked.rejection is Rejection.BANNED, checked
    # Without the run-time policy, the two runs' clocks and ids decide: a clock differs between
    # them; a process id is the same for every child, ever, so what reads it is repeatable.
    alone = Validator(sandbox, ValidationConfig(policy=False)).validate([proposal])[0]
    if name == "pid" and fresh(sandbox):
        assert alone.valid and alone.task.output == "1", alone
    elif name != "file time" and find_faketime() is not None:
        assert alone.rejection is Rejection.NONDETERMINISTIC, alone


# -- found by a red team against the first version: the runs told apart, the policy escaped ---------------

UNDONE = {
    # knows which run it is in (seed 0 turns hash randomization off) and takes the offset back off
    "run detected": "import dataclasses\ndef f(a):\n    dt = dataclasses.sys.modules['datetime']\n"
    "    now = dt.datetime.now()\n    if dataclasses.sys.flags.hash_randomization:\n"
    "        now -= dt.timedelta(seconds=41234567.25)\n    return now.isoformat()[:13]",
    # sets libfaketime's offset to nothing, where it would be read again
    "offset rewritten": "import dataclasses\ndef f(a):\n    m = dataclasses.sys.modules\n"
    "    m['os'].environ['FAKETIME'] = '+0'\n    return m['datetime'].datetime.now().isoformat()[:13]",
    # a coarse reading, the same for two clocks a year apart
    "century": "import dataclasses\ndef f(a):\n"
    "    return dataclasses.sys.modules['datetime'].datetime.now().year // 100",
    # the machine's free memory (sysinfo)
    "free memory": "import dataclasses\ndef f(a):\n    os = dataclasses.sys.modules['os']\n"
    "    return os.sysconf('SC_AVPHYS_PAGES') // 2**20",
    # file times, by the import system's own helper
    "file time": "import dataclasses\ndef f(a):\n"
    "    return int(dataclasses.sys.modules['importlib._bootstrap_external']._path_stat('/tmp').st_mtime) // 3600",
}


@pytest.mark.parametrize("policy", [True, False], ids=["policy", "no-policy"])
@pytest.mark.parametrize("name", sorted(UNDONE))
def test_no_task_can_undo_or_outlast_the_clock_offset(sandbox, name, policy):
    from azr.tasks import TaskType, TripletProposal
    from azr.tasks.validate import ValidationConfig, Validator

    if name == "file time" and not policy:
        pytest.skip("file times are the kernel's clock: only the policy holds them (a known limit)")
    if find_faketime() is None:
        pytest.skip("no libfaketime here")
    proposal = TripletProposal(TaskType.DEDUCTION, UNDONE[name], "1")
    checked = Validator(sandbox, ValidationConfig(policy=policy)).validate([proposal])[0]
    assert not checked.valid, checked
    assert checked.rejection.value in ("banned", "nondeterministic"), checked


ESCAPES = {
    "the policy's own object": "import dataclasses\ndef f():\n    m = dataclasses.sys.modules\n"
    "    m['azr.executor.child']._policy._for_program = lambda frame: False\n    return m['os'].getpid()",
    "a call through the import system": "import dataclasses\ndef f():\n    m = dataclasses.sys.modules\n"
    "    return m['importlib._bootstrap']._call_with_frames_removed(m['time'].time)",
    "the import system's writer": "import dataclasses\ndef f():\n"
    "    dataclasses.sys.modules['importlib._bootstrap_external']._write_atomic('/tmp/x.py', b'X = 1')",
    "a frame that passes for a library": "import types, dataclasses\nasync def g():\n    def inner(m):\n"
    "        return m['os'].getpid()\ndef f():\n    m = dataclasses.sys.modules\n    c = g()\n"
    "    code = next(k for k in c.cr_code.co_consts if isinstance(k, types.CodeType))\n    c.close()\n"
    "    code = code.replace(co_filename='<frozen zipimport>', co_name='<module>')\n"
    "    return types.FunctionType(code, {'__builtins__': m['builtins']})(m)",
    "a captured module": "import dataclasses\ndef f():\n"
    "    return dataclasses.sys.modules['resource'].getrusage(0).ru_utime",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_the_policy_cannot_be_escaped_by_known_routes(executor, name):
    result = executor.run_batch([ExecRequest(ESCAPES[name], "", POLICY)])[0]
    skip_if_unimportable(result)
    assert result.status is not ExecStatus.OK, result


def test_no_lock_on_a_shared_file_reaches_another_request(executor):
    """Every sandbox sees the same read-only files (the library, /dev/null): a lock on one would be
    a channel between requests."""
    lock = "import fcntl\ndef f():\n    with open('/dev/null', 'rb') as h:\n"
    results = executor.run_batch(
        [
            ExecRequest(lock + "        fcntl.flock(h.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)", ""),
            ExecRequest(lock + "        fcntl.lockf(h.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)", ""),
        ]
    )
    for result in results:
        skip_if_unimportable(result)
        assert "PermissionError" in result.error and "Operation not permitted" in result.error, result


def test_only_the_azr_package_is_on_the_workers_import_path(tmp_path):
    """Not the directory it lives in: a checkout's root holds tests, benchmarks and run directories."""
    with Executor(ExecutorConfig(isolation="none", workers=1, **TEST_LIMITS)) as executor:
        result = executor.run("import dataclasses\ndef f():\n    return dataclasses.sys.path[0]", "")
        root = parse_value(result.output)
        assert os.listdir(root) == ["azr"], root
