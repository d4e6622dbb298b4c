"""The static filter, normalisation for dedup, and the induction message leak test."""

import pytest

from azr.tasks import Rejection
from azr.tasks.programs import FilterConfig, check_program, dedup_key, leaks_program, normalized

ACCEPTED = [
    # the identity seed
    "def f(a):\n    return a",
    # a helper before f: the reference rejected any second `def`
    "def helper(x):\n    return x * 2\n\ndef f(a):\n    return helper(a)",
    # a class, with __init__ and super(): dunder *definitions* and __init__ access are fine
    "class A:\n    def __init__(self, v):\n        self.v = v\n\nclass B(A):\n    def __init__(self, v):\n"
    "        super().__init__(v)\n\ndef f(a):\n    return B(a).v",
    # nested functions and lambdas
    "def f(a):\n    def g(b):\n        return b + 1\n    return list(map(lambda x: g(x), a))",
    # allowed imports, top level and inside f
    "import math\nfrom collections import Counter\ndef f(a):\n    import itertools\n    return math.floor(a)",
    # a banned builtin's name used as the program's own variable
    "def f(input):\n    vars = [input]\n    return vars",
    # `if __name__ == '__main__'` guards are harmless
    "def f(a):\n    return a\n\nif __name__ == '__main__':\n    print(f(1))",
    # hash() and id() pass the filter: the determinism check catches their misuse
    "def f(a):\n    return hash(a) % 7",
    # a banned name bound in an enclosing function is that function's variable
    "def f(a):\n    open = len\n    def g(x):\n        return open(x)\n    return g(a)",
    # __future__ imports are fine, though underscored
    "from __future__ import annotations\ndef f(a: int) -> int:\n    return a",
]


@pytest.mark.parametrize("source", ACCEPTED)
def test_accepted(source):
    check = check_program(source)
    assert check.ok, check


REJECTED = [
    # not Python
    ("def f(:\n    pass", Rejection.SYNTAX),
    ("def f(a):\nreturn a", Rejection.SYNTAX),
    # no top-level f
    ("def g(a):\n    return a", Rejection.NO_F),
    ("class f:\n    pass", Rejection.NO_F),
    ("f = lambda a: a", Rejection.NO_F),
    ("async def f(a):\n    return a", Rejection.NO_F),
    ("def outer():\n    def f(a):\n        return a", Rejection.NO_F),
    # randomness and time
    ("import random\ndef f(a):\n    return random.random()", Rejection.BANNED),
    ("from random import choice\ndef f(a):\n    return choice(a)", Rejection.BANNED),
    ("def f(a):\n    import time\n    return time.time()", Rejection.BANNED),
    ("from datetime import datetime\ndef f(a):\n    return datetime.now()", Rejection.BANNED),
    # dotted imports match on the package (the reference's `os.sys` entries never matched)
    ("import os.path\ndef f(a):\n    return os.path.join(a)", Rejection.BANNED),
    ("from os import path\ndef f(a):\n    return a", Rejection.BANNED),
    ("import sys as s\ndef f(a):\n    return s.argv", Rejection.BANNED),
    ("from importlib import import_module\ndef f(a):\n    return a", Rejection.BANNED),
    # processes, threads, network
    ("import subprocess\ndef f(a):\n    return a", Rejection.BANNED),
    ("import threading\ndef f(a):\n    return a", Rejection.BANNED),
    ("from concurrent.futures import ThreadPoolExecutor\ndef f(a):\n    return a", Rejection.BANNED),
    ("import socket\ndef f(a):\n    return a", Rejection.BANNED),
    ("import urllib.request\ndef f(a):\n    return a", Rejection.BANNED),
    # I/O and dynamic code
    ("def f(a):\n    return open(a).read()", Rejection.BANNED),
    ("def f(a):\n    return eval(a)", Rejection.BANNED),
    ("def f(a):\n    exec(a)", Rejection.BANNED),
    ("def f(a):\n    return compile(a, 'x', 'eval')", Rejection.BANNED),
    ("def f(a):\n    return __import__('os')", Rejection.BANNED),
    ("def f(a):\n    return globals()", Rejection.BANNED),
    ("def f(a):\n    return input()", Rejection.BANNED),
    ("def f(a):\n    return getattr(a, '__class__')", Rejection.BANNED),
    # dunder attributes used to escape a namespace
    ("def f(a):\n    return ().__class__.__bases__[0].__subclasses__()", Rejection.BANNED),
    ("def f(a):\n    return f.__globals__", Rejection.BANNED),
    ("def f(a):\n    return (lambda: 0).__code__", Rejection.BANNED),
    ("def f(a):\n    return a.__dict__", Rejection.BANNED),
    ("def f(a):\n    return __builtins__", Rejection.BANNED),
    ("def f(a):\n    g = (x for x in a)\n    return g.gi_frame.f_back.f_globals", Rejection.BANNED),
    # shadowing is judged scope by scope: these still reach the builtins
    ("def f(a, eval=eval):\n    return eval(a)", Rejection.BANNED),
    ("def f(a, __import__=__import__):\n    return __import__('time').time()", Rejection.BANNED),
    ("def g(open):\n    return open\ndef f(a):\n    return open(a)", Rejection.BANNED),
    (
        "class C:\n    open = len\n    def m(self, x):\n        return open(x)\ndef f(a):\n    return C().m(a)",
        Rejection.BANNED,
    ),
    # the C halves of banned modules, and the OS module under its own name
    ("import _datetime\ndef f(a):\n    return str(_datetime.date.today())", Rejection.BANNED),
    ("from _random import Random\ndef f(a):\n    return Random().random()", Rejection.BANNED),
    ("import posix\ndef f(a):\n    return posix.listdir('/')", Rejection.BANNED),
    # relative imports have no package to come from
    ("from . import x\ndef f(a):\n    return a", Rejection.BANNED),
]


