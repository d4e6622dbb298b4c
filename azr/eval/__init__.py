"""Evaluation: the harness (generate, parse, score: pass@k) and the named benchmarks."""
