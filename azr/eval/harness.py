"""Evaluating a model, or someone else's completions, on a benchmark: pass@k and per-task verdicts.

Three steps, whatever the benchmark (azr.eval.benchmarks):

1. **generate**: `samples` completions per problem through the project's generator, with the same
   template as training (the solver's prompt for deduction, abduction and induction; the
   template's code and math prompts for the others), or read them from a file.
2. **parse**: a completion becomes an answer through the template (external completions are taken
   as the bare answer: a literal, an argument list or `f(...)` call, a program, a final answer).
3. **score**: every answer is judged in the sandbox (the verifier, a program's tests, or
   math-verify), and pass@k is the unbiased estimate from the `samples` verdicts of each problem.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from azr.engine.generation import Generator, Sampling
from azr.eval.benchmarks import Benchmark, CodeProblem, MathProblem, ReasoningProblem
from azr.prompts import Template
from azr.tasks import Answer, FormatError, Stage, Task, TaskType, Verdict
from azr.tasks.guard import guarded
from azr.tasks.verify import Verifier


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from n samples of which c are correct (Chen et al. 2021,
    arXiv 2107.03374, Eq. 1): 1 - C(n-c, k) / C(n, k), as a product that never overflows."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


# -- 1. generate ---------------------------------------------------------------------------------


def generate(
    generator: Generator,
    template: Template,
    benchmark: Benchmark,
    samples: int,
    sampling: Sampling,
    seed: int,
    chat: Any = None,
) -> list[list[str]]:
    """`samples` completions per problem. Problems that stop on different strings (a function
    ends at the next `def`, a stdin program does not) are generated in separate batches."""
    batches: dict[tuple[str, ...], list[int]] = {}
    prompts = []
    for index, problem in enumerate(benchmark.problems):
        prompt, stops = _prompt(template, problem)
        prompts.append(template.render(prompt, chat))
        batches.setdefault(stops, []).append(index)
    texts: list[list[str]] = [[] for _ in prompts]
    for stops, indices in batches.items():
        done = generator.generate([prompts[i] for i in indices], samples, replace(sampling, stop=stops), seed)
        for i, completions in zip(indices, done, strict=True):
            texts[i] = [c.text for c in completions]
    return texts


def _prompt(template: Template, problem: Any) -> tuple[str, tuple[str, ...]]:
    if isinstance(problem, ReasoningProblem):
        return template.solve_prompt(problem.task), template.stop
    if isinstance(problem, CodeProblem):
        return template.code_prompt(problem.prompt), template.code_stops(problem.stdin)
    return template.math_prompt(problem.problem), template.math_stop


# -- 2. parse ------------------------------------------------------------------------------------


def parse(template: Template | None, benchmark: Benchmark, completions: Sequence[Sequence[str]]) -> list[list[Any]]:
    """The answer in each completion, read by `template`; None reads external completions."""
    return [
        [_parse(template, problem, text) for text in texts]
        for problem, texts in zip(benchmark.problems, completions, strict=True)
    ]


def _parse(template: Template | None, problem: Any, text: str) -> Any:
    if isinstance(problem, ReasoningProblem):
        task_type = problem.task.task_type
        if template is not None:  # guarded: validation during training must not end the run
            return guarded(Stage.PARSE_ANSWER, template.parse_answer, task_type, text)
        text = text.strip()
        if task_type == TaskType.ABDUCTION and text.startswith("f(") and text.endswith(")"):
            text = text[2:-1]  # CRUXEval-I answers are whole calls
        return Answer(task_type, text)
    if isinstance(problem, CodeProblem):
        if template is not None:
            return template.parse_code(problem.prompt, text, problem.stdin)
        from azr.eval.benchmarks.code import program_of

        return program_of(problem, text)
    return template.parse_math(text) if template is not None else text


# -- 3. score ------------------------------------------------------------------------------------


def score(benchmark: Benchmark, answers: Sequence[Sequence[Any]], verifier: Verifier) -> list[list[Verdict]]:
    """The verdict on each answer, judged in the sandbox of `verifier`."""
    if benchmark.kind == "code":
        from azr.eval.benchmarks import code

        return code.score(verifier.executor, benchmark, answers)
    if benchmark.kind == "math":
        from azr.eval.benchmarks import maths

        return maths.score(verifier.executor, benchmark, answers)
    flat = [(p.task, a) for p, per_problem in zip(benchmark.problems, answers, strict=True) for a in per_problem]
    verdicts = iter(verifier.verify(flat))
    return [[next(verdicts) for _ in per_problem] for per_problem in answers]


def judge(
    benchmark: Benchmark,
    completions: Sequence[Sequence[str]],
    template: Template | None,
    verifier: Verifier,
    ks: Sequence[int],
) -> dict[str, Any]:
    """Steps 2 and 3 on a benchmark's completions (read by `template`; None: external ones), and
    their report."""
    answers = parse(template, benchmark, completions)
    return report(benchmark, completions, answers, score(benchmark, answers, verifier), ks)


def report(
    benchmark: Benchmark,
    completions: Sequence[Sequence[str]],
    answers: Sequence[Sequence[Any]],
    verdicts: Sequence[Sequence[Verdict]],
    ks: Sequence[int],
) -> dict[str, Any]:
    """pass@k per group (task type, or the benchmark) for each k in `ks`, and per-task verdicts."""
    per_group: dict[str, list[list[float]]] = {}
    tasks = []
    for problem, texts, parsed, judged in zip(benchmark.problems, completions, answers, verdicts, strict=True):
        correct = [v.correct for v in judged]
        group = benchmark.group(problem)
        per_group.setdefault(group, []).append([pass_at_k(len(correct), sum(correct), k) for k in ks])
        tasks.append(
            {
                "task_id": problem.task_id,
                "group": group,
                **_describe(problem),
                "correct": correct,
                "reasons": [v.reason for v in judged],
                "details": [v.detail[:300] for v in judged],
                "answers": [None if isinstance(a, FormatError) else getattr(a, "text", a) for a in parsed],
                "completions": list(texts),
            }
        )
    results = {
        name: {**{f"pass@{k}": sum(row[i] for row in rows) / len(rows) for i, k in enumerate(ks)}, "n": len(rows)}
        for name, rows in sorted(per_group.items())
    }
    return {
        "source": benchmark.source,
        "kind": benchmark.kind,
        "skipped_rows": benchmark.skipped,
        "skip_reasons": benchmark.reasons,
        "results": results,
        "tasks": tasks,
    }


def _describe(problem: Any) -> dict[str, Any]:
    if isinstance(problem, ReasoningProblem):
        task = problem.task
        if task.task_type == TaskType.INDUCTION:
            return {"program": task.program, "input": list(task.inputs), "output": list(task.outputs)}  # type: ignore[union-attr]
        return {"program": task.program, "input": task.input, "output": task.output}  # type: ignore[union-attr]
    if isinstance(problem, MathProblem):
        return {"reference": problem.answer}
    return {}


def evaluate(
    generator: Generator,
    template: Template,
    verifier: Verifier,
    tasks: Sequence[Task],
    samples: int,
    sampling: Sampling,
    seed: int,
    ks: Sequence[int] = (1,),
) -> dict[str, Any]:
    """pass@k per task type of a model on self-play tasks (training's validation, the build's
    scores): generate, parse and score in one call."""
    if max(ks) > samples:
        raise ValueError(f"pass@{max(ks)} needs at least {max(ks)} samples per task, not {samples}")
    benchmark = Benchmark("tasks", "reasoning", "", [ReasoningProblem(str(i), t) for i, t in enumerate(tasks)])
    return judge(benchmark, generate(generator, template, benchmark, samples, sampling, seed), template, verifier, ks)


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
