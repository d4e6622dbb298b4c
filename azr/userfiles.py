"""Reading the files a user hands to azr (configs, seed and benchmark files, JSON Lines inputs),
and checking that a YAML document is plain YAML.

A file that cannot be read as asked is a UserFileError whose message is one line: the file, what
is wrong with it (missing, a directory, unreadable, not UTF-8, and at which line) and what to do.
Callers turn it into their own error (ConfigError, BenchmarkError, the CLI's UsageError).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml


class UserFileError(ValueError):
    """A file that cannot be read; the message, one line, names it and says why."""


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """The bytes of `path`, a `what` (e.g. "config file") the user gave."""
    path = Path(path)
    if path.is_dir():
        raise UserFileError(f"{path} is a directory, not a {what}")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserFileError(f"cannot read {what} {path}: no file of that name") from None
    except OSError as error:
        raise UserFileError(f"cannot read {what} {path}: {error.strerror or error}") from None


def decode(data: bytes, name: str | Path) -> str:
    """`data` as UTF-8 text (a leading byte-order mark dropped); `name` says whose bytes they are."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = error.object.count(b"\n", 0, error.start) + 1  # the object: past a byte-order mark
        raise UserFileError(f"{name}: line {line}: not UTF-8 text: save it as UTF-8") from None


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of a UTF-8 file the user gave; a UserFileError says why not."""
    return decode(read_bytes(path, what), path)


def split_lines(text: str) -> list[str]:
    """`text` cut at newlines as a text-mode file cuts it (\\n, \\r\\n, \\r), ends dropped; unlike
    str.splitlines, not at U+2028, form feeds and the like, which a JSON string may hold raw."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def text_lines(binary: Iterable[bytes], name: str | Path) -> Iterator[str]:
    """The lines of a binary stream as text, as a text-mode file gives them (universal newlines),
    read as they come (stdin too); a line that is not UTF-8 is a UserFileError naming its number."""
    newlines = io.IncrementalNewlineDecoder(None, translate=True)
    pending = ""
    for number, raw in enumerate(binary, 1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise UserFileError(f"{name}: line {number}: not UTF-8 text: save it as UTF-8") from None
        *complete, pending = (pending + newlines.decode(text)).split("\n")
        for line in complete:
            yield line + "\n"
    pending += newlines.decode("", final=True)
    if pending:
        yield pending


def one_line(text: str) -> str:
    """`text` on one line: a value quoted in a message may hold newlines."""
    return " ".join(text.splitlines())


def plain_yaml(text: str) -> yaml.Node | None:
    """The node tree of a YAML document (None: empty), checked to be plain YAML: a tag no safe
    loader constructs (`!!python/...`, `!foo`) is a UserFileError, as is YAML that cannot be read."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError) as error:
        raise UserFileError(yaml_problem(error)) from None
    stack, seen = [root] if root is not None else [], set()
    while stack:  # not recursive: a document nested 10,000 deep is only refused, not a crash
        node = stack.pop()
        if id(node) in seen:  # an alias: the same node again
            continue
        seen.add(id(node))
        if node.tag not in yaml.SafeLoader.yaml_constructors:
            raise UserFileError(_tag_problem(node.tag, node.start_mark))
        if isinstance(node, yaml.MappingNode):
            stack += [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return root


def yaml_problem(error: BaseException) -> str:
    """One line about YAML that cannot be read: where, and what to do."""
    if isinstance(error, RecursionError):
        return "nested too deeply"
    if isinstance(error, UnicodeError):
        return "not UTF-8 text"
    if isinstance(error, yaml.reader.ReaderError) and isinstance(error.character, int):
        return f"not valid YAML (character #x{error.character:04x} at position {error.position}: {error.reason})"
    mark = getattr(error, "problem_mark", None)
    problem = one_line(getattr(error, "problem", None) or str(error) or type(error).__name__)
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        return _tag_problem(tag.group(1), mark)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not valid YAML ({where}{problem}): fix the syntax"


def _tag_problem(tag: str, mark: Any) -> str:
    shown = tag.replace("tag:yaml.org,2002:", "!!")
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}the YAML tag {shown} is not allowed: write plain keys and values, no tags"
