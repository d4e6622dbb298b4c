"""Static checks on program text: the AST filter, normalisation for dedup, and the message-leak test.

The filter shapes task *quality*: a task whose answer depends on the clock, randomness, files or the
network cannot be learned, and one that reaches for the interpreter's internals is not the kind of
reasoning AZR trains. It is not a security boundary; the sandbox is (azr.executor). So the lists
are about what makes a bad task, and they are configuration.

The reference implementation's ban list held dotted entries (`os.sys`, `sys.exit`) that a check on
module names can never match, and it rejected any program with a second `def`. Here imports are
matched on their top-level package, names and attributes on the syntax tree, and helpers, classes
and nested functions are all allowed.
"""

from __future__ import annotations

import ast
import hashlib
import re
import symtable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azr.tasks import Rejection

BANNED_MODULES = (
    # nondeterminism: randomness, the clock
    "random", "secrets", "uuid", "time", "datetime", "calendar", "zoneinfo",
    # one-way functions: tasks no solver can invert or trace (as the AZR authors)
    "hashlib", "hmac", "zlib", "binascii",
    # files, processes, threads, the network
    "os", "io", "pathlib", "shutil", "glob", "tempfile", "fileinput", "subprocess",
    "multiprocessing", "threading", "_thread", "concurrent", "asyncio", "signal", "socket",
    "ssl", "select", "selectors", "http", "urllib", "ftplib", "smtplib", "webbrowser",
    "sqlite3", "dbm", "shelve", "pickle", "marshal", "mmap", "fcntl", "resource", "pty",
    "logging", "tkinter", "turtle",
    "posix", "nt", "posixpath", "ntpath", "genericpath", "pwd", "grp", "termios", "tty",
    "getpass", "locale", "timeit", "sched", "tracemalloc", "cProfile", "profile", "trace",
    "zipfile", "tarfile", "gzip", "bz2", "lzma",
    # the interpreter itself
    "sys", "builtins", "importlib", "inspect", "gc", "ctypes", "code", "codeop", "atexit",
    "weakref", "traceback", "faulthandler", "sysconfig", "site", "platform", "pdb", "runpy",
    "zipimport",
)  # fmt: skip
"""Top-level packages a program may not import (`import os.path` and `from os import path` both
match `os`). Besides these, every module whose name starts with `_` is banned (`_datetime`,
`_random`, `_io`, `_socket`... are the C halves of banned modules), except `__future__`."""

BANNED_NAMES = (
    "open", "eval", "exec", "compile", "__import__", "globals", "locals", "vars", "input",
    "breakpoint", "help", "exit", "quit", "getattr", "setattr", "delattr", "memoryview",
    "__builtins__", "__loader__", "__spec__", "__build_class__",
)  # fmt: skip
"""Names a program may not mention: I/O, dynamic code, and reflection that reaches dunders by string."""

BANNED_ATTRIBUTES = (
    "__class__", "__bases__", "__base__", "__mro__", "__subclasses__", "__globals__",
    "__builtins__", "__code__", "__closure__", "__dict__", "__getattribute__", "__import__",
    "__loader__", "__spec__", "__self__", "__func__", "__reduce__", "__reduce_ex__",
    "__traceback__", "__defaults__", "__kwdefaults__",
    "f_globals", "f_locals", "f_back", "f_builtins", "f_code", "gi_frame", "gi_code",
    "cr_frame", "ag_frame", "tb_frame", "tb_next", "co_code",
)  # fmt: skip
"""Attributes a program may not access: the usual ways out of a namespace into the interpreter."""


@dataclass(frozen=True)
class FilterConfig:
    """What programs may not use. The defaults cover randomness, time, I/O, processes, threads,
    the network, dynamic code and interpreter introspection (AZR.md section 3)."""

    banned_modules: tuple[str, ...] = BANNED_MODULES
    banned_names: tuple[str, ...] = BANNED_NAMES
    banned_attributes: tuple[str, ...] = BANNED_ATTRIBUTES
    max_program_chars: int = 10_000
    """Longest program accepted."""


@dataclass(frozen=True)
class ProgramCheck:
    """The result of the static filter."""

    rejection: Rejection | None
    """None when the program passes; else SYNTAX, NO_F or BANNED."""
    detail: str = ""
    imports: tuple[str, ...] = ()
    """The top-level import statements, as written."""

    @property
    def ok(self) -> bool:
        return self.rejection is None


