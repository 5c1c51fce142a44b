"""The configuration in force: runbooks, contacts, templates and detection.yaml, each judged by domain.lastgood.

A broken file is replaced by its last good version (stored by
:class:`~failover.engine.snapshots.Snapshots`); files are reloaded when they
change. ``report()`` says what is broken and what is in force instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from failover import logs
from failover.db import Database
from failover.domain import lastgood, runbooks
from failover.domain.detection import config as detection_file
from failover.domain.detection.config import DetectionConfig
from failover.domain.preview import Prices
from failover.domain.runbooks import Catalog
from failover.domain.templates import Templates
from failover.engine import bridge
from failover.engine.snapshots import Snapshots
from failover.errors import ConfigProblems, Problem
from failover.settings import Settings


@dataclass(frozen=True)
class ConfigReport:
    """What the console, /readyz and the CLI say about the configuration files."""

    catalog: bool  # contacts are in force, so runbooks can be planned
    versions: dict[str, str]  # runbook id -> lastgood.CURRENT | LAST_GOOD
    broken: tuple[lastgood.Broken, ...]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.broken and not self.problems


class Configuration:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self._catalog: tuple[tuple[tuple[str, int, int], ...], runbooks.Loaded] | None = None
        self._catalog_lock = threading.Lock()
        self._detection: tuple[tuple[int, int] | None, detection_file.Loaded] | None = None
        self._detection_lock = threading.Lock()
        # Set by the runtime: puts contacts.yaml into the people table and hands the catalog its directory.
        self.adopt: Callable[[runbooks.Loaded], runbooks.Loaded] = lambda loaded: loaded
        # Set by the runtime too: whether the people table holds this very contacts.yaml (then it is not parsed).
        self.known: Callable[[str], bool] = lambda text: False

    @cached_property
    def snapshots(self) -> Snapshots:
        return Snapshots(self.database)

    @property
    def prices(self) -> Prices:
        settings = self.settings
        return Prices(settings.sms_segment_price, settings.email_price, settings.price_currency, settings.sms_pace)

    # -- runbooks, contacts, templates ----------------------------------------

    def catalog(self) -> Catalog:
        """Contacts, runbooks and templates in force; ConfigProblems only while no contacts are (nothing to plan)."""
        loaded = self.loaded()
        if loaded.catalog is None:
            raise ConfigProblems(loaded.problems)
        return loaded.catalog

    def catalog_or_none(self) -> Catalog | None:
        """The catalog, or None while no contacts are in force (receipts, pages and stand-down carry on)."""
        return self.loaded().catalog

    def loaded(self) -> runbooks.Loaded:
        """The files as they are, each broken one replaced by its last good version; reloaded when a file changes."""
        signature = _signature(self.settings.config_dir, self.settings.runbooks_dir)
        with self._catalog_lock:
            if self._catalog is None or self._catalog[0] != signature:
                loaded = runbooks.assemble(
                    self.settings.config_dir, self.settings.runbooks_dir, self.snapshots.get, self.known
                )
                if loaded.catalog is not None:
                    bridge.install(loaded.catalog.templates, self.settings)  # {channel: bridge} texts the real line
                self.snapshots.remember(loaded.good)
                logs.broken_config(loaded.broken)
                loaded = self.adopt(loaded)
                self._catalog = (signature, replace(loaded, good={}))  # the texts are stored; do not hold them
            return self._catalog[1]

    def templates(self) -> Templates:
        """The catalog's templates, or the templates directory itself while no contacts are in force."""
        catalog = self.catalog_or_none()
        return catalog.templates if catalog else Templates(self.settings.runbooks_dir / "templates")

    # -- detection.yaml ---------------------------------------------------------

    def detection(self) -> DetectionConfig:
        """The policy in force: detection.yaml, or its last good version while the file is broken.

        ConfigProblems (file:line) only when it is broken and no good version was ever seen.
        """
        loaded = self.detection_loaded()
        if loaded.config is None:
            raise ConfigProblems(loaded.problems)
        return loaded.config

    def detection_loaded(self) -> detection_file.Loaded:
        """detection.yaml judged as domain.lastgood judges every file; reloaded when it changes."""
        path = detection_file.detection_file(self.settings.config_dir)
        try:
            stat = path.stat()
            signature: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            signature = None
        with self._detection_lock:
            if self._detection is None or self._detection[0] != signature:
                loaded = detection_file.assemble(self.settings.config_dir, self.snapshots.get)
                self.snapshots.remember(loaded.good)
                if loaded.broken is not None:
                    logs.broken_config((loaded.broken,))
                self._detection = (signature, replace(loaded, good={}))
            return self._detection[1]

    # -- the report -------------------------------------------------------------

    def report(self) -> ConfigReport:
        """Every broken configuration file and what is in force instead: for banners, /readyz and the CLI."""
        loaded = self.loaded()
        detection = self.detection_loaded()
        broken = (*loaded.broken, *((detection.broken,) if detection.broken else ()))
        problems = sorted({*loaded.problems, *detection.problems}, key=lambda p: (p.file, p.line, p.message))
        return ConfigReport(loaded.catalog is not None, dict(loaded.versions), broken, problems)


def _signature(*directories: Path) -> tuple[tuple[str, int, int], ...]:
    entries = []
    for directory in directories:
        if directory.is_dir():
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    stat = path.stat()
                    entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)
