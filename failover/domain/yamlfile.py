"""YAML that remembers where things are, so every error can say file:line.

``load(text, filename)`` returns the plain Python data plus a ``Lines`` map from
a path (``("steps", 0, "to", 1)``) to the 1-based line it came from. Pydantic
error locations are such paths, so a validation error maps straight to a line.
Duplicate keys, which PyYAML would silently collapse, are reported too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from failover.errors import Problem

Path = tuple[str | int, ...]

try:  # the C loader is much faster on large contact lists
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment,unused-ignore]
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader


@dataclass
class Lines:
    """Where each value (and each mapping key) of a YAML document starts."""

    values: dict[Path, int] = field(default_factory=dict)
    keys: dict[Path, int] = field(default_factory=dict)

    def of(self, path: Sequence[str | int]) -> int:
        """The line of ``path``, or of its nearest known ancestor; 0 if unknown."""
        current = tuple(path)
        while True:
            if current in self.keys:
                return self.keys[current]
            if current in self.values:
                return self.values[current]
            if not current:
                return 0
            current = current[:-1]


@dataclass
class Document:
    data: Any
    lines: Lines
    problems: list[Problem]


def load(text: str, filename: str) -> Document:
    """Parse one YAML document. Syntax errors come back as problems, not raised."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 0
        reason = getattr(exc, "problem", None) or str(exc)
        return Document(None, Lines(), [Problem(filename, line, f"invalid YAML: {reason}")])
    lines = Lines()
    problems: list[Problem] = []
    if node is None:
        return Document(None, lines, problems)
    try:
        data = _Builder(filename, lines, problems).build(node, ())
    except (yaml.YAMLError, ValueError, TypeError) as exc:  # bad tags, unhashable keys
        return Document(None, lines, [Problem(filename, node.start_mark.line + 1, f"invalid YAML: {exc}")])
    return Document(data, lines, problems)


class _Builder:
    def __init__(self, filename: str, lines: Lines, problems: list[Problem]) -> None:
        self.filename = filename
        self.lines = lines
        self.problems = problems
        self.scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.lines.values[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise ValueError("a mapping key must be a plain value")
                key = self.scalars.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if key in result:
                    self.problems.append(Problem(self.filename, line, f"duplicate key '{key}'"))
                child = (*path, key)
                self.lines.keys[child] = line
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return self.scalars.construct_object(node, deep=True)


def display_path(path: os.PathLike[str] | str) -> str:
    """A path as the user typed it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative


def pydantic_problems(errors: Iterable[Mapping[str, Any]], lines: Lines, filename: str) -> list[Problem]:
    """Turn pydantic ``ValidationError.errors()`` into file:line problems."""
    errors = list(errors)
    locs = [tuple(e["loc"]) for e in errors]
    problems = []
    for error in errors:
        if error["type"] == "too_short" and any(
            len(other) > len(error["loc"]) and other[: len(error["loc"])] == tuple(error["loc"]) for other in locs
        ):
            continue  # pydantic counts the items that failed as missing; the item errors say more
        loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
        where = ".".join(str(part) for part in loc)
        message = _humane(error)
        problems.append(Problem(filename, lines.of(loc), f"{where}: {message}" if where else message))
    return problems


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the name of the matched union member ("function-after[...]")
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "list[str]"})


def _humane(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    return str(error["msg"]).removeprefix("Value error, ")
