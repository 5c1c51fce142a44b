"""Activations: the one preview of a request, activating, approving, withdrawing, updates and stand-down.

The console, the API and the CLI call the same methods, so what an operator
previews is what is sent (``engine.trigger`` plans both). Writes run in one
transaction; the batches they queue go to the relay after the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from failover.clock import utcnow
from failover.db import Database
from failover.domain.preview import Preview
from failover.engine import activation, incidents, optouts, trigger, updates
from failover.engine.activation import Accepted
from failover.services.config import Configuration
from failover.services.relay import Relay

Transports = Callable[[], Mapping[str, str]]


class Activations:
    def __init__(self, database: Database, config: Configuration, relay: Relay, transports: Transports) -> None:
        self.database = database
        self.config = config
        self.relay = relay
        self.transports = transports  # what carries each channel now: previews name it

    # -- previews (nothing is written) -------------------------------------------

    def preview(
        self,
        *,
        runbook_ids: Sequence[str],
        reason: str,
        actor: str,
        services: Iterable[str] = (),
        drill: bool = False,
        override: str | None = None,
        message: str | None = None,
        opted_out: Collection[str] | None = None,
    ) -> Preview:
        """The one preview of an activation request: console, API ``dry_run`` and CLI (nothing is written)."""
        catalog = self.config.catalog()
        if opted_out is None:
            with self.database.reading() as session:
                opted_out = optouts.opted_out_people(session, catalog.contacts)
        return trigger.preview(
            catalog,
            runbook_ids=runbook_ids,
            reason=reason,
            actor=actor,
            services=services,
            drill=drill,
            override=override,
            message=message,
            opted_out=opted_out,
            prices=self.config.prices,
            transports=self.transports(),
        )

    def approval_preview(self, *, activation_id: int) -> Preview:
        """What approving a waiting activation sends, for the approver to read first."""
        catalog = self.config.catalog()
        with self.database.reading() as session:
            opted_out = optouts.opted_out_people(session, catalog.contacts)
            return trigger.preview_approval(
                session,
                catalog,
                activation_id=activation_id,
                prices=self.config.prices,
                opted_out=opted_out,
                transports=self.transports(),
            )

    def add_runbooks_preview(
        self, *, incident_id: int, runbook_ids: Sequence[str], reason: str, actor: str, override: str | None = None
    ) -> Preview:
        """What adding runbooks to an open incident would send (nothing is written)."""
        catalog = self.config.catalog()
        with self.database.reading() as session:
            return trigger.preview_for_incident(
                session,
                catalog,
                incident_id=incident_id,
                prices=self.config.prices,
                runbook_ids=runbook_ids,
                reason=reason,
                actor=actor,
                override=override,
            )

    def update_templates(self) -> dict[str, str]:
        return updates.templates_for_updates(self.config.templates())

    def update_preview(self, *, incident_id: int, update: updates.Update) -> Preview:
        catalog = self.config.catalog_or_none()  # updates go to whoever the ledger says was told: no file needed
        with self.database.reading() as session:
            return updates.preview(
                session,
                incident_id=incident_id,
                update=update,
                templates=self.config.templates(),
                contacts=catalog.contacts if catalog else None,
                prices=self.config.prices,
            )

    def stand_down_preview(
        self, *, incident_id: int, actor: str, all_clear: bool = True, override: str | None = None
    ) -> trigger.StandDown:
        catalog = self.config.catalog_or_none()  # standing down never depends on the files loading
        with self.database.reading() as session:
            opted_out = optouts.opted_out_people(session, catalog.contacts) if catalog is not None else ()
            return trigger.preview_all_clear(
                session,
                catalog,
                incident_id=incident_id,
                actor=actor,
                prices=self.config.prices,
                opted_out=opted_out,
                all_clear=all_clear,
                override=override,
                transports=self.transports(),
            )

    # -- writes, then publish --------------------------------------------------------

    def activate(
        self,
        *,
        runbook_id: str,
        reason: str,
        actor: str,
        incident_id: int | None = None,
        services: Iterable[str] = (),
        drill: bool = False,
        override: str | None = None,
        message: str | None = None,
        source: str = "manual",
    ) -> tuple[Accepted, bool]:
        """Accept one runbook's activation, then publish it. Returns (accepted, broker_took_it)."""
        catalog = self.config.catalog()
        with self.database.transaction() as session:
            accepted = activation.activate(
                session,
                catalog,
                runbook_id=runbook_id,
                reason=reason,
                actor=actor,
                incident_id=incident_id,
                services=services,
                drill=drill,
                override=override,
                message=message,
                source=source,
            )
        return accepted, self.relay.publish(accepted.batch_ids)

    def trigger(
        self,
        *,
        runbook_ids: Sequence[str],
        reason: str,
        actor: str,
        services: Iterable[str] = (),
        drill: bool = False,
        override: str | None = None,
        message: str | None = None,
        source: str = "manual",
        incident_id: int | None = None,
    ) -> tuple[list[Accepted], bool]:
        """One incident, one or more runbooks, one transaction; then publish."""
        catalog = self.config.catalog()
        with self.database.transaction() as session:
            accepted = trigger.activate(
                session,
                catalog,
                runbook_ids=runbook_ids,
                reason=reason,
                actor=actor,
                services=services,
                drill=drill,
                override=override,
                message=message,
                source=source,
                incident_id=incident_id,
            )
        return accepted, self.relay.publish([batch for item in accepted for batch in item.batch_ids])

    def send_update(
        self, *, incident_id: int, update: updates.Update, request_key: str, actor: str
    ) -> tuple[Accepted, bool]:
        catalog = self.config.catalog_or_none()
        with self.database.transaction() as session:
            accepted = updates.send(
                session,
                incident_id=incident_id,
                update=update,
                request_key=request_key,
                actor=actor,
                templates=self.config.templates(),
                contacts=catalog.contacts if catalog else None,
                now=utcnow(),
            )
        return accepted, self.relay.publish(accepted.batch_ids)

    def cancel(self, *, activation_id: int, actor: str, reason: str = "") -> None:
        with self.database.transaction() as session:
            activation.cancel(session, activation_id=activation_id, actor=actor, reason=reason)

    def approve(self, *, activation_id: int, actor: str) -> tuple[Accepted, bool]:
        catalog = self.config.catalog()
        with self.database.transaction() as session:
            accepted = activation.approve(session, catalog, activation_id=activation_id, actor=actor)
        return accepted, self.relay.publish(accepted.batch_ids)

    def resolve(
        self,
        *,
        incident_id: int,
        actor: str,
        note: str = "",
        all_clear: bool = True,
        override: str | None = None,
    ) -> tuple[list[Accepted], bool]:
        catalog = self.config.catalog_or_none()  # standing down never depends on the files loading
        with self.database.transaction() as session:
            accepted = incidents.resolve(
                session,
                catalog,
                incident_id=incident_id,
                actor=actor,
                note=note,
                all_clear=all_clear,
                override=override,
            )
        return accepted, self.relay.publish([batch for item in accepted for batch in item.batch_ids])
