"""YAML that remembers where things are, so every error can say file:line.

``load(text, filename)`` returns the plain Python data plus a ``Lines`` map from
a path (``("steps", 0, "to", 1)``) to the 1-based line it came from. Pydantic
error locations are such paths, so a validation error maps straight to a line.
Duplicate keys, which PyYAML would silently collapse, are reported too.

The data is read with libyaml in one pass; the line map is built only when a
problem needs a line. A valid 50,000-person contact list never pays for it
(its map would hold a million paths).

Aliases are checked before anything expands them: libyaml composes ``*a``
as a second reference to the same node, which costs nothing, but validating,
copying or walking the data visits every reference, so nine anchors of nine
aliases each ("billion laughs") exhaust memory. The composed graph is measured
first (each node once, remembering sizes) and a document whose aliases would
add more than :data:`MAX_ALIAS_EXPANSION` nodes (or as many as it has, if
more) is a problem at the repeated anchor's line, never expanded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from failover.errors import Problem

Path = tuple[str | int, ...]

MAX_DOCUMENT_CHARS = 64 * 1024 * 1024
MAX_ALIAS_EXPANSION = 100_000
MAX_DEPTH = 100

try:  # the C parser is much faster on large contact lists
    _Base: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment,unused-ignore]
except AttributeError:  # pragma: no cover - libyaml missing
    _Base = yaml.SafeLoader


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """libyaml's safe loader, refusing nothing but noting duplicate keys."""

    duplicates: list[tuple[int, Any]]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a complex key: the constructor below refuses it
            if key_node.value in seen:
                self.duplicates.append((key_node.start_mark.line + 1, key_node.value))
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


class Lines:
    """Where each value (and each mapping key) of a YAML document starts; built on first use."""

    def __init__(self, text: str = "") -> None:
        self._text = text
        self._values: dict[Path, int] | None = None
        self._keys: dict[Path, int] = {}

    def of(self, path: Sequence[str | int]) -> int:
        """The line of ``path``, or of its nearest known ancestor; 0 if unknown."""
        values, keys = self._maps()
        current = tuple(path)
        while True:
            if current in keys:
                return keys[current]
            if current in values:
                return values[current]
            if not current:
                return 0
            current = current[:-1]

    def _maps(self) -> tuple[dict[Path, int], dict[Path, int]]:
        if self._values is None:
            self._values = {}
            try:
                node = yaml.compose(self._text, Loader=_Base)
            except yaml.YAMLError:
                node = None
            if node is not None:
                self._walk(node, (), yaml.constructor.SafeConstructor())
        return self._values, self._keys

    def _walk(self, node: yaml.Node, path: Path, scalars: yaml.constructor.SafeConstructor) -> None:
        assert self._values is not None
        self._values[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                child = (*path, scalars.construct_object(key_node, deep=True))
                self._keys.setdefault(child, key_node.start_mark.line + 1)
                self._walk(value_node, child, scalars)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index), scalars)


@dataclass
class Document:
    data: Any
    lines: Lines
    problems: list[Problem]


def load(text: str, filename: str) -> Document:
    """Parse one YAML document. Syntax errors and alias bombs come back as problems, not raised."""
    if len(text) > MAX_DOCUMENT_CHARS:
        megabytes = MAX_DOCUMENT_CHARS // (1024 * 1024)
        return Document(None, Lines(), [Problem(filename, 0, f"larger than {megabytes} MB: not read")])
    loader = _Loader(text)
    loader.duplicates = []
    try:
        node = loader.get_single_node()
        refused = _expansion_problem(node) if node is not None else None
        if refused is not None:
            return Document(None, Lines(), [Problem(filename, *refused)])
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 0
        reason = getattr(exc, "problem", None) or str(exc)
        return Document(None, Lines(), [Problem(filename, line, f"invalid YAML: {reason}")])
    except (ValueError, TypeError) as exc:  # unhashable keys
        return Document(None, Lines(), [Problem(filename, 0, f"invalid YAML: {exc}")])
    finally:
        loader.dispose()
    problems = [Problem(filename, line, f"duplicate key '{key}'") for line, key in loader.duplicates]
    return Document(data, Lines(text), problems)


def _expansion_problem(root: yaml.Node) -> tuple[int, str] | None:
    """(line, message) when the document nests too deeply or its aliases would expand it too far."""
    sizes: dict[int, int] = {}  # id(node) -> nodes it stands for once expanded (capped)
    references: dict[int, int] = {}
    nodes: dict[int, yaml.Node] = {}
    cap = 10 * (MAX_ALIAS_EXPANSION + 1) * 1000
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            sizes[key] = min(cap, 1 + sum(sizes[id(child)] for child in _children(node)))
            continue
        references[key] = references.get(key, 0) + 1
        if key in nodes:
            if key not in sizes:
                return node.start_mark.line + 1, "an alias refers to the node that contains it (a recursive alias)"
            continue
        if depth > MAX_DEPTH:
            return node.start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels"
        nodes[key] = node
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in reversed(_children(node)))
    expanded, distinct = sizes[id(root)], len(nodes)
    if expanded - distinct <= max(MAX_ALIAS_EXPANSION, distinct):
        return None
    worst = max(nodes, key=lambda k: (references[k] - 1) * sizes[k])
    shown = f"{expanded:,}" if expanded < cap else f"more than {cap:,}"
    return (
        nodes[worst].start_mark.line + 1,
        f"aliases would expand this document to {shown} nodes from {distinct:,} (an alias bomb?); "
        f"the anchor on this line alone stands for {sizes[worst]:,}",
    )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


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
