"""Plots of runs' metrics: a PNG per call, smoothing by hand."""

from azr.report.plots import curves, trailing_mean


def test_trailing_mean_by_hand():
    assert trailing_mean([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert trailing_mean([2.0, 4.0, 6.0], 10) == [2.0, 3.0, 4.0]  # fewer points than the window
    assert trailing_mean([], 3) == []


def test_curves_writes_a_png(tmp_path):
    rows = [{"step": 0, "eval/deduction/pass@1": 0.1}]
    rows += [{"step": s, "propose/deduction/valid_rate": (s % 3) / 2} for s in range(1, 21)]
    rows[-1]["eval/deduction/pass@1"] = 0.2
    panels = [("held-out", ["eval/deduction/pass@1"]), ("valid", ["propose/deduction/valid_rate"], 5)]
    out = curves({"a": rows, "b": rows[:5]}, panels, tmp_path / "plots" / "curves.png", title="t")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
