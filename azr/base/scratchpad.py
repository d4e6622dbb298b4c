"""What a solver writes in its scratchpad before answering, in the embedded model's transcripts.

The compact template gives solvers a scratchpad after `<T>` (azr.prompts.compact); the transcripts
put there what a person would write, recorded by the sandbox's trace mode (azr.executor.trace):

- deduction: the run written down, line by line. Style `values`: the values the variables take
  (`x=4`, `y=7`, `return 14`). Style `steps`: each line of `f` that computes a value also shows its
  expression with the values put in, so every operation is done on operands written side by side
  (`x=4`, `y = 4 + 3 = 7`, `return 7 * 2 = 14`).
- abduction: a candidate input and its run the same way, half the time after a wrong candidate
  whose run ends elsewhere (a guess is checked; a failed check is followed by another guess).
- induction: empty.

A scratchpad longer than its limit (SCRATCHPAD_CHARS by default) is cut with `...`: past it the
model answers without the rest written out.
"""

from __future__ import annotations

import ast
import random

from azr.base.ordinary import WORDS
from azr.base.programs import INT, LIST, STR, draw_input
from azr.executor import ExecRequest, ExecResult, Executor, NotPlainData, TraceEvent, parse_arguments
from azr.executor.trace import CUT
from azr.tasks import TaskType, TripletTask
from azr.tasks.programs import entry_function

STYLES = {
    "values": "the values the variables take (`x=4`, `y=7`, `return 14`)",
    "steps": "each line that computes a value worked out with the values put in its expression "
    "(`x=4`, `y = 4 + 3 = 7`, `return 7 * 2 = 14`)",
}
"""The styles of a deduction scratchpad, each as the model card describes it."""

SCRATCHPAD_CHARS = 240
"""The default limit. With the embedded model's tokenizer, worked steps at 240 characters take 56
tokens on average, 138 at the 95th percentile (4% of deduction scratchpads are cut; at 120
characters 28% were): a scratchpad and its answer fit in 192 new tokens (generation.max_new_tokens)."""
TRACE_EVENTS = 32
WRONG_FIRST = 0.5
"""How often an abduction scratchpad starts with a wrong candidate."""


