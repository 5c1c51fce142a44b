"""Every send a person starts is previewed here, one way, before it is confirmed.

``preview`` renders everything a request would send and summarises it
(counts per channel and group, each text with its SMS segments and the
transport that carries it, skipped people, an estimated cost) without
writing anything. It is the one preview of the console's trigger form, the
API's ``dry_run`` and ``failover activate``; ``preview_approval`` shows an
approver the same for an activation that waits, ``preview_confirm`` what
confirming an outage by hand would send, and ``preview_all_clear`` what
standing an incident down sends. Each carries a fingerprint: a confirm
whose preview no longer matches is shown again instead of sent.

``activate`` opens one incident and activates every chosen runbook for it in
the caller's transaction: either all are accepted or none is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from failover.domain import planning
from failover.domain.detection.config import DetectionConfig, fold
from failover.domain.detection.policy import IN_INCIDENT
from failover.domain.detection.policy import incident_title as outage_title
from failover.domain.planning import ActivationInfo, IncidentInfo, Plan
from failover.domain.preview import Preview, Prices, summarise
from failover.domain.runbooks import Catalog, Runbook
from failover.engine import activation
from failover.engine.activation import Accepted, activation_info, incident_info, incident_title, note, optional_text
from failover.engine.detection.decisions import ACTOR as WATCHER
from failover.errors import Conflict, InvalidRequest, NotFound
from failover.models import Activation, ActivationState, Incident, IncidentState, WatchedService

MAX_RUNBOOKS = 10
NEW_INCIDENT = "activate the runbook for a new incident"


@dataclass(frozen=True)
class StandDown:
    preview: Preview
    cancels: tuple[int, ...]  # activations still awaiting approval, withdrawn by standing down
    unavailable: tuple[tuple[str, str], ...] = ()  # (runbook, why) whose all-clear cannot be sent now


@dataclass(frozen=True)
class OutageConfirm:
    """What confirming an outage of ``service`` by hand would do."""

    service: str
    preview: Preview  # the runbooks it activates; those with needs_approval wait for an operator
    title: str  # of the incident it opens or joins
    joins: int | None  # the open incident it joins, if any


def preview(
    catalog: Catalog,
    *,
    runbook_ids: Sequence[str],
    reason: str,
    actor: str,
    prices: Prices,
    services: Iterable[str] = (),
    drill: bool = False,
    override: str | None = None,
    message: str | None = None,
    opted_out: Collection[str] = (),
    transports: Mapping[str, str] | None = None,
    incident: IncidentInfo | None = None,
) -> Preview:
    """What activating ``runbook_ids`` for one new incident (or for ``incident``) would send; nothing is written."""
    chosen = _runbooks(catalog, runbook_ids)
    note(reason)  # the same checks as accepting it: a preview never promises what a confirm would refuse
    incident = incident or IncidentInfo(title=incident_title(chosen), services=_services(chosen, services))
    info = ActivationInfo(id=None, actor=actor, drill=drill, message=optional_text(message) or "")
    return _summary(catalog, chosen, incident, info, optional_text(override), opted_out, prices, transports)


def activate(
    session: Session,
    catalog: Catalog,
    *,
    runbook_ids: Sequence[str],
    reason: str,
    actor: str,
    services: Iterable[str] = (),
    drill: bool = False,
    override: str | None = None,
    message: str | None = None,
    source: str = "manual",
    opted_out: Collection[str] = (),
    incident_id: int | None = None,
) -> list[Accepted]:
    """Open one incident (or join the open ``incident_id``) and activate each runbook for it, in one transaction.

    A runbook the incident already has is not activated again: its existing activation comes back
    with ``created=False``.
    """
    chosen = _runbooks(catalog, runbook_ids)
    reason = note(reason)
    if incident_id is not None:
        incident = activation.open_incident_by_id(session, incident_id, lock=True, then=NEW_INCIDENT)
        drill = incident.drill
    else:
        incident = activation.open_incident(
            session,
            title=incident_title(chosen),
            services=_services(chosen, services),
            source=source,
            actor=actor,
            drill=drill,
        )
    return [
        activation.activate(
            session,
            catalog,
            runbook_id=runbook.id,
            reason=reason,
            actor=actor,
            incident_id=incident.id,
            drill=drill,
            override=override,
            message=message,
            source=source,
            opted_out=opted_out,
        )
        for runbook in chosen
    ]


def preview_for_incident(
    session: Session, catalog: Catalog, *, incident_id: int, prices: Prices, **kwargs: object
) -> Preview:
    """What adding runbooks to the open ``incident_id`` would send (nothing is written)."""
    incident = activation.open_incident_by_id(session, incident_id, then=NEW_INCIDENT)
    return preview(catalog, prices=prices, incident=incident_info(incident), drill=incident.drill, **kwargs)  # type: ignore[arg-type]


def added_to(session: Session, incident_id: int) -> set[str]:
    """The runbooks an incident has activated (or asked approval for): not offered again."""
    incident = session.get(Incident, incident_id)
    return {a.runbook_id for a in incident.activations if a.phase == "steps"} if incident else set()


def preview_approval(
    session: Session,
    catalog: Catalog,
    *,
    activation_id: int,
    prices: Prices,
    opted_out: Collection[str] = (),
    transports: Mapping[str, str] | None = None,
) -> Preview:
    """What approving a waiting activation would send: the approver sees every text before releasing it."""
    item = session.get(Activation, activation_id)
    if item is None:
        raise NotFound(f"no activation {activation_id}")
    if item.state != ActivationState.PENDING_APPROVAL:
        raise Conflict(f"activation {activation_id} is {item.state}, not awaiting approval")
    runbook = catalog.runbook(item.runbook_id)
    if runbook is None:
        raise NotFound(f"no runbook '{item.runbook_id}' any more: withdraw activation {activation_id}")
    return _summary(
        catalog,
        [runbook],
        incident_info(item.incident),
        activation_info(item),
        item.override,
        opted_out,
        prices,
        transports,
    )


def preview_confirm(
    session: Session,
    catalog: Catalog,
    config: DetectionConfig,
    *,
    service: str,
    reason: str,
    prices: Prices,
    opted_out: Collection[str] = (),
    transports: Mapping[str, str] | None = None,
) -> OutageConfirm:
    """What confirming an outage of ``service`` by hand would send (``engine.detection.confirm_by_hand``).

    The service joins the incident of the outage already open, or opens one;
    each runbook whose trigger names it and that the incident has not
    activated yet is activated by the watcher: ``auto`` ones are sent at once,
    ``manual`` and ``approval`` ones wait for an operator.
    """
    watched = config.service(service)
    if watched is None:
        raise NotFound(f"'{service}' is not watched (watched: {', '.join(config.watch) or 'none'})")
    note(reason)
    open_ids = session.scalars(
        select(WatchedService.incident_id)
        .join(Incident, Incident.id == WatchedService.incident_id)
        .where(WatchedService.phase.in_([str(p) for p in IN_INCIDENT]), Incident.state == IncidentState.CONFIRMED)
    ).all()
    joined = session.get(Incident, min(open_ids)) if open_ids else None
    done: set[str] = set()
    if joined is not None:
        info = incident_info(joined)
        done = {a.runbook_id for a in joined.activations if a.phase == "steps"}
    else:
        info = IncidentInfo(title=outage_title([watched]), services=(watched,))
    chosen = [
        runbook
        for runbook in catalog.runbooks.values()
        if runbook.id not in done and any(fold(s) == fold(watched) for s in runbook.trigger.services)
    ]
    summary = _summary(
        catalog,
        chosen,
        info,
        ActivationInfo(id=None, actor=WATCHER),
        None,
        opted_out,
        prices,
        transports,
        automatic=True,
    )
    return OutageConfirm(watched, summary, info.title, joined.id if joined is not None else None)


def preview_all_clear(
    session: Session,
    catalog: Catalog | None,
    *,
    incident_id: int,
    actor: str,
    prices: Prices,
    opted_out: Collection[str] = (),
    all_clear: bool = True,
    override: str | None = None,
    transports: Mapping[str, str] | None = None,
) -> StandDown:
    """What ``incidents.resolve`` would send and withdraw, rendered the same way, nothing written."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    if incident.state != IncidentState.CONFIRMED:
        raise Conflict(f"incident {incident_id} is already resolved")
    done = {a.runbook_id for a in incident.activations if a.phase == "on_resolve"}
    items: list[tuple[Runbook, Plan]] = []
    cancels = []
    unavailable = []
    for item in incident.activations:
        if item.phase != "steps":
            continue
        if item.state == ActivationState.PENDING_APPROVAL:
            cancels.append(item.id)
            continue
        if item.state not in (ActivationState.QUEUED, ActivationState.COMPLETED) or not all_clear:
            continue
        missing = activation.all_clear_unavailable(catalog, item.runbook_id)
        if missing is not None:
            unavailable.append((item.runbook_id, missing))
            continue
        assert catalog is not None
        runbook = catalog.runbook(item.runbook_id)
        if runbook is None or not runbook.on_resolve or runbook.id in done:
            continue
        info = ActivationInfo(id=None, actor=actor, drill=item.drill)
        plan = planning.plan(
            catalog,
            runbook,
            phase="on_resolve",
            incident=incident_info(incident),
            activation=info,
            override=optional_text(override),
            opted_out=opted_out,
        )
        items.append((runbook, plan))
    return StandDown(summarise(items, prices, transports=transports), tuple(cancels), tuple(unavailable))


