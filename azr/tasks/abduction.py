"""Abduction: given a program and an output, give an input that produces it; any such input
counts (AZR paper section 3.2)."""

from __future__ import annotations

from azr.executor import NotPlainData, parse_arguments
from azr.tasks import Answer, Mistake, Role, Task, TripletTask, Verdict
from azr.tasks.family import Ask, AskOptions, Check, Expect, Field, Rules
from azr.tasks.triplet import TripletFamily


class Abduction(TripletFamily):
    name = "abduction"
    code = "A"
    solve_fields = (Expect("input"),)
    harder = (
        "A solver will be shown your program and the output it returns, and must find an input that "
        "produces that output. Make such an input take careful reasoning to infer from the output."
    )

    def solve_ask(self, task: Task, options: AskOptions) -> Ask:
        assert isinstance(task, TripletTask)
        prose = (
            "Find an input on which `f` returns the output below. Any such input is correct.",
            Field("python", task.program),
            Field("output", task.output),
            "Give the input as the argument list of one call to `f`, in Python literals, e.g. `'abc', [1, 2]`.",
        )
        return Ask(self.name, Role.SOLVE, self.code, "find an input", prose, self.solve_fields)

    def judge(self, task: Task, answer: Answer, rules: Rules) -> Verdict | Check:
        """The program runs on the answer (a literal argument list, never spliced into code)."""
        assert isinstance(task, TripletTask)
        try:
            arguments = parse_arguments(answer.text, rules.max_input_chars).canonical()
        except NotPlainData as error:
            return Verdict(False, Mistake.NOT_A_LITERAL, str(error))
        return Check(((task.program, arguments, task.output),))


FAMILY = Abduction()
