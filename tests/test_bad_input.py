"""Every file and value a user hands to `azr` is read defensively: a bad one is ONE line on stderr
(`azr <cmd>: error: ...`), exit code 2, never a traceback. Run in-process through azr.cli.main
(fast); nothing here loads a model, and only a few cases start sandbox workers."""

import json
import subprocess
import sys

import pytest

from azr.cli import UsageError, main
from azr.config import Config, ConfigError
from azr.config.files import from_yaml, load, to_yaml

HUGE = "1234567890123456789012345"  # past SQLite's and torch's 64-bit integers
SANDBOX = ["--isolation", "none", "--workers", "1"]  # no fallback warning where bubblewrap cannot run

FILES = {
    # configs
    "not-utf8.yaml": b"\xff\xfe model: {}",
    "list.yaml": b"- 1\n- 2\n",
    "scalar.yaml": b"hello\n",
    "unclosed.yaml": b"model: [unclosed\n",
    "python-tag.yaml": b'!!python/object/apply:os.system ["echo hi"]\n',
    "custom-tag.yaml": b"!foo bar\n",
    "nested-tag.yaml": b"model:\n  path: !!python/name:os.system\n",
    "duplicate.yaml": b"train: {steps: 1}\ntrain: {steps: 2}\n",
    "nul.yaml": b"train:\n  steps: 1\x00\n",
    "deep.yaml": b"[" * 5000 + b"]" * 5000 + b"\n",
    "empty.yaml": b"",
    # JSON Lines
    "not-utf8.jsonl": b'{"snippet": "def f(x):\\n    return x", "input": "1"}\n\xff\xfe\n',
    "string-row.jsonl": b'"one\\ntwo"\n',
    "completions.jsonl": b'{"task_id": "x", "completion": "1"}\n',
    "not-utf8-completions.jsonl": b'{"task_id": "x", "completion": "1"}\n\xff\n',
    "a-file": b"not a directory\n",
}
DIRECTORIES = ("dir.yaml", "dir.jsonl", "run")


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """A directory of bad files (and dirs), and `run`: a run directory with an empty task store."""
    from azr.tasks.store import TaskStore

    root = tmp_path_factory.mktemp("bad")
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    for name in DIRECTORIES:
        (root / name).mkdir()
    TaskStore(root / "run" / "tasks.db").close()
    return root