def _summary(
    catalog: Catalog,
    chosen: Sequence[Runbook],
    incident: IncidentInfo,
    info: ActivationInfo,
    override: str | None,
    opted_out: Collection[str],
    prices: Prices,
    transports: Mapping[str, str] | None,
    *,
    automatic: bool = False,
) -> Preview:
    items = [
        (
            runbook,
            planning.plan(
                catalog,
                runbook,
                phase="steps",
                incident=incident,
                activation=info,
                override=override,
                opted_out=opted_out,
            ),
        )
        for runbook in chosen
    ]
    return summarise(items, prices, transports=transports, automatic=automatic)


def _runbooks(catalog: Catalog, runbook_ids: Sequence[str]) -> list[Runbook]:
    ids = list(dict.fromkeys(runbook_ids))
    if not ids:
        raise InvalidRequest("choose at least one runbook")
    if len(ids) > MAX_RUNBOOKS:
        raise InvalidRequest(f"choose at most {MAX_RUNBOOKS} runbooks at once")
    chosen = []
    for runbook_id in ids:
        runbook = catalog.runbook(runbook_id)
        if runbook is None:
            known = ", ".join(sorted(catalog.runbooks)) or "none"
            raise NotFound(f"no runbook '{runbook_id}' (known: {known})")
        chosen.append(runbook)
    return chosen


def _services(chosen: Sequence[Runbook], services: Iterable[str]) -> tuple[str, ...]:
    picked = tuple(dict.fromkeys(s.strip() for s in services if s and s.strip()))
    if picked:
        return picked
    return tuple(dict.fromkeys(s for runbook in chosen for s in runbook.trigger.services))
