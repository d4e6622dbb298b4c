"""Deduction: given a program and an input, give the output (AZR paper section 3.2)."""

from __future__ import annotations

from azr.executor import NotPlainData, canonical, parse_value
from azr.tasks import Answer, Mistake, Role, Task, TripletTask, Verdict
from azr.tasks.family import Ask, AskOptions, Check, Expect, Field, Rules
from azr.tasks.triplet import TripletFamily


class Deduction(TripletFamily):
    name = "deduction"
    code = "D"
    solve_fields = (Expect("output"),)
    harder = (
        "A solver will be shown your program and your input, and must work out the output without "
        "running the code. Make the output take careful, multi-step reasoning to deduce from the input."
    )

    def solve_ask(self, task: Task, options: AskOptions) -> Ask:
        assert isinstance(task, TripletTask)
        prose = (
            "Work out what `f` returns on this input, by reasoning, without running the code.",
            Field("python", task.program),
            Field("input", task.input),
            "Give the returned value as a Python literal.",
        )
        return Ask(self.name, Role.SOLVE, self.code, "work out the output", prose, self.solve_fields)

    def judge(self, task: Task, answer: Answer, rules: Rules) -> Verdict | Check:
        """Judged here: the answer, parsed as a literal (never evaluated), against the output."""
        from azr.tasks.verify import outputs_equal

        assert isinstance(task, TripletTask)
        limit = rules.max_input_chars
        try:
            if len(answer.text) > limit:
                raise NotPlainData(f"answer is longer than {limit} characters")
            value = canonical(parse_value(answer.text.strip(), max_chars=limit), rules.max_output_chars)
        except NotPlainData as error:
            return Verdict(False, Mistake.NOT_A_LITERAL, str(error))
        if outputs_equal(value, task.output, rules.equality):
            return Verdict(True)
        return Verdict(False, Mistake.WRONG, f"expected {task.output[:200]}, got {value[:200]}")


FAMILY = Deduction()