def one_error_line(capsys, argv: list[str]) -> str:
    """Run `azr argv`; assert exit code 2 and exactly one line on stderr, no traceback; return it."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"azr {argv[0]}"), err
    return lines[0]


# -- azr train --config FILE: parsed before anything heavy ------------------------------------------


@pytest.mark.parametrize(
    ("file", "phrase"),
    [
        ("not-utf8.yaml", "not-utf8.yaml: line 1: not UTF-8 text: save it as UTF-8"),
        ("list.yaml", "it holds a list, not a mapping of keys"),
        ("scalar.yaml", "it holds the single value 'hello', not a mapping of keys"),
        ("unclosed.yaml", "unclosed.yaml: not valid YAML (line 2"),
        ("dir.yaml", "dir.yaml is a directory, not a config file"),
        ("python-tag.yaml", "the YAML tag !!python/object/apply:os.system is not allowed"),
        ("custom-tag.yaml", "line 1, column 1: the YAML tag !foo is not allowed"),
        ("nested-tag.yaml", "line 2, column 9: the YAML tag !!python/name:os.system is not allowed"),
        ("duplicate.yaml", "found duplicate key"),
        ("nul.yaml", "not valid YAML (character #x0000"),
        ("deep.yaml", "nested too deeply"),
    ],
)
def test_train_config_file(capsys, d, file, phrase):
    line = one_error_line(capsys, ["train", "--run-dir", str(d / "train-run"), "--config", str(d / file)])
    assert phrase in line


def test_an_empty_config_file_changes_nothing(d):
    assert load(str(d / "empty.yaml")) == Config()


# -- overrides and values no type check catches -----------------------------------------------------


@pytest.mark.parametrize(
    ("override", "phrase"),
    [
        ("selfplay.task_types=[unclosed", "override 'selfplay.task_types=[unclosed': not valid YAML"),
        ("model.path=!!python/name:os.system", "the YAML tag !!python/name:os.system is not allowed"),
        ("train.steps=\udcff", "not UTF-8 text"),  # an argv byte that is not UTF-8
        ("selfplay.task_types=[deduction, {a: 1}]", "selfplay.task_types: {'a': 1} is not a string"),
        ("selfplay.hash_seeds=[0, {a: 1}]", "selfplay.hash_seeds: {'a': 1} is not an integer"),
        ("selfplay.hash_seeds=[0, 4294967296]", "each is a PYTHONHASHSEED, in [0, 2**32 - 1]"),
        (f"train.seed={HUGE}", "train.seed must be a 64-bit integer"),
        ("optim.lr=inf", "optim.lr must be a finite number"),
        ("executor.timeout=7200", "executor.timeout must be > 0 and <= 3600 seconds"),
        (f"executor.memory_mb={HUGE}", "executor.memory_mb must be < 2**43"),
        ("model.device=cudax", "model.device must be auto, cpu, cuda or cuda:N"),
    ],
)
def test_config_value(override, phrase):
    with pytest.raises(ConfigError) as caught:
        load(None, [override])
    assert len(str(caught.value).splitlines()) == 1, caught.value
    assert phrase in str(caught.value)


# -- a run's config.yaml read back (hand-edited, cut short) ------------------------------------------

SAVED = to_yaml(Config())


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        (SAVED.replace("n_mc: 4", "n_mc: lots"), "selfplay.n_mc: Value 'lots' of type 'str' could not be converted"),
        (SAVED.replace("n_mc: 4", "n_mc: 4\n  bogus: 1"), "unknown key 'selfplay.bogus'"),
        ("- 1\n- 2\n", "it holds a list, not a mapping of keys"),
        ("hello", "it holds the single value 'hello'"),
        ("model: [unclosed\n", "not valid YAML (line 2"),
        (b"\xff\xfe model: {}", "line 1: not UTF-8 text"),
        ("", "it is empty"),
        ('!!python/object/apply:os.system ["echo hi"]\n', "the YAML tag !!python/object/apply:os.system"),
        ("train:\n  steps: !foo 3\n", "line 2, column 10: the YAML tag !foo is not allowed"),
    ],
)
def test_saved_config(text, phrase):
    with pytest.raises(ConfigError) as caught:
        from_yaml(text)
    assert len(str(caught.value).splitlines()) == 1, caught.value
    assert phrase in str(caught.value)


def test_saved_config_round_trips():
    assert from_yaml(SAVED) == Config() == from_yaml(SAVED.encode())


# -- seed files, checked before training loads a model ------------------------------------------------


@pytest.mark.parametrize(
    ("file", "phrase"),
    [
        ("missing.jsonl", "no file"),
        ("dir.jsonl", "dir.jsonl is a directory, not a seed file"),
        ("not-utf8.jsonl", "not-utf8.jsonl: line 2: not UTF-8 text"),
    ],
)
def test_seed_files_are_read_defensively(d, file, phrase, capsys, tmp_path):
    from azr.cli import main

    assert main(["train", "--run-dir", str(tmp_path / "run"), f"selfplay.seed_files=[deduction:{d / file}]"]) == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and "selfplay.seed_files: " in error and phrase in error, error
    assert not (tmp_path / "run" / "tasks.db").exists()  # refused before anything was made


@pytest.mark.parametrize(
    ("bench", "phrase"),
    [
        ("not-utf8.jsonl", "not-utf8.jsonl: line 2: not UTF-8 text"),
        ("heldout={d}/dir.jsonl", "dir.jsonl is a directory"),
        ("{d}/missing.jsonl", "no file"),
    ],
)
def test_eval_bench_files_are_read_before_the_model_loads(d, bench, phrase, capsys, tmp_path):
    bench = bench.format(d=d) if "{d}" in bench else str(d / bench)
    line = one_error_line(capsys, ["train", "--run-dir", str(tmp_path / "run"), "eval.every=5", f"eval.bench={bench}"])
    assert "eval.bench: " in line and phrase in line


# -- azr tasks, eval, exec, verify ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        # --run-dir that is a file
        (["tasks", "import", "--identity", "--run-dir", "{d}/a-file"], "--run-dir {d}/a-file is not a directory"),
        (["tasks", "list", "--run-dir", "{d}/a-file"], "--run-dir {d}/a-file is not a directory"),
        (["tasks", "show", "--run-dir", "{d}/a-file", "1"], "--run-dir {d}/a-file is not a directory"),
        (["tasks", "export", "--run-dir", "{d}/a-file"], "--run-dir {d}/a-file is not a directory"),
        (["tasks", "import", "--identity", "--run-dir", "{d}/a-file/run"], "cannot create it"),
        # ids and limits past SQLite's integers; --out that cannot be written
        (["tasks", "show", "--run-dir", "{d}/run", HUGE], f"no task {HUGE} in"),
        (["tasks", "list", "--run-dir", "{d}/run", "--limit", "-1"], "--limit must be >= 0"),
        (["tasks", "export", "--run-dir", "{d}/run", "--out", "{d}/dir.jsonl"], "cannot write it: Is a directory"),
        (["tasks", "export", "--run-dir", "{d}/run", "--out", "{d}/nowhere/x.jsonl"], "cannot write it"),
        # input files: not UTF-8, a directory
        (["tasks", "import", "{d}/not-utf8.jsonl", "--task-type", "deduction", "--run-dir", "{d}/run"],
         "not-utf8.jsonl: line 2: not UTF-8 text"),
        (["tasks", "validate", "{d}/dir.jsonl", "--task-type", "deduction"], "dir.jsonl is a directory"),
        (["eval", "--completions", "{d}/not-utf8-completions.jsonl", "--out", "{d}/out.json"],
         "not-utf8-completions.jsonl: line 2: not UTF-8 text"),
        (["eval", "--completions", "{d}/dir.jsonl", "--out", "{d}/out.json"], "dir.jsonl is a directory"),
        (["eval", "--completions", "{d}/string-row.jsonl", "--out", "{d}/out.json"],
         'line 1: expected {"task_id", "completion"} ("one\\ntwo")'),
        (["eval", "--completions", "{d}/completions.jsonl", "--bench", "heldout={d}/dir.jsonl", "--out", "{d}/o.json"],
         "dir.jsonl is a directory, not a benchmark file"),
        (["eval", "--completions", "{d}/completions.jsonl", "--bench", "{d}/dir.jsonl", "--out", "{d}/o.json"],
         "--bench: {d}/dir.jsonl is a directory"),
        (["eval", "--completions", "{d}/completions.jsonl", "--bench", "cruxeval-o={d}/not-utf8.jsonl",
          "--out", "{d}/o.json", *SANDBOX], "not-utf8.jsonl: line 2: not UTF-8 text"),
        (["eval", "--seed", HUGE, "--out", "{d}/o.json"], "--seed must be a 64-bit integer"),
        (["eval", "--device", "bogus", "--out", "{d}/o.json"], "--device 'bogus': give auto, cpu, cuda or cuda:N"),
        (["exec", "{d}/not-utf8.jsonl", *SANDBOX], "not-utf8.jsonl: line 2: not UTF-8 text"),
        (["exec", "{d}/dir.jsonl"], "dir.jsonl is a directory"),
        (["exec", "--memory-mb", HUGE, "{d}/completions.jsonl"], "memory_mb must be < 2**43"),
        (["verify", "{d}/dir.jsonl"], "dir.jsonl is a directory"),
        (["build-base-model", "--out", "{d}/model", "--seed", HUGE], "--seed must be a 64-bit integer"),
    ],
)  # fmt: skip
def test_command(capsys, d, argv, phrase):
    line = one_error_line(capsys, [arg.replace("{d}", str(d)) for arg in argv])
    assert phrase.replace("{d}", str(d)) in line


def test_a_limit_past_sqlite_lists_everything(capsys, d):
    assert main(["tasks", "list", "--run-dir", str(d / "run"), "--limit", HUGE]) == 0
    assert capsys.readouterr().err == ""


def test_a_usage_error_is_one_line():
    assert str(UsageError("a worker said:\n  something\n")) == "a worker said:   something"


def test_stdin_that_is_not_utf8():
    """A real stdin, through a subprocess: the line of the bad bytes is named (answered lines may precede it)."""
    good = json.dumps({"id": 1, "program": "def f(x):\n    return x", "input": "1"}).encode()
    done = subprocess.run(
        [sys.executable, "-m", "azr.cli", "exec", *SANDBOX],
        input=good + b"\n\xff\n", capture_output=True, timeout=120,
    )  # fmt: skip
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert err.splitlines() == ["azr exec: error: stdin: line 2: not UTF-8 text: save it as UTF-8"]
