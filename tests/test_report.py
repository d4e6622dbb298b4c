"""Reading a run back: the text summary from hand-made metrics rows, and `azr report` (plots and an
HTML page whose model text is escaped) on a hand-made run directory."""

import json
import re
from html.parser import HTMLParser

import matplotlib.image

from azr.cli import main
from azr.report.summary import TYPES, plot_groups, plot_rows, read_metrics, smoothing_window, spread, summary
from azr.tasks import TaskType, TripletTask
from azr.tasks.store import TaskStore


def test_summary_by_hand():
    rows = [{"step": 0, "eval/deduction/pass@1": 0.1}]
    for step in range(1, 5):
        accuracy = 0.0 if step < 3 else 1.0
        rows.append({"step": step, "time/step": float(step), "propose/deduction/valid_rate": step / 4,
                     "solve/deduction/accuracy": accuracy, "store/deduction/size": 10 + step})  # fmt: skip
    rows[-1]["eval/deduction/pass@1"] = 0.3
    lines = summary(rows, window=2).splitlines()
    assert lines[0] == "steps 1-4: first -> last 2 steps (held-out: first -> last eval)"
    # valid: mean(0.25, 0.5) -> mean(0.75, 1.0); accuracy 0 -> 1; held-out 0.1 -> 0.3
    assert lines[2].split() == ["deduction", "0.38", "->", "0.88", "0.00", "->", "1.00", "0.10", "->", "0.30"]
    assert len(lines) == 4  # no abduction or induction rows: nothing was logged for them
    assert lines[3] == "2.5 s a step; buffers: deduction 14"
    assert summary([{"step": 0, "eval/deduction/pass@1": 0.1}]) == "no steps yet"
    rows[0]["eval/cruxeval/abduction/pass@1"], rows[-1]["eval/cruxeval/abduction/pass@1"] = 0.02, 0.05
    assert summary(rows, window=2).splitlines()[3].split() == ["abduction", "0.02", "->", "0.05", "(cruxeval)"]


# -- azr report: the HTML page and its plots --------------------------------------------------------

XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def _run_dir(tmp_path, steps=30):
    """A run directory by hand: metrics with evaluations at steps 0, 10, 20..., hostile samples and config."""
    run = tmp_path / "run"
    run.mkdir()
    rows = []
    for step in range(steps + 1):
        row = {"step": step, "time": 1000.0 + 10 * step}
        if step % 10 == 0:
            row |= {f"eval/{t}/pass@1": 0.1 + step / 1000 for t in TYPES} | {"time/eval": 3.0}
            row["eval/cruxeval/deduction/pass@1"] = 0.2
        if step:
            for t in TYPES:
                row |= {f"propose/{t}/reward": -0.5 + step / 100, f"solve/{t}/reward": step / 100,
                        f"solve/{t}/accuracy": (step % 3) / 2, f"propose/{t}/valid_rate": 0.75,
                        f"store/{t}/size": 10 + step, f"propose/{t}/distinct_programs": 3,
                        f"propose/{t}/program_chars": 80.0}  # fmt: skip
                if step % 2:
                    row[f"propose/{t}/rejected/syntax"] = 0.25
            row |= {"store/added": 9, "time/step": 2.0, "time/generate": 1.5, "tokens/per_second": 300.0}
        rows.append(row)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    (run / "metrics.jsonl").write_text(text + '{"step": 31, "time/st', encoding="utf-8")  # cut short by a crash
    samples = [
        {"step": step, "role": role, "task_type": t, "prompt": "x" * 900 + XSS[0], "completion": XSS[1],
         "outcome": "valid" if role == "propose" else "wrong", "detail": XSS[0], "induction": t == "induction"}
        for step in range(1, steps + 1) for role in ("propose", "solve") for t in TYPES for _ in range(3)
    ]  # fmt: skip
    lines = [json.dumps(row) + "\n" for row in samples]
    (run / "samples.jsonl").write_text("".join(lines[:5]) + "not json\n" + "".join(lines[5:]), encoding="utf-8")
    (run / "config.yaml").write_text("model:\n  path: <b>bold</b> & 'quoted'\n", encoding="utf-8")
    return run


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_report_writes_plots_and_an_escaped_page(tmp_path, capsys):
    run = _run_dir(tmp_path)
    assert main(["report", "--run-dir", str(run)]) == 0
    printed = capsys.readouterr().out
    out = run / "report"
    assert printed.splitlines()[0] == f"report: {out / 'index.html'}"
    assert "valid proposals" in printed  # the summary follows
    for name in ("rewards", "proposals", "store", "validation", "timings"):
        data = (out / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert matplotlib.image.imread(out / f"{name}.png").size > 0
    assert not (out / "update.png").exists()  # no update/* metrics
    page = (out / "index.html").read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(page)
    parser.close()
    tags = parser.tags
    assert {"html", "pre", "img", "table"} - {tag for tag, _ in tags} == {"table"}  # no tasks.db, no store table
    assert not [tag for tag, _ in tags if tag in ("script", "iframe", "object", "embed", "link")]
    assert not [attrs for _, attrs in tags if any(name.startswith("on") for name in attrs)]
    assert sorted(attrs["src"] for tag, attrs in tags if tag == "img") == sorted(
        f"{name}.png" for name in ("rewards", "proposals", "store", "validation", "timings")
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;quoted&#x27;" in page
    assert "skipped: the run logged none of these metrics" in page  # the update plot
    assert "x" * 601 not in page  # prompts cut to their last 600 characters
    shown = [int(step) for step in re.findall(r"<h3>step (\d+)</h3>", page)]
    assert len(shown) == 20 and shown[0] == 1 and shown[-1] == 30
    assert page.count('class="sample"') == 20 * 2 * len(TYPES) * 2  # 2 of the 3 per (step, role, task type)


def test_report_options_and_the_store_table(tmp_path):
    run = _run_dir(tmp_path, steps=4)
    with TaskStore(run / "tasks.db") as store:
        store.add([TripletTask(TaskType.DEDUCTION, "def f(x):\n    return x", "1", "1", step=0, source="identity")])
        store.add([TripletTask(TaskType.DEDUCTION, "def f(x):\n    return x", "2", "2", step=1, source="proposed")])
    out = tmp_path / "elsewhere"
    assert main(["report", "--run-dir", str(run), "--out", str(out), "--samples", "1", "--steps", "2"]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<tr><td>deduction</td><td>2</td><td>1</td><td>1</td><td>22.0</td><td>0</td></tr>" in page
    assert re.findall(r"<h3>step (\d+)</h3>", page) == ["1", "4"]
    assert page.count('class="sample"') == 2 * 2 * len(TYPES)  # one per (step, role, task type)


def test_report_bad_run_dirs_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["report", "--run-dir", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run directory" in err and "Traceback" not in err
    assert main(["report", "--run-dir", str(tmp_path)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
    run = _run_dir(tmp_path, steps=2)
    assert main(["report", "--run-dir", str(run), "--samples", "-1"]) == 2
    (tmp_path / "file").write_text("")
    assert main(["report", "--run-dir", str(run), "--out", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err.count("\n") == 2


def test_read_metrics_skips_damaged_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "a": 0.5, "b": "text", "c": true}\n[1]\n{"a": 1}\n\n{"step": 2, "a": NaN}\n{"st')
    assert read_metrics(path) == [{"step": 1, "a": 0.5}, {"step": 2}]


def test_plot_groups_and_rejections_filled_with_zeros():
    rows = [
        {"step": 0, "eval/deduction/pass@1": 0.1, "eval/deduction/pass@5": 0.3, "eval/bench/abduction/pass@1": 0.2},
        {"step": 1, "propose/deduction/valid_rate": 0.5, "propose/deduction/rejected/syntax": 0.5, "update/kl": 0.0},
        {"step": 2, "propose/deduction/valid_rate": 1.0},
        {"step": 3},
    ]
    groups = {group.name: group for group in plot_groups(rows)}
    assert [panel[0] for panel in groups["validation"].panels] == ["bench pass@1", "held-out pass@1", "held-out pass@5"]
    assert groups["validation"].labels["eval/bench/abduction/pass@1"] == "abduction"
    assert groups["proposals"].panels[1] == (
        "rejected deduction proposals (share)",
        ["propose/deduction/rejected/syntax"],
    )
    assert not groups["rewards"].panels and not groups["timings"].panels and groups["update"].panels
    filled = plot_rows(rows)
    assert [r.get("propose/deduction/rejected/syntax") for r in filled] == [None, 0.5, 0.0, None]
    assert spread(list(range(1, 101)), 5) == [1, 26, 51, 75, 100]
    assert spread([3, 4], 5) == [3, 4] and spread([3, 4, 5], 1) == [5]
    assert smoothing_window(10) == 1 and smoothing_window(60) == 5 and smoothing_window(10_000) == 50