_TOO_DEEP = ProgramCheck(Rejection.SYNTAX, "cannot be checked (RecursionError)")
"""The check of a program that ran out of stack. Built in advance: near the end of the stack,
building a result (a call to ProgramCheck, even to len) raises RecursionError again, and Python 3.11
counts C calls and each entry into the interpreter from C against the limit, so the frames left
there are fewer than the frames on the stack say."""


def check_program(source: str, config: FilterConfig = FilterConfig()) -> ProgramCheck:
    """Run the static filter on a program's source. Never raises: a program that cannot be checked
    (whatever the reason) is rejected as SYNTAX."""
    try:
        return _check(source, config)
    except RecursionError:  # from anywhere in _check, its own handlers included: return with no call
        return _TOO_DEEP
    except Exception as error:  # parse, symtable and the walk all raise on inputs nobody foresaw
        try:
            return ProgramCheck(Rejection.SYNTAX, f"cannot be checked ({type(error).__name__})")
        except RecursionError:
            return _TOO_DEEP


def entry_function(tree: ast.Module) -> ast.FunctionDef | None:
    """The program's top-level `def f`, the function a task calls."""
    return next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "f"), None)


def _check(source: str, config: FilterConfig) -> ProgramCheck:
    if len(source) > config.max_program_chars:
        return ProgramCheck(Rejection.SYNTAX, f"program is longer than {config.max_program_chars} characters")
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return ProgramCheck(Rejection.SYNTAX, f"{error.msg} (line {error.lineno})")
    except (ValueError, RecursionError, MemoryError) as error:
        return ProgramCheck(Rejection.SYNTAX, str(error) or type(error).__name__)
    if entry_function(tree) is None:
        return ProgramCheck(Rejection.NO_F, "no top-level `def f`")
    try:
        banned = _banned_use(tree, source, config)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:  # compiles, unlike parse
        return ProgramCheck(Rejection.SYNTAX, str(error) or type(error).__name__)
    if banned:
        return ProgramCheck(Rejection.BANNED, banned)
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return ProgramCheck(None, imports=_segments(source, imports))


_LINE_START = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")
"""Where the tokenizer starts a line: after a line feed, or a carriage return not followed by one
(str.splitlines also splits at form feeds, vertical tabs and more, which would shift line numbers)."""


def _segments(source: str, nodes: list[ast.stmt]) -> tuple[str, ...]:
    """The text of each node, as ast.get_source_segment gives it, splitting the source into lines
    once rather than once per node. Column offsets count UTF-8 bytes."""
    if not nodes:
        return ()
    lines = [line.encode("utf-8") for line in _LINE_START.split(source)]
    segments = []
    for node in nodes:
        first, last = node.lineno - 1, node.end_lineno - 1  # type: ignore[operator]
        if first == last:
            text = lines[first][node.col_offset : node.end_col_offset]
        else:
            head, tail = lines[first][node.col_offset :], lines[last][: node.end_col_offset]
            text = b"".join([head, *lines[first + 1 : last], tail])
        segments.append(text.decode("utf-8"))
    return tuple(segments)


def _banned_module(name: str, modules: set[str]) -> bool:
    top = name.split(".")[0]
    return top in modules or (top.startswith("_") and top != "__future__")


def _banned_use(tree: ast.AST, source: str, config: FilterConfig) -> str:
    modules, attributes = set(config.banned_modules), set(config.banned_attributes)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _banned_module(alias.name, modules):
                    return f"imports {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            if node.level > 0:
                return "uses a relative import"
            if node.module and _banned_module(node.module, modules):
                return f"imports {node.module}"
        elif isinstance(node, ast.Attribute) and node.attr in attributes:
            return f"accesses .{node.attr}"
    builtin = _builtins_used(source, set(config.banned_names))
    return f"uses {builtin}" if builtin else ""


def _builtins_used(source: str, names: set[str]) -> str:
    """The first of `names` the program uses as the builtin, or ''.

    Scope by scope (symtable, the compiler's own analysis): a name a function binds itself
    (`def f(input): ...`) is its own variable, which model code does all the time, but a default
    value or any other use that resolves to the builtin (`def f(a, eval=eval)`) is not.
    """
    top = symtable.symtable(source, "<program>", "exec")
    bound_at_top = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    tables = [top]
    while tables:
        table = tables.pop()
        tables.extend(table.get_children())
        for symbol in table.get_symbols():
            name = symbol.get_name()
            if (
                name in names
                and symbol.is_referenced()
                and not (table is not top and (symbol.is_local() or symbol.is_free()))
                and name not in bound_at_top
            ):
                return name
    return ""


