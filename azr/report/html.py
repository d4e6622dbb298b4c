"""The HTML of a run's report (`azr report`): one static page, no script, nothing loaded from elsewhere.

Model output, prompts, config and paths are untrusted text: every piece goes through `html.escape`
(quotes included) before it reaches the page.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROMPT_CHARS = 600
COMPLETION_CHARS = 4000
DETAIL_CHARS = 1000
_SHOWN = ("step", "role", "task_type", "prompt", "completion", "outcome", "detail")

_STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1300px; padding: 0 1em; color: #222; }
pre { background: #f6f6f6; padding: .5em; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .2em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; } .note, .label { color: #666; } .label { font-size: 85%; }
.sample { border-left: 3px solid #ccc; margin: .8em 0; padding-left: .8em; }
.good { color: #17702a; } .bad { color: #a4161a; }
"""

_GOOD = {"valid", "correct"}


@dataclass
class Page:
    """What the report shows; `write_report` in azr.report.summary gathers it from the run directory."""

    run_name: str
    run_path: str
    steps: list[int]
    seconds: float | None
    summary: str
    config: str | None
    plots: list[tuple[str, str | None]]
    """(title, PNG file name beside the page, or None when the run has none of the plot's metrics)"""
    store: list[dict[str, Any]] | str | None
    """rows per task type, or why tasks.db could not be read, or None without a tasks.db"""
    samples: list[tuple[int, list[dict[str, Any]]]]
    sample_steps: int
    per_group: int


def render(page: Page) -> str:
    """The page as one HTML document."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>azr report: {_e(page.run_name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Run {_e(page.run_name)}</h1>",
        f'<p class="note">{_e(page.run_path)}: {_e(_extent(page.steps, page.seconds))}</p>',
        "<h2>Summary</h2>",
        f"<pre>{_e(page.summary)}</pre>",
        *_store(page.store),
        "<h2>Plots</h2>",
        *_plots(page.plots),
        "<h2>Samples</h2>",
        *_samples(page),
        "<h2>Config</h2>",
        f"<pre>{_e(page.config)}</pre>" if page.config is not None else '<p class="note">no config.yaml</p>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _extent(steps: Sequence[int], seconds: float | None) -> str:
    if not steps:
        return "no steps logged"
    text = f"steps {min(steps)} to {max(steps)}"
    return text + (f", {datetime.timedelta(seconds=round(seconds))} of wall clock" if seconds is not None else "")


def _store(store: list[dict[str, Any]] | str | None) -> list[str]:
    if store is None:
        return []
    if isinstance(store, str):
        return ["<h2>Task store</h2>", f'<p class="note">{_e(store)}</p>']
    if not store:
        return ["<h2>Task store</h2>", '<p class="note">tasks.db holds no task</p>']
    head = "".join(f"<th>{_e(name)}</th>" for name in store[0])
    body = ["<tr>" + "".join(f"<td>{_e(_cell(value))}</td>" for value in row.values()) + "</tr>" for row in store]
    return ["<h2>Task store</h2>", f"<table><tr>{head}</tr>", *body, "</table>"]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _plots(plots: Sequence[tuple[str, str | None]]) -> list[str]:
    parts = []
    for title, file in plots:
        parts.append(f"<h3>{_e(title)}</h3>")
        if file is None:
            parts.append('<p class="note">skipped: the run logged none of these metrics</p>')
        else:
            parts.append(f'<img src="{_e(file)}" alt="{_e(title)}">')
    return parts


def _samples(page: Page) -> list[str]:
    if not page.samples:
        return ['<p class="note">no samples (samples.jsonl is missing or empty, or --samples is 0)</p>']
    shown = len(page.samples)
    parts = [
        f'<p class="note">up to {page.per_group} per step, role and task type, from {shown} of the '
        f"{page.sample_steps} steps logged, evenly spaced. Long prompts show their last {PROMPT_CHARS} characters.</p>"
    ]
    for step, rows in page.samples:
        parts.append(f"<h3>step {_e(step)}</h3>")
        parts += [_sample(row) for row in rows]
    return parts


def _sample(row: Mapping[str, Any]) -> str:
    outcome = str(row.get("outcome", ""))
    extra = "".join(f", {_e(key)}: {_e(value)}" for key, value in row.items() if key not in _SHOWN)
    prompt, completion = str(row.get("prompt", "")), str(row.get("completion", ""))
    detail = _cut(str(row.get("detail") or ""), DETAIL_CHARS, keep_end=False)
    return "\n".join(
        [
            '<div class="sample">',
            f"<p><b>{_e(row.get('role', '?'))} {_e(row.get('task_type', '?'))}</b>: "
            f'<span class="{"good" if outcome in _GOOD else "bad"}">{_e(outcome)}</span>{extra}</p>',
            f'<div class="label">prompt{_of(prompt, PROMPT_CHARS, "last")}</div>',
            f"<pre>{_e(_cut(prompt, PROMPT_CHARS, keep_end=True))}</pre>",
            f'<div class="label">completion{_of(completion, COMPLETION_CHARS, "first")}</div>',
            f"<pre>{_e(_cut(completion, COMPLETION_CHARS, keep_end=False))}</pre>",
            f"<p>{_e(detail)}</p>" if detail else "",
            "</div>",
        ]
    )


def _of(text: str, limit: int, end: str) -> str:
    return f" ({end} {limit} of {len(text)} chars)" if len(text) > limit else ""


def _cut(text: str, limit: int, keep_end: bool) -> str:
    if len(text) <= limit:
        return text
    return "…" + text[-limit:] if keep_end else text[:limit] + "…"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
