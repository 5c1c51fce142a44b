"""Message templates: Jinja2 in a sandbox, strict about undefined names.

Templates live under ``<runbooks dir>/templates`` and see exactly four names:
``incident``, ``runbook``, ``person`` and ``activation``. A name outside these
is a configuration error found by ``runbooks check``, not a surprise at send time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from failover.domain.bridge import PLACEHOLDER_FILTERS
from failover.domain.yamlfile import display_path
from failover.errors import InvalidRequest, Problem

CONTEXT_NAMES = frozenset({"incident", "runbook", "person", "activation"})
# Updates to an open incident (engine.updates) are written in the console, or start from templates/update/*.
UPDATE_FOLDER = "update/"
UPDATE_NAMES = frozenset({"incident", "person", "eta", "status_url"})


class TemplateError(InvalidRequest):
    """A template that cannot be parsed or rendered, with where and why."""


class Templates:
    """Compiles each template (file or inline text) once and renders it in the sandbox.

    ``overrides`` maps template names to the text used instead of the file:
    the last good version of a template whose file is broken (domain.lastgood).
    """

    def __init__(self, directory: Path, overrides: Mapping[str, str] | None = None) -> None:
        self.directory = directory
        self.overrides = dict(overrides or {})
        self.env = ImmutableSandboxedEnvironment(
            loader=jinja2.ChoiceLoader([jinja2.DictLoader(self.overrides), jinja2.FileSystemLoader(str(directory))]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )
        self.env.filters.update(PLACEHOLDER_FILTERS)  # the Runtime installs the real bridge line (domain.bridge)
        self._inline = lru_cache(maxsize=512)(self.env.from_string)
        self._known: frozenset[str] | None = None  # template names, for language variants

    def names(self) -> list[str]:
        """Every template file, as runbooks name it (``sms/outage.txt``)."""
        if not self.directory.is_dir():
            return []
        return sorted(p.relative_to(self.directory).as_posix() for p in self.directory.rglob("*") if p.is_file())

    def source_of(self, name: str) -> tuple[str, str]:
        """The text of a template file (or its override) and its path for messages."""
        path = self.directory / name
        if name in self.overrides:
            return self.overrides[name], display_path(path)
        if not _inside(path, self.directory) or not path.is_file():
            raise TemplateError(f"no template '{name}' in {display_path(self.directory)}")
        try:
            return path.read_text(encoding="utf-8"), display_path(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"cannot read template '{name}': {exc}") from None

    def check(self, *, name: str | None = None, text: str | None = None) -> list[Problem]:
        """Syntax and unknown-name problems of one template, located in its own file."""
        if name is not None:
            try:
                source, where = self.source_of(name)
            except TemplateError as exc:
                return [Problem("", 0, str(exc))]
        else:
            source, where = text or "", ""  # inline text: the caller knows the runbook line
        return self.check_source(source, where)

    def check_source(self, source: str, where: str, names: frozenset[str] = CONTEXT_NAMES) -> list[Problem]:
        """The problems of one template's text; ``where`` is its file ("" for inline text)."""
        try:
            parsed = self.env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            line = exc.lineno if where else 0
            return [Problem(where, line or 0, f"template syntax error: {exc.message}")]
        allowed = ", ".join(sorted(names))
        return [
            Problem(
                where, _line_of(source, name) if where else 0, f"unknown name '{name}'; templates may use {allowed}"
            )
            for name in sorted(meta.find_undeclared_variables(parsed) - names)
        ]

    def variant(self, name: str, language: str | None) -> str:
        """``sms/outage.de.txt`` for a German speaker when that file exists beside ``sms/outage.txt``; else ``name``."""
        if not language:
            return name
        stem, dot, suffix = name.rpartition(".")
        candidate = f"{stem}.{language}.{suffix}" if dot else f"{name}.{language}"
        if self._known is None:
            self._known = frozenset(self.names()) | frozenset(self.overrides)
        return candidate if candidate in self._known else name

    def uses_person(self, *, name: str | None = None, text: str | None = None) -> bool:
        """Whether the rendered text can differ between recipients."""
        source = self.source_of(name)[0] if name is not None else (text or "")
        return "person" in meta.find_undeclared_variables(self.env.parse(source))

    def render(self, context: Mapping[str, Any], *, name: str | None = None, text: str | None = None) -> str:
        try:
            template = self.env.get_template(name) if name is not None else self._inline(text or "")
            return template.render(**context).strip()
        except jinja2.TemplateError as exc:
            raise TemplateError(f"cannot render {name or 'inline text'}: {exc}") from None


def _line_of(source: str, name: str) -> int:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, line in enumerate(source.splitlines(), start=1):
        if pattern.search(line):
            return number
    return 0


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True
