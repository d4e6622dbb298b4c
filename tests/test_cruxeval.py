"""Conformance against CRUXEval (../shared/data/cruxeval, MIT): 800 human-written functions with
gold inputs and outputs, and CodeLlama-7B's generations scored by CRUXEval's own harness.

- Every gold answer verifies as correct, as deduction (the output) and as abduction (the input).
- Our verdicts on the scored generations, with `python` equality, agree with CRUXEval's.

Skipped, and counted: the 12 functions whose gold input is not a literal (`dict(a=1)`,
`'$78'.upper()`, a lambda...), and generations that are not literals. CRUXEval's harness evaluates
them as code; we never evaluate model text, so they have no verdict here.
"""

import json

import pytest
from conftest import SHARED

from azr.executor import ExecRequest, Executor, ExecutorConfig, NotPlainData, parse_arguments, parse_value
from azr.tasks import Answer, TaskType, TripletTask
from azr.tasks.verify import Verifier

DATA = SHARED / "data" / "cruxeval"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"CRUXEval data not found at {DATA}")


def literal_rows() -> tuple[list[dict], int]:
    rows = [json.loads(line) for line in (DATA / "cruxeval.jsonl").read_text().splitlines()]
    kept = []
    for row in rows:
        try:
            parse_arguments(row["input"])
            parse_value(row["output"])
        except NotPlainData:
            continue
        kept.append(row)
    return kept, len(rows)


@pytest.fixture(scope="module")
def crux():
    rows, total = literal_rows()
    # CRUXEval's functions are quick; a short limit keeps the generations that loop cheap.
    with Executor(ExecutorConfig(timeout=1.0, memory_mb=512)) as executor:
        outputs = executor.run_batch([ExecRequest(row["code"], row["input"]) for row in rows])
        tasks = {}
        for row, result in zip(rows, outputs, strict=True):
            assert result.ok, (row["id"], result)
            arguments = parse_arguments(row["input"]).canonical()
            tasks[row["id"]] = {
                t: TripletTask(t, row["code"], arguments, result.output)
                for t in (TaskType.DEDUCTION, TaskType.ABDUCTION)
            }
        yield executor, rows, tasks, total


def test_the_non_literal_gold_inputs_are_few(crux):
    _, rows, _, total = crux
    assert total == 800
    assert total - len(rows) == 12


@pytest.mark.parametrize("equality", ["strict", "python"])
def test_every_gold_answer_is_correct(crux, equality):
    executor, rows, tasks, _ = crux
    verifier = Verifier(executor, equality)
    deduction = verifier.verify(
        [(tasks[r["id"]][TaskType.DEDUCTION], Answer(TaskType.DEDUCTION, r["output"])) for r in rows]
    )
    abduction = verifier.verify(
        [(tasks[r["id"]][TaskType.ABDUCTION], Answer(TaskType.ABDUCTION, r["input"])) for r in rows]
    )
    assert [r["id"] for r, v in zip(rows, deduction, strict=True) if not v.correct] == []
    assert [r["id"] for r, v in zip(rows, abduction, strict=True) if not v.correct] == []


def _generation_answer(task_type: TaskType, generation: str) -> str | None:
    """The generation as our answer text, or None when it is not a literal."""
    text = generation.strip()
    if task_type is TaskType.ABDUCTION:  # CRUXEval-I generations are whole calls: f(...)
        if not (text.startswith("f(") and text.endswith(")")):
            return None
        text = text[2:-1]
    try:
        (parse_value if task_type is TaskType.DEDUCTION else parse_arguments)(text)
    except NotPlainData:
        return None
    return text


@pytest.mark.parametrize(("direction", "task_type"), [("output", TaskType.DEDUCTION), ("input", TaskType.ABDUCTION)])
def test_verdicts_agree_with_cruxevals_harness(crux, direction, task_type):
    executor, rows, tasks, _ = crux
    scored = json.loads((DATA / f"scored_codellama-7b_temp0.2_{direction}.json").read_text())
    items, theirs, skipped = [], [], 0
    for row in rows:
        generations = scored["raw_generations"][row["id"]]
        for generation, score in zip(generations, scored["raw_scored_generations"][row["id"]], strict=True):
            text = _generation_answer(task_type, generation)
            if text is None:
                skipped += 1
                continue
            items.append((tasks[row["id"]][task_type], Answer(task_type, text)))
            theirs.append(score)
    verdicts = Verifier(executor, "python").verify(items)
    disagreements = [
        (item[1].text, verdict.reason, score)
        for item, verdict, score in zip(items, verdicts, theirs, strict=True)
        if verdict.correct != score
    ]
    agreement = 1 - len(disagreements) / len(items)
    print(
        f"\nCRUXEval-{direction[0].upper()}: {len(items)} literal generations, {skipped} skipped, "
        f"agreement {agreement:.4f}"
    )
    assert len(items) > 7500
    assert disagreements == []
