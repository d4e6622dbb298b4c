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
from dataclasses import dataclass

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
    # the interpreter itself
    "sys", "builtins", "importlib", "inspect", "gc", "ctypes", "code", "codeop", "atexit",
    "weakref", "traceback", "faulthandler", "sysconfig", "site", "platform", "pdb", "runpy",
    "zipimport",
)  # fmt: skip
"""Top-level packages a program may not import (`import os.path` and `from os import path` both
match `os`)."""

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


def check_program(source: str, config: FilterConfig = FilterConfig()) -> ProgramCheck:
    """Run the static filter on a program's source."""
    if len(source) > config.max_program_chars:
        return ProgramCheck(Rejection.SYNTAX, f"program is longer than {config.max_program_chars} characters")
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return ProgramCheck(Rejection.SYNTAX, f"{error.msg} (line {error.lineno})")
    except (ValueError, RecursionError, MemoryError) as error:
        return ProgramCheck(Rejection.SYNTAX, str(error) or type(error).__name__)
    if not any(isinstance(node, ast.FunctionDef) and node.name == "f" for node in tree.body):
        return ProgramCheck(Rejection.NO_F, "no top-level `def f`")
    banned = _banned_use(tree, config)
    if banned:
        return ProgramCheck(Rejection.BANNED, banned)
    imports = tuple(
        ast.get_source_segment(source, node) or ast.unparse(node)
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
    )
    return ProgramCheck(None, imports=imports)


def _banned_use(tree: ast.AST, config: FilterConfig) -> str:
    modules, attributes = set(config.banned_modules), set(config.banned_attributes)
    # A banned name the program binds itself (`def f(input): ...`) is its own variable, not the
    # builtin: model code shadows builtins all the time.
    names = set(config.banned_names) - _bound_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in modules:
                    return f"imports {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] in modules:
                return f"imports {node.module}"
            if node.level > 0:
                return "uses a relative import"
        elif isinstance(node, ast.Name) and node.id in names:
            return f"uses {node.id}"
        elif isinstance(node, ast.Attribute) and node.attr in attributes:
            return f"accesses .{node.attr}"
    return ""


def _bound_names(tree: ast.AST) -> set[str]:
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


def normalized(source: str) -> str:
    """The program's syntax tree without positions or comments: two spellings of one program
    (whitespace, comments, quote style) normalise alike."""
    return ast.dump(ast.parse(source))


def dedup_key(program: str, inputs: list[str] | tuple[str, ...]) -> str:
    """Identity of a task for deduplication: normalised program plus canonical inputs."""
    text = normalized(program) + "\x00" + "\x00".join(inputs)
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


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