@pytest.mark.parametrize(("source", "rejection"), REJECTED)
def test_rejected(source, rejection):
    check = check_program(source)
    assert check.rejection is rejection, check
    assert check.detail


def test_the_lists_are_configuration():
    source = "import math\ndef f(a):\n    return math.pi"
    assert check_program(source).ok
    assert check_program(source, FilterConfig(banned_modules=("math",))).rejection is Rejection.BANNED
    assert check_program("def f(a):\n    return open", FilterConfig(banned_names=())).ok


def test_length_limit():
    long = "def f(a):\n    return a\n" + "#" * 20_000
    assert check_program(long).rejection is Rejection.SYNTAX


def test_imports_are_extracted():
    check = check_program("import re\nfrom collections import deque as d\ndef f(a):\n    return a")
    assert check.imports == ("import re", "from collections import deque as d")


def test_normalization_ignores_spelling():
    a = "def f(a):\n    # double\n    return a * 2\n"
    b = "def f(a):   return a*2   # twice"
    c = "def f(a):\n    return a * 3"
    assert normalized(a) == normalized(b) != normalized(c)
    assert dedup_key(a, ["1"]) == dedup_key(b, ["1"]) != dedup_key(a, ["2"])
    assert dedup_key('def f(a):\n    return "x"', ["1"]) == dedup_key("def f(a):\n    return 'x'", ["1"])


@pytest.mark.parametrize(
    ("message", "leaks"),
    [
        ("Returns the sum of the squares of the even numbers.", False),
        ("def f(xs): return sum(x * x for x in xs if x % 2 == 0)", True),  # the code itself
        ("It computes sum(x * x for x in xs) over the evens", True),  # six code tokens in a row
        ("Think of a function f(x) that squares things", False),
        ("", False),
    ],
)
def test_message_leak(message, leaks):
    program = "def f(xs):\n    return sum(x * x for x in xs if x % 2 == 0)"
    assert leaks_program(message, program, ngram=6) is leaks
