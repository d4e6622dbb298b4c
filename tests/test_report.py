"""The text summary of a run, from hand-made metrics rows."""

from azr.report import summary


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