_UNPARSED = "unparsed:"
"""Starts the normal form of a source that is not parsed (every other one starts `Module(`)."""

MAX_NORMALIZED_CHARS = 50_000
"""Longest source normalised through its syntax tree (five times the longest program the filter
accepts by default); a longer one, like one that does not parse, is its own normal form. Parsing
takes a microsecond and a kilobyte per node, and time quadratic in the fields of one f-string."""


def normalized(source: str) -> str:
    """The program's syntax tree without positions or comments, as ast.dump writes it: two
    spellings of one program (whitespace, comments, quote style) normalise alike. Never raises: a
    source that cannot be parsed, or is longer than MAX_NORMALIZED_CHARS, is its own normal form."""
    try:  # everything, len included: near the end of the stack any call may raise RecursionError
        if len(source) > MAX_NORMALIZED_CHARS:
            return _UNPARSED + source
        return _dump(ast.parse(source))
    except Exception:  # SyntaxError, ValueError, and past a nesting depth (set by the caller's stack) RecursionError
        return _UNPARSED + source  # no call: this cannot run out of stack


def _dump(tree: ast.AST) -> str:
    """ast.dump(tree) as Python 3.10 to 3.12 write it (3.13 leaves out empty fields), without
    recursion: ast.dump recurses at least a frame a level, so `return x+x+...+x` with 1000 terms
    exhausts Python's stack.

    The stack holds nodes and lists still to write, and text already written for them.
    """
    out: list[str] = []
    todo: list[Any] = [tree]
    while todo:
        item = todo.pop()
        if type(item) is str:
            out.append(item)
        elif isinstance(item, ast.AST):
            todo.extend(reversed(_node_parts(item)))
        else:
            todo.extend(reversed(_list_parts(item)))
    return "".join(out)


_MISSING = object()


def _node_parts(node: ast.AST) -> list[Any]:
    """`Name(field=value, ...)`, leaving out the fields ast.dump leaves out (absent, or None where
    None is the default)."""
    parts: list[Any] = [type(node).__name__ + "("]
    separator = ""
    for name in node._fields:
        value = getattr(node, name, _MISSING)
        if value is _MISSING or (value is None and getattr(type(node), name, ...) is None):
            continue
        if isinstance(value, (ast.AST, list)):
            parts += [f"{separator}{name}=", value]
        else:
            parts.append(f"{separator}{name}={_constant(value)}")
        separator = ", "
    parts.append(")")
    return parts


def _list_parts(values: list[Any]) -> list[Any]:
    parts: list[Any] = ["["]
    for i, value in enumerate(values):
        if i:
            parts.append(", ")
        parts.append(value if isinstance(value, (ast.AST, list)) else _constant(value))
    parts.append("]")
    return parts


def _constant(value: object) -> str:
    try:
        return repr(value)
    except ValueError:  # an int over the digit limit, written in hex, which has none (ast.dump raises)
        return hex(value)  # type: ignore[arg-type]


def dedup_key(program: str, inputs: list[str] | tuple[str, ...]) -> str:
    """Identity of a task for deduplication: normalised program plus canonical inputs."""
    text = normalized(program) + "\x00" + "\x00".join(inputs)
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


def program_key(program: str) -> str:
    """A program's identity whatever its spelling: the first 16 hex digits of the SHA-256 of its
    normal form. The embedded model ships its pretraining programs' keys (azr.base.build), so a run
    can tell a proposal that copies one."""
    return form_key(normalized(program))


def form_key(form: str) -> str:
    """`program_key` of a program already normalised."""
    return hashlib.sha256(form.encode("utf-8", "backslashreplace")).hexdigest()[:16]


def read_program_keys(path: str | Path) -> frozenset[str]:
    """The keys in a file of one key per line (a model directory's `programs.sha256`)."""
    return frozenset(line for line in Path(path).read_text().split() if line)


_TOKEN = re.compile(r"\w+|[^\w\s]")


def leaks_program(message: str, program: str, ngram: int) -> bool:
    """True if `message` repeats `ngram` consecutive tokens of `program`, or a `def` line of it."""
    if re.search(r"\bdef\s+f\s*\(", message):
        return True
    code = _TOKEN.findall(program)
    text = _TOKEN.findall(message)
    if len(code) < ngram:
        return " ".join(code) in " ".join(text) if code else False
    grams = {tuple(code[i : i + ngram]) for i in range(len(code) - ngram + 1)}
    return any(tuple(text[i : i + ngram]) in grams for i in range(len(text) - ngram + 1))