def scratchpads(
    executor: Executor,
    triplets: list[TripletTask],
    rng: random.Random,
    style: str = "values",
    limit: int = SCRATCHPAD_CHARS,
) -> list[str]:
    """What each triplet's solver writes before answering: traces of runs (see the module's
    docstring), cut at `limit` characters (an abduction attempt at half)."""
    if style not in STYLES:
        raise ValueError(f"scratchpad style must be one of {', '.join(STYLES)}")
    requests = [ExecRequest(t.program, t.input, trace=TRACE_EVENTS) for t in triplets]
    wrong: dict[int, int] = {}
    for index, task in enumerate(triplets):
        if task.task_type == TaskType.ABDUCTION and rng.random() < WRONG_FIRST:
            candidate = _another_input(task.input, rng)
            if candidate is not None and candidate != task.input:
                wrong[index] = len(requests)
                requests.append(ExecRequest(task.program, candidate, trace=TRACE_EVENTS))
    results = executor.run_batch(requests)
    pads = []
    for index, task in enumerate(triplets):
        program = task.program if style == "steps" else None
        if task.task_type == TaskType.DEDUCTION:
            pads.append(written(results[index], limit, program))
            continue
        attempts = [written(results[index], limit // 2, program)]
        other = results[wrong[index]] if index in wrong else None
        if other is not None and other.ok and other.output != task.output and other.trace:
            attempts.insert(0, written(other, limit // 2, program))
        pads.append("\n".join(attempts))
    return pads


def written(result: ExecResult, limit: int, program: str | None = None) -> str:
    """A traced run as a person writes it down, cut at `limit`: `name=value` lines and `return
    value`; given the `program`, the lines of `f` that compute a value as worked steps."""
    steps = _Steps(program) if program is not None else None
    lines: list[str] = []
    for event in result.trace:
        line = steps.line(event) if steps is not None else _plain(event)
        if sum(len(x) + 1 for x in lines) + len(line) > limit:
            lines.append(CUT)
            break
        lines.append(line)
    return "\n".join(lines)


def _plain(event: TraceEvent) -> str:
    if event.name == CUT:
        return CUT
    return f"return {event.value}" if event.name == "return" else f"{event.name}={event.value}"


STEP_CHARS = 48
"""Longest expression written with its values put in; a longer one is written as its value only."""


class _Steps:
    """Writes the events of a run of `program` as worked steps: for a line of `f` that assigns or
    returns an expression, `name = <expression with the values in> = value`."""

    def __init__(self, program: str) -> None:
        self.values: dict[str, str] = {}
        """The latest value of each of f's variables, as the trace showed it."""
        self.statements: dict[int, ast.stmt] = {}
        self.lines: range = range(0)
        self.source = program.split("\n")
        try:
            tree = ast.parse(program)
        except SyntaxError:
            return
        f = entry_function(tree)
        if f is None:
            return
        self.lines = range(f.lineno, (f.end_lineno or f.lineno) + 1)
        for node in ast.walk(f):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.Return)) and node.lineno == node.end_lineno:
                self.statements[node.lineno] = node

    def line(self, event: TraceEvent) -> str:
        if event.line not in self.lines:  # a helper's run: its values only
            return _plain(event)
        worked = self._worked(event)
        if event.name not in ("return", CUT):
            self.values[event.name] = event.value
        return worked or _plain(event)

    def _worked(self, event: TraceEvent) -> str | None:
        node = self.statements.get(event.line)
        if isinstance(node, ast.Return) and event.name == "return" and node.value is not None:
            expression = self._put_in(node.value)
            return None if expression is None else f"return {expression} = {event.value}"
        if isinstance(node, ast.Assign) and [_name(t) for t in node.targets] == [event.name]:
            expression = self._put_in(node.value)
            return None if expression is None else f"{event.name} = {expression} = {event.value}"
        if isinstance(node, ast.AugAssign) and _name(node.target) == event.name and event.name in self.values:
            right = self._substituted(node.value)
            if right is None:
                return None
            if not isinstance(node.value, (ast.Name, ast.Constant, ast.Call, ast.Attribute, ast.Subscript)):
                right = f"({right})"
            written = ast.BinOp(node.target, node.op, node.value)  # `t += y` worked as `t = t + y`
            before = _grouped(self.values[event.name], written, written.left)
            expression = f"{before} {_OPERATORS[type(node.op)]} {_grouped(right, written, written.right)}"
            return f"{event.name} = {expression} = {event.value}" if len(expression) <= STEP_CHARS else None
        return None

    def _put_in(self, expression: ast.expr) -> str | None:
        """The expression as the program spells it with the variables' values in their place; None
        when that says nothing more than the value (a bare name or constant), or is too long."""
        if isinstance(expression, (ast.Name, ast.Constant)):
            return None
        text = self._substituted(expression)
        return text if text is not None and len(text) <= STEP_CHARS else None

    def _substituted(self, expression: ast.expr) -> str | None:
        """The program's own text of `expression` (one line), each variable with a value replaced by
        it; None if a value is not a literal (`<generator>`, cut with `...`). Values are parsed,
        never run."""
        nodes = list(ast.walk(expression))
        # A name that a comprehension or lambda in it binds is left as written throughout.
        bound = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        bound |= {a.arg for n in nodes if isinstance(n, ast.Lambda) for a in n.args.args}
        parents = {id(child): node for node in nodes for child in ast.iter_child_nodes(node)}
        names = [
            node for node in nodes
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
            and node.id in self.values and node.id not in bound
        ]  # fmt: skip
        if not all(_literal(self.values[node.id]) for node in names):
            return None
        line = self.source[expression.lineno - 1].encode()  # ast's columns count UTF-8 bytes
        start = expression.col_offset
        text = line[start : expression.end_col_offset]
        for node in sorted(names, key=lambda n: n.col_offset, reverse=True):
            value = _grouped(self.values[node.id], parents.get(id(node)), node)
            text = text[: node.col_offset - start] + value.encode() + text[(node.end_col_offset or 0) - start :]
        return text.decode()


_OPERATORS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
    ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&", ast.MatMult: "@",
}  # fmt: skip


def _literal(value: str) -> bool:
    try:
        tree = ast.parse(value, mode="eval")
    except SyntaxError:
        return False
    return not any(isinstance(node, ast.Constant) and node.value is Ellipsis for node in ast.walk(tree))


def _grouped(value: str, parent: ast.AST | None, node: ast.AST) -> str:
    """A value put into an expression in the place of `node` (a child of `parent`), in parentheses
    where it would read otherwise: `-3 ** 2` is -(3 ** 2), `0 - -5` reads badly, `5.bit_length()`
    does not parse."""
    negative, number = value.startswith("-"), value[:1].isdigit()
    if isinstance(parent, (ast.Attribute, ast.Subscript)) and (negative or number):
        return f"({value})"
    if negative and (
        isinstance(parent, ast.UnaryOp)
        or (isinstance(parent, ast.BinOp) and (parent.right is node or isinstance(parent.op, ast.Pow)))
    ):
        return f"({value})"
    return value


def _name(target: ast.expr) -> str | None:
    return target.id if isinstance(target, ast.Name) else None


def _another_input(text: str, rng: random.Random) -> str | None:
    """An input of the same types as `text`, drawn afresh (a wrong first guess, usually)."""
    try:
        arguments = parse_arguments(text)
    except NotPlainData:
        return None
    kinds = [_kind(value) for value in arguments.args]
    if arguments.kwargs or None in kinds:
        return None
    return ", ".join(draw_input(kind, rng) for kind in kinds)  # type: ignore[arg-type]


def _kind(value: object) -> str | None:
    if type(value) is list:
        return WORDS if value and all(type(e) is str for e in value) else LIST
    return {int: INT, str: STR}.get(type(value))
