"""Build the ordinary-probe benchmark: 80 hand-written, ordinary-style Python functions.

Each function takes one argument (an int, a str, or a list) and does one or two things to it, the way
a person would write it. The outputs are not computed here: every (program, input) pair is run
through the project's sandbox (azr.executor), and each pair becomes two rows of ordinary.jsonl, a
deduction task and an abduction task, in the format of azr/base/model/heldout.jsonl.

    python experiments/ordinary-probe/make.py
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path

from azr.executor import ExecRequest, Executor

HERE = Path(__file__).resolve().parent
OUT = HERE / "ordinary.jsonl"
MAX_OUTPUT_CHARS = 60

# (argument type, number of operations, program, input as a Python literal)
PAIRS: list[tuple[str, int, str, str]] = [
    # ---- int, one operation ----
    ("int", 1, "def f(x):\n    return x + 4", "12"),
    ("int", 1, "def f(n):\n    return n % 3 == 0", "9"),
    ("int", 1, "def f(x):\n    return x * x", "-7"),
    ("int", 1, "def f(age):\n    return age >= 18", "16"),
    ("int", 1, "def f(n):\n    return str(n)", "42"),
    ("int", 1, "def f(x):\n    return abs(x)", "-8"),
    ("int", 1, "def f(n):\n    return n // 10", "87"),
    ("int", 1, "def f(num):\n    return list(range(num))", "5"),
    ("int", 1, "def f(k):\n    return 'ab' * k", "3"),
    ("int", 1, "def f(x):\n    return -x", "15"),
    ("int", 1, "def f(n):\n    return n % 2 == 1", "7"),
    ("int", 1, "def f(year):\n    return year - 1", "100"),
    ("int", 1, "def f(x):\n    return max(x, 0)", "-3"),
    ("int", 1, "def f(n):\n    return bin(n)", "10"),
    ("int", 1, "def f(count):\n    return [0] * count", "4"),
    ("int", 1, "def f(x):\n    return x ** 3", "4"),
    # ---- int, two operations ----
    ("int", 2, "def f(x):\n    if x > 10:\n        return x - 10\n    return x * 2", "6"),
    ("int", 2, "def f(n):\n    return len(str(n))", "100"),
    ("int", 2, "def f(n):\n    return sum(range(n + 1))", "10"),
    ("int", 2, "def f(x):\n    return 'even' if x % 2 == 0 else 'odd'", "13"),
    (
        "int",
        2,
        "def f(n):\n    total = 0\n    for i in range(1, n + 1):\n        total += i * i\n    return total",
        "4",
    ),
    ("int", 2, "def f(temp):\n    return temp * 2 + 30", "20"),
    ("int", 2, "def f(n):\n    return [i * i for i in range(n)]", "5"),
    ("int", 2, "def f(x):\n    return x > 0 and x < 10", "5"),
    ("int", 2, "def f(n):\n    return sum(int(d) for d in str(n))", "47"),
    ("int", 2, "def f(num):\n    result = num * 3\n    return result - 1", "-4"),
    ("int", 2, "def f(n):\n    return str(n)[::-1]", "85"),
    # ---- str, one operation ----
    ("str", 1, "def f(s):\n    return s.upper()", "'hello'"),
    ("str", 1, "def f(name):\n    return name.lower()", "'Python'"),
    ("str", 1, "def f(s):\n    return len(s)", "'banana'"),
    ("str", 1, "def f(text):\n    return text.count('a')", "'banana'"),
    ("str", 1, "def f(word):\n    return word[0]", "'apple'"),
    ("str", 1, "def f(s):\n    return s.startswith('he')", "'hello'"),
    ("str", 1, "def f(s):\n    return s.replace('a', 'o')", "'banana'"),
    ("str", 1, "def f(s):\n    return s.split()", "'a b c'"),
    ("str", 1, "def f(word):\n    return word.capitalize()", "'python'"),
    ("str", 1, "def f(s):\n    return s.isdigit()", "'123'"),
    ("str", 1, "def f(s):\n    return s[1:4]", "'Python'"),
    ("str", 1, "def f(word):\n    return 'a' in word", "'cherry'"),
    ("str", 1, "def f(s):\n    return s * 2", "'ha'"),
    ("str", 1, "def f(s):\n    return s.strip()", "'  hi  '"),
    ("str", 1, "def f(name):\n    return 'Hello, ' + name", "'Ann'"),
    # ---- str, two operations ----
    ("str", 2, "def f(word):\n    return word[::-1] + '!'", "'abc'"),
    ("str", 2, "def f(s):\n    return len(s.split())", "'a b c'"),
    ("str", 2, "def f(s):\n    return ''.join(sorted(s))", "'banana'"),
    ("str", 2, "def f(word):\n    return word == word[::-1]", "'level'"),
    (
        "str",
        2,
        "def f(s):\n    vowels = 0\n    for ch in s:\n"
        "        if ch in 'aeiou':\n            vowels += 1\n    return vowels",
        "'education'",
    ),
    ("str", 2, "def f(s):\n    return s.title().replace(' ', '')", "'hello world'"),
    ("str", 2, "def f(text):\n    return [w.upper() for w in text.split()]", "'red green blue'"),
    ("str", 2, "def f(s):\n    return s.upper() if len(s) < 4 else s.lower()", "'Cat'"),
    ("str", 2, "def f(s):\n    return s.find('n') + 1", "'banana'"),
    ("str", 2, "def f(word):\n    return word[:3].upper()", "'banana'"),
    ("str", 2, "def f(s):\n    return len(set(s))", "'hello'"),
    ("str", 2, "def f(letters):\n    return {c: letters.count(c) for c in letters}", "'abca'"),
    # ---- list, one operation ----
    ("list", 1, "def f(lst):\n    return [v * 2 for v in lst]", "[1, 2, 3]"),
    ("list", 1, "def f(nums):\n    return sum(nums)", "[4, 5, 6]"),
    ("list", 1, "def f(nums):\n    return len(nums)", "[7, 7, 7, 1]"),
    ("list", 1, "def f(lst):\n    return max(lst)", "[3, -1, 8]"),
    ("list", 1, "def f(nums):\n    return sorted(nums)", "[5, 1, 4]"),
    ("list", 1, "def f(items):\n    return items[::-1]", "[1, 2, 3, 4]"),
    ("list", 1, "def f(nums):\n    return nums[0]", "[9, 8, 7]"),
    ("list", 1, "def f(nums):\n    return 3 in nums", "[1, 2, 3]"),
    ("list", 1, "def f(nums):\n    return [n for n in nums if n > 0]", "[-2, 5, 0, 7]"),
    ("list", 1, "def f(words):\n    return ' '.join(words)", "['hello', 'world']"),
    ("list", 1, "def f(nums):\n    return nums.count(2)", "[2, 1, 2, 2]"),
    ("list", 1, "def f(nums):\n    return nums[1:]", "[4, 5, 6]"),
    ("list", 1, "def f(scores):\n    return sorted(scores, reverse=True)", "[70, 95, 82]"),
    ("list", 1, "def f(names):\n    return sorted(names)", "['tom', 'ann', 'bob']"),
    ("list", 1, "def f(nums):\n    return any(n < 0 for n in nums)", "[3, -1, 4]"),
    ("list", 1, "def f(words):\n    return [len(w) for w in words]", "['apple', 'fig', 'kiwi']"),
    ("list", 1, "def f(words):\n    return max(words, key=len)", "['cat', 'banana', 'dog']"),
    # ---- list, two operations ----
    ("list", 2, "def f(nums):\n    return sorted(nums)[-1]", "[3, 9, 2]"),
    ("list", 2, "def f(nums):\n    return sum(nums) / len(nums)", "[2, 4, 6]"),
    ("list", 2, "def f(nums):\n    return max(nums) - min(nums)", "[3, 10, 1]"),
    (
        "list",
        2,
        "def f(nums):\n    count = 0\n    for n in nums:\n"
        "        if n % 2 == 0:\n            count += 1\n    return count",
        "[1, 4, 6, 7, 10]",
    ),
    ("list", 2, "def f(nums):\n    return [x + 1 for x in nums if x % 2 == 1]", "[1, 2, 3, 5]"),
    ("list", 2, "def f(lst):\n    return len(set(lst))", "[1, 2, 2, 3, 3, 3]"),
    ("list", 2, "def f(nums):\n    return sorted(nums)[:2]", "[8, 3, 5, 1]"),
    ("list", 2, "def f(nums):\n    return nums[-1] * 2", "[4, 7, 9]"),
    (
        "list",
        2,
        "def f(nums):\n    total = 0\n    for n in nums:\n        total += n\n    return total > 10",
        "[3, 4, 5]",
    ),
]


def main() -> None:
    assert len(PAIRS) == 80, len(PAIRS)
    assert len({program for _, _, program, _ in PAIRS}) == len(PAIRS), "duplicate program"
    with Executor() as executor:
        results = executor.run_batch([ExecRequest(program, inp) for _, _, program, inp in PAIRS])
    bad = [
        (program, inp, r.status.value, r.error)
        for (_, _, program, inp), r in zip(PAIRS, results, strict=True)
        if not r.ok
    ]
    assert not bad, bad
    for (_, _, program, inp), r in zip(PAIRS, results, strict=True):
        assert r.output is not None and len(r.output) <= MAX_OUTPUT_CHARS, (program, inp, r.output)

    # one row per pair: `azr eval` asks every triplet both ways (deduction and abduction)
    rows = [
        {"snippet": program, "imports": [], "task_type": "deduction", "input": inp, "output": r.output, "step": 0,
         "source": "ordinary-probe"}
        for (_, _, program, inp), r in zip(PAIRS, results, strict=True)
    ]  # fmt: skip
    OUT.write_text("".join(json.dumps(row) + "\n" for row in rows))

    print(f"wrote {len(rows)} rows to {OUT}")
    print("by argument type:", dict(Counter(kind for kind, _, _, _ in PAIRS)))
    print("by operations:", dict(Counter(ops for _, ops, _, _ in PAIRS)))
    print("by return type:", dict(Counter(type(ast.literal_eval(r.output)).__name__ for r in results)))


if __name__ == "__main__":
    main()
