"""The people directory as a service (``rt.people``): sources in, the roster out, and what the console says about it.

Built once per process by the runtime with exactly what it needs (the
database, where the config lives, a way to reach Graph). ``adopt`` puts
contacts.yaml into the people table and hands the catalog a
:class:`~failover.engine.directory.PeopleDirectory`; ``sync_graph`` and
``import_csv`` make snapshots from Entra ID and HR files; ``status`` says how
fresh the roster is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from failover.clock import utcnow
from failover.db import Database
from failover.domain import csvimport, people
from failover.domain.contacts import Contacts, Directory, Listed, Person
from failover.domain.runbooks import CONTACTS_KEY, Loaded
from failover.engine import people as snapshots
from failover.engine import selfservice, verification
from failover.engine.directory import PeopleDirectory
from failover.errors import ConfigError, InvalidRequest, Problem
from failover.models_people import PeopleSnapshot, PeopleSource
from failover.sources.graph import GraphClient, GraphError
from failover.sources.graph_users import DeltaExpired, GraphUsers, raw_fields, to_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceStatus:
    source: str
    last_ok_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_error: str | None
    stale: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "last_ok_at": self.last_ok_at.isoformat() if self.last_ok_at else None,
            "last_attempt_at": self.last_attempt_at.isoformat() if self.last_attempt_at else None,
            "last_error": self.last_error,
            "stale": self.stale,
        }


class People:
    def __init__(
        self,
        database: Database,
        config_dir: Path,
        *,
        graph: Callable[[], GraphClient | None],
        sleep: Callable[[float], None],
        publish: Callable[[list[int]], bool],
        directory: Callable[[], Directory],
        public_url: str,
    ) -> None:
        self.database = database
        self.config_dir = config_dir
        self._graph = graph
        self._sleep = sleep
        self._publish = publish  # hands batch ids to the broker (the relay); False: the sweep will
        self._directory = directory  # the catalog's people (loading it puts contacts.yaml in the table)
        self.public_url = public_url
        self._config: tuple[Any, people.PeopleConfig] | None = None

    # -- configuration ----------------------------------------------------------------

    def config(self) -> people.PeopleConfig:
        """people.yaml as it validates now (defaults while it is missing or broken: `runbooks check` says why)."""
        path = people.people_file(self.config_dir)
        stat = path.stat() if path.is_file() else None
        signature = (stat.st_mtime_ns, stat.st_size) if stat else None
        if self._config is None or self._config[0] != signature:
            problems: list[Problem] = []
            config = people.load_config(path, problems)
            for problem in problems:
                log.error("people.yaml: %s", problem)
            self._config = (signature, config)
        return self._config[1]

    def sync_every(self) -> dt.timedelta | None:
        """How often beat syncs Entra ID users (None: people.yaml has no graph source)."""
        source = self.config().source("graph")
        return source.interval if source is not None else None

    # -- contacts.yaml --------------------------------------------------------------------

    def adopt(self, loaded: Loaded) -> Loaded:
        """contacts.yaml (as in force) into the people table; the catalog then reads people from the table.

        Without the table (the database is not migrated yet) the catalog keeps the file's people in memory.
        """
        catalog = loaded.catalog
        if catalog is not None and isinstance(catalog.contacts, Listed):  # holds_yaml said the table has it
            directory = PeopleDirectory(self.database, catalog.contacts.groups)
            return replace(loaded, catalog=replace(catalog, contacts=directory))
        if catalog is None or not isinstance(catalog.contacts, Contacts):
            return loaded
        contacts = catalog.contacts
        try:
            if self.config().source("yaml") is not None:
                self.sync_yaml(contacts, text=loaded.good.get(CONTACTS_KEY))
            else:
                self._regroup_if_rules_changed()
        except SQLAlchemyError as exc:
            log.error("people table unavailable (%s): planning reads contacts.yaml from memory", type(exc).__name__)
            return loaded
        directory = PeopleDirectory(self.database, contacts.groups)
        return replace(loaded, catalog=replace(catalog, contacts=directory))

    def holds_yaml(self, text: str) -> bool:
        """Whether the people table was synced from exactly this contacts.yaml under the people.yaml in force."""
        if self.config().source("yaml") is None:
            return False
        try:
            with self.database.reading() as session:
                state = session.get(PeopleSource, "yaml")
                return state is not None and state.signature == self._text_signature(text)
        except SQLAlchemyError:
            return False  # not migrated yet: parse the file, keep its people in memory

    def _text_signature(self, text: str) -> str:
        return "t" + hashlib.sha256(text.encode() + b"\x00" + self.config().signature().encode()).hexdigest()

    def sync_yaml(
        self, contacts: Contacts, *, actor: str = "config", text: str | None = None
    ) -> snapshots.Outcome | None:
        """contacts.yaml's people into the table, unless this version is there already.

        ``text``: the file as read; its hash is the signature, which lets other processes skip parsing it
        (holds_yaml). Without it (a last good version in force) the people themselves are hashed.
        """
        records = {p.id: people.from_person(p) for p in contacts.people}
        if text is not None:
            digest = self._text_signature(text)
        else:
            digest = hashlib.sha256(
                json.dumps([r.as_dict() for r in records.values()], sort_keys=True).encode()
                + self.config().signature().encode()
            ).hexdigest()
        with self.database.reading() as session:
            state = session.get(PeopleSource, "yaml")
            if state is not None and state.signature == digest:
                return None
        with self.database.transaction() as session:
            outcome = snapshots.apply(
                session,
                source="yaml",
                records=records,
                config=self.config(),
                now=utcnow(),
                actor=actor,
                check_removals=False,  # a hand-edited, validated file says what it means
                signature=digest,
            )
        return outcome

    def _regroup_if_rules_changed(self) -> None:
        with self.database.transaction() as session:
            snapshots.apply(
                session, source="rules", records={}, config=self.config(), now=utcnow(), actor="config", kind="rules"
            )

    # -- CSV --------------------------------------------------------------------------------

    def import_csv(
        self,
        data: bytes,
        filename: str,
        *,
        actor: str,
        dry_run: bool = False,
        accept: bool = False,
        default_region: str | None = None,
    ) -> tuple[snapshots.Outcome | None, csvimport.Parsed]:
        """A whole CSV file or nothing: problems come back with no change; else the snapshot (or dry-run diff)."""
        source = self.config().source("csv")
        region = default_region or (source.default_region if source else "US")
        parsed = csvimport.parse(data, filename, default_region=region)
        if parsed.problem_count:
            return None, parsed
        with self.database.transaction() as session:
            outcome = snapshots.apply(
                session,
                source="csv",
                records=parsed.records,
                config=self.config(),
                now=utcnow(),
                actor=actor,
                kind="import",
                dry_run=dry_run,
                accept=accept,
            )
        return outcome, parsed

    # -- Microsoft Graph ------------------------------------------------------------------

    def sync_task(self, *, actor: str = "beat", accept: bool = False) -> dict[str, Any]:
        """Beat's (and the console's) sync: contacts.yaml is brought in first, as every process does."""
        self._directory()
        return self.sync_graph(actor=actor, accept=accept).as_dict()

    def sync_graph(self, *, actor: str = "beat", accept: bool = False) -> snapshots.Outcome:
        """One delta (or full) sync of Entra ID users. A failure keeps the roster in force and is recorded."""
        source = self.config().source("graph")
        if source is None:
            raise InvalidRequest("no graph source in config/people.yaml")
        client = self._graph()
        if client is None:
            raise ConfigError("people sync from Graph needs FAILOVER_GRAPH_TENANT_ID, _CLIENT_ID and _CLIENT_SECRET")
        users = GraphUsers(client, select_extra=raw_fields(source.mapping), sleep=self._sleep)
        with self.database.reading() as session:
            state = session.get(PeopleSource, "graph")
            delta_link = state.delta_link if state else None
        kind = "delta" if delta_link else "full"
        try:
            try:
                delta = users.fetch(delta_link)
            except DeltaExpired as exc:
                log.warning("Graph rejected the deltaLink (%s): starting a full sync", exc)
                with self.database.transaction() as session:
                    snapshots.forget_delta(session, "graph")
                kind = "full"
                delta = users.fetch(None)
        except GraphError as exc:
            error = f"{exc.failure.kind}: {exc.failure.detail}"
            log.error("people sync from Graph failed, the last good roster stays in force: %s", error)
            with self.database.transaction() as session:
                snapshot_id = snapshots.record_failure(
                    session, source="graph", error=error, now=utcnow(), actor=actor, kind=kind
                )
            return snapshots.Outcome("graph", "failed", reason=error, snapshot_id=snapshot_id)
        with self.database.transaction() as session:
            if delta.full:
                records: dict[str, people.Record] = {}
                for user in delta.users.values():
                    record = to_record(user, source.mapping)
                    if record is not None:
                        records[record.id] = record
                outcome = snapshots.apply(
                    session,
                    source="graph",
                    records=records,
                    config=self.config(),
                    now=utcnow(),
                    actor=actor,
                    kind="full",
                    accept=accept,
                    delta_link=delta.delta_link,
                )
                if outcome.status in ("applied", "unchanged"):
                    snapshots.store_raw_users(session, dict(delta.users), full=True)
                return outcome
            known = snapshots.raw_users(session, [*delta.users, *delta.removed])
            changes: dict[str, people.Record | None] = {}
            raw: dict[str, dict[str, Any] | None] = {}
            for object_id in delta.removed:
                old = to_record({**known.get(object_id, {}), "accountEnabled": True}, source.mapping)
                if old is not None:
                    changes[old.id] = None
                raw[object_id] = None
            for object_id, changed in delta.users.items():
                merged = {**known.get(object_id, {}), **changed}
                raw[object_id] = merged
                old = to_record({**known.get(object_id, {}), "accountEnabled": True}, source.mapping)
                new = to_record(merged, source.mapping)
                if old is not None and (new is None or new.id != old.id):
                    changes[old.id] = None
                if new is not None:
                    changes[new.id] = new
            outcome = snapshots.apply(
                session,
                source="graph",
                changes=changes,
                config=self.config(),
                now=utcnow(),
                actor=actor,
                kind="delta",
                accept=accept,
                delta_link=delta.delta_link,
            )
            if outcome.status in ("applied", "unchanged"):
                snapshots.store_raw_users(session, raw, full=False)
            return outcome

    # -- verification -----------------------------------------------------------------------

    def verify(self, *, group: str | None, actor: str) -> tuple[int, int, bool]:
        """Send "reply YES" texts to a group (or everyone in force): (activation id, texts, broker took them)."""
        selected = self._selection(group)
        with self.database.transaction() as session:
            activation_id, batch_ids, texts = verification.start(
                session, people=selected, actor=actor, now=utcnow(), label=group or "everyone"
            )
        return activation_id, texts, self._publish(batch_ids)

    def _selection(self, group: str | None) -> list[Person]:
        directory = self._directory()
        if group is not None and group not in directory.groups:
            raise InvalidRequest(f"no group '{group}'")
        return directory.members(group) if group is not None else list(getattr(directory, "people", ()))

    # -- self-service ------------------------------------------------------------------------

    def invite(self, *, group: str | None, actor: str) -> tuple[int, int, bool]:
        """Personal self-service links to a group (or everyone): (activation id, links, broker took them)."""
        selected = self._selection(group)
        with self.database.transaction() as session:
            activation_id, batch_ids, sent = selfservice.invite(
                session,
                people=selected,
                actor=actor,
                now=utcnow(),
                public_url=self.public_url,
                label=group or "everyone",
            )
        return activation_id, sent, self._publish(batch_ids)

    def self_page(self, token: str) -> selfservice.Page:
        with self.database.reading() as session:
            return selfservice.page(session, token, utcnow())

    def self_submit(self, token: str, *, phone: str | None, email: str | None, language: str | None) -> bool:
        """What a person entered; True when codes were sent (False: applied at once, a language alone)."""
        with self.database.transaction() as session:
            batch_ids = selfservice.submit(
                session, token, phone=phone, email=email, language=language, config=self.config(), now=utcnow()
            )
        self._publish(batch_ids)
        return bool(batch_ids)

    def self_confirm(self, token: str, *, phone_code: str, email_code: str) -> bool:
        with self.database.transaction() as session:
            return selfservice.confirm(
                session, token, phone_code=phone_code, email_code=email_code, config=self.config(), now=utcnow()
            )

    # -- what the console, /readyz and the doctor say ------------------------------------------

    def status(self, *, now: dt.datetime | None = None) -> dict[str, Any]:
        now = now or utcnow()
        config = self.config()
        stale_after = config.safety.stale_after
        kinds = [s.kind for s in config.sources]
        with self.database.reading() as session:
            states = {s.source: s for s in session.scalars(select(PeopleSource).where(PeopleSource.source.in_(kinds)))}
            total = snapshots.active_count(session)
            latest = session.scalars(
                select(PeopleSnapshot).where(PeopleSnapshot.status == "applied").order_by(PeopleSnapshot.id.desc())
            ).first()
        sources = []
        for kind in kinds:
            state = states.get(kind)
            last_ok = state.last_ok_at if state else None
            stale = kind == "graph" and (last_ok is None or now - last_ok > stale_after)
            sources.append(
                SourceStatus(
                    kind, last_ok, state.last_attempt_at if state else None, state.last_error if state else None, stale
                )
            )
        # "Roster as of": the last good sync from Entra ID when it is a source (files are as of their edit).
        goods = [s.last_ok_at for s in sources if s.last_ok_at and (s.source == "graph" or "graph" not in kinds)]
        newest = max(goods) if goods else None
        return {
            "people": total,
            "as_of": newest.isoformat() if newest else None,
            "latest_snapshot": latest.id if latest else None,
            "latest_source": latest.source if latest else None,
            "stale": any(s.stale for s in sources),
            "stale_after_s": int(stale_after.total_seconds()),
            "sources": [s.as_dict() for s in sources],
        }


def read_upload(path: Path) -> bytes:
    """A CSV file from disk, refusing one over the limit before reading it whole."""
    size = os.path.getsize(path)
    if size > csvimport.MAX_BYTES:
        raise InvalidRequest(f"{path}: {size // (1024 * 1024)} MB, larger than {csvimport.MAX_BYTES // 2**20} MB")
    return path.read_bytes()
