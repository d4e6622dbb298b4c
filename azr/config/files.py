"""Reading a config: defaults, then a preset or a YAML file, then dotted `key=value` overrides, each
read defensively (a bad file or override is one line naming it); writing one back; and
`azr train --help-config`, every key with its default and the docstring under its field."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import json
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from azr.config import Config, ConfigError, check
from azr.userfiles import UserFileError, decode, one_line, plain_yaml, read_bytes, yaml_problem

PRESETS = ("tiny-cpu", "paper-7b", "gpu-1.5b-lora")


def preset_path(name: str) -> Path:
    """The YAML file of a preset shipped with azr."""
    return Path(str(resources.files("azr") / "configs" / f"{name}.yaml"))


def load(config_file: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then a preset or YAML file, then dotted `key=value` overrides; checked. Anything
    wrong (a file that is missing, not UTF-8, not YAML, not a mapping of keys; an unknown key, a
    wrong type, a broken rule) is a ConfigError of one line that says where and what to change. An
    empty file changes nothing (the tiny-cpu preset is one)."""
    merged: DictConfig = OmegaConf.structured(Config)
    if config_file:
        path = Path(config_file)
        if not path.exists() and config_file in PRESETS:
            path = preset_path(config_file)
        if not path.exists():
            raise ConfigError(f"no config file {config_file!r}: give a path or a preset ({', '.join(PRESETS)})")
        name = f"config file {config_file}"
        try:
            text = decode(read_bytes(path, "config file"), name)
        except UserFileError as error:
            raise ConfigError(str(error)) from None
        merged = _merge(merged, _mapping(text, name), name)
    dotted = OmegaConf.create()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. train.steps=5)")
        key, _, value = item.partition("=")
        if _is_list(merged, key.strip()) and not value.lstrip().startswith("["):
            item = f"{key}=[{value}]"  # selfplay.task_types=deduction,abduction as [deduction,abduction]
        try:
            dotted.merge_with_dotlist([item])
        except (yaml.YAMLError, UnicodeError, RecursionError) as error:  # the value is parsed as YAML
            raise ConfigError(f"override {item!r}: {yaml_problem(error)}") from None
        except OmegaConfBaseException as error:
            raise ConfigError(_explain(error)) from None
    return _checked(_merge(merged, dotted, ""))


def _is_list(config: DictConfig, key: str) -> bool:
    try:
        return OmegaConf.is_list(OmegaConf.select(config, key, default=None))
    except OmegaConfBaseException:  # a malformed key: the merge says what is wrong with it
        return False


def _mapping(text: str, name: str) -> DictConfig:
    """The mapping of keys a YAML document holds ({} for an empty one). Plain YAML only: a tag
    (`!!python/...`, `!foo`) is refused, as are a list or a single value at the top."""
    at = f"{name}: " if name else ""
    try:
        root = plain_yaml(text)
    except UserFileError as error:
        raise ConfigError(at + str(error)) from None
    if root is None:
        return OmegaConf.create()
    if not isinstance(root, yaml.MappingNode):
        what = "a list" if isinstance(root, yaml.SequenceNode) else f"the single value {root.value[:40]!r}"
        raise ConfigError(
            f"{at}it holds {what}, not a mapping of keys: write sections of `key: value` lines "
            "(see `azr train --help-config`)"
        )
    try:
        return OmegaConf.create(text)  # type: ignore[return-value]  # OmegaConf's YAML: 1e-4 is a float
    except (yaml.YAMLError, RecursionError) as error:
        raise ConfigError(at + yaml_problem(error)) from None
    except OmegaConfBaseException as error:  # a value OmegaConf does not hold: a date, bytes, a set
        raise ConfigError(at + _explain(error)) from None


def _merge(base: DictConfig, other: DictConfig, name: str) -> DictConfig:
    at = f"{name}: " if name else ""
    try:
        return OmegaConf.merge(base, other)  # type: ignore[return-value]
    except OmegaConfBaseException as error:
        raise ConfigError(at + _explain(error)) from None
    except (TypeError, ValueError, AttributeError, KeyError) as error:  # OmegaConf's own, on odd shapes
        raise ConfigError(
            f"{at}cannot be merged into the config ({type(error).__name__}: {one_line(str(error))})"
        ) from None


def _checked(merged: DictConfig) -> Config:
    try:
        config: Config = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as error:
        raise ConfigError(_explain(error)) from None
    check(config)
    return config


def _explain(error: OmegaConfBaseException) -> str:
    key = one_line(getattr(error, "full_key", "") or "")
    message = one_line(str(error).split("\n    full_key:")[0])  # OmegaConf's details follow
    if "Key" in message and "not in" in message:
        return f"unknown key {key!r}: see `azr train --help-config` for the keys"
    return f"{key}: {message}" if key else message


def to_yaml(config: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def from_yaml(text: str | bytes) -> Config:
    """The config `to_yaml` wrote (text, or its UTF-8 bytes), checked. A file that is empty, not
    UTF-8, not YAML or not a mapping, or that holds an unknown key or a wrong type (hand-edited),
    is a ConfigError of one line naming the key or the problem."""
    if isinstance(text, bytes):
        try:
            text = decode(text, "the config")
        except UserFileError as error:
            raise ConfigError(str(error).removeprefix("the config: ")) from None
    if not text.strip():
        raise ConfigError("it is empty (a saved config lists every key)")
    return _checked(_merge(OmegaConf.structured(Config), _mapping(text, ""), ""))


def describe_keys() -> str:
    """Every key with its default and its documentation, as YAML with comments, for
    `azr train --help-config`: the docstrings under each field of the dataclasses of azr.config."""
    return "".join(_describe(Config(), ""))


def _describe(section: Any, indent: str) -> list[str]:
    notes = _field_docs(type(section))
    lines = []
    for spec in dataclasses.fields(section):
        value = getattr(section, spec.name)
        nested = dataclasses.is_dataclass(value)
        doc = inspect.getdoc(type(value)) if nested else notes.get(spec.name, "")
        lines += [f"{indent}# {line}".rstrip() + "\n" for line in (doc or "").splitlines()]
        if nested:
            lines += [f"{indent}{spec.name}:\n", *_describe(value, indent + "  ")]
        else:
            lines.append(f"{indent}{spec.name}: {_scalar(value)}\n")
    return lines


def _scalar(value: Any) -> str:
    """A value as YAML any loader reads back alike: JSON (YAML's flow style), but a float's exponent
    after a point (YAML 1.1 loaders such as PyYAML read `3e-05` as a string, `3.0e-05` as a float)."""
    text = json.dumps(value)
    if isinstance(value, float) and "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def _field_docs(cls: type) -> dict[str, str]:
    """The string under each field of a dataclass's source (empty where the source is not shipped)."""
    try:
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    except (OSError, TypeError, IndexError, AttributeError):
        return {}
    docs = {}
    for node, after in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):  # fmt: skip
            docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs
