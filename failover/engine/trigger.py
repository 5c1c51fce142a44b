"""The console's trigger: one or more runbooks for one new incident, previewed, then accepted at once.

``preview`` renders everything the request would send and summarises it
(counts per channel and group, each text with its SMS segments, skipped
people, an estimated cost) without writing anything. ``activate`` opens one
incident and activates every chosen runbook for it in the caller's
transaction: either all are accepted or none is. ``preview_all_clear`` shows
what standing an incident down would send.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from failover.domain import planning
from failover.domain.planning import ActivationInfo, IncidentInfo, Plan
from failover.domain.preview import Preview, Prices, summarise
from failover.domain.runbooks import Catalog, Runbook
from failover.engine import activation
from failover.engine.activation import Accepted, incident_info
from failover.errors import Conflict, InvalidRequest, NotFound
from failover.models import ActivationState, Incident, IncidentState

MAX_RUNBOOKS = 10
NEW_INCIDENT = "activate the runbook for a new incident"
TITLE_MAX = 300


@dataclass(frozen=True)
class StandDown:
    preview: Preview
    cancels: tuple[int, ...]  # activations still awaiting approval, withdrawn by standing down
    unavailable: tuple[tuple[str, str], ...] = ()  # (runbook, why) whose all-clear cannot be sent now


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
    opted_out: Collection[str] = (),
    incident: IncidentInfo | None = None,
) -> Preview:
    chosen = _runbooks(catalog, runbook_ids)
    incident = incident or IncidentInfo(title=_title(chosen, drill), services=_services(chosen, services))
    info = ActivationInfo(id=None, reason=_reason(reason), actor=actor, drill=drill)
    override = override.strip() if override and override.strip() else None
    items: list[tuple[Runbook, Plan]] = [
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
    return summarise(items, prices)


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
    source: str = "manual",
    opted_out: Collection[str] = (),
    incident_id: int | None = None,
) -> list[Accepted]:
    """Open one incident (or join the open ``incident_id``) and activate each runbook for it, in one transaction.

    A runbook the incident already has is not activated again: its existing activation comes back
    with ``created=False``.
    """
    chosen = _runbooks(catalog, runbook_ids)
    reason = _reason(reason)
    if incident_id is not None:
        incident = activation.open_incident_by_id(session, incident_id, lock=True, then=NEW_INCIDENT)
        drill = incident.drill
    else:
        incident = activation.open_incident(
            session,
            title=_title(chosen, drill),
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
        if runbook is None:
            continue
        if not runbook.on_resolve or runbook.id in done:
            continue
        info = ActivationInfo(id=None, reason=f"all clear: {item.reason}", actor=actor, drill=item.drill)
        plan = planning.plan(
            catalog,
            runbook,
            phase="on_resolve",
            incident=incident_info(incident),
            activation=info,
            override=override.strip() if override and override.strip() else None,
            opted_out=opted_out,
        )
        items.append((runbook, plan))
    return StandDown(summarise(items, prices), tuple(cancels), tuple(unavailable))


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


def _title(chosen: Sequence[Runbook], drill: bool) -> str:
    title = ("[DRILL] " if drill else "") + " + ".join(r.title for r in chosen)
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidRequest("a reason is required: say why you are activating")
    if len(text) > 500:
        raise InvalidRequest("the reason is longer than 500 characters")
    return text
