"""Turn a runbook phase into concrete messages: who gets what, over which channel.

Pure: takes a catalog and plain values, returns a :class:`Plan`. The engine
stores the plan as ledger rows; the console shows it as a preview.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from failover.domain.contacts import Person, parse_ref
from failover.domain.runbooks import SMS_MAX_CHARS, Catalog, Runbook, Step
from failover.errors import InvalidRequest

STATUS_RECIPIENT = "status-page"
DRILL_PREFIX = "[DRILL] "


@dataclass(frozen=True)
class IncidentInfo:
    """What templates may say about the incident (a manual activation has one too)."""

    title: str
    services: tuple[str, ...] = ()
    id: int | None = None
    ms_issue_id: str | None = None
    impact: str | None = None
    started_at: dt.datetime | None = None


@dataclass(frozen=True)
class ActivationInfo:
    """What templates may say about the activation. The operator's internal note is not here: it is never sent."""

    id: int | None
    actor: str
    drill: bool = False
    message: str = ""  # the text the operator wrote for recipients (may be empty)

    @property
    def reason(self) -> str:
        """Templates written before the note and the message were separated say ``activation.reason``:
        they get the text meant for recipients, never the internal note."""
        return self.message


@dataclass(frozen=True)
class PlannedDelivery:
    step: str  # "steps.0", "on_resolve.1", "escalation.0"
    person_id: str
    channel: str
    address: str
    subject: str | None
    body: str
    groups: tuple[str, ...] = ()
    severity: str | None = None  # status notices
    language: str | None = None  # the template variant chosen for this recipient (None: the default text)


@dataclass(frozen=True)
class SkippedRecipient:
    step: str
    person_id: str
    channel: str
    reason: str


@dataclass
class Plan:
    runbook_id: str
    phase: str
    deliveries: list[PlannedDelivery] = field(default_factory=list)
    skipped: list[SkippedRecipient] = field(default_factory=list)

    def count_by_channel(self) -> dict[str, int]:
        return dict(Counter(d.channel for d in self.deliveries))

    def count_by_group(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for delivery in self.deliveries:
            counts.update(delivery.groups)
        return dict(counts)


def plan(
    catalog: Catalog,
    runbook: Runbook,
    *,
    phase: str,
    incident: IncidentInfo,
    activation: ActivationInfo,
    override: str | None = None,
    opted_out: Collection[str] = (),
    steps: Iterable[tuple[int, Step]] | None = None,
) -> Plan:
    """Expand recipients and render every text of one phase of a runbook.

    ``opted_out`` holds person ids who replied STOP: they get no SMS. In a
    drill every text is prefixed ``[DRILL]``, recipients are limited to the
    runbook's drill group and the public status page is left alone.
    """
    if activation.drill and not runbook.drill_group:
        raise InvalidRequest(f"runbook '{runbook.id}' has no drill_group, so it cannot be drilled")
    drill_members = (
        {p.id for p in catalog.contacts.members(runbook.drill_group)}
        if activation.drill and runbook.drill_group
        else None
    )
    result = Plan(runbook.id, phase)
    chosen = steps if steps is not None else enumerate(runbook.phase(phase))
    base = {"incident": incident, "runbook": runbook, "activation": activation}
    for index, step in chosen:
        key = f"{phase}.{index}"
        if step.channel == "status":
            if activation.drill:
                result.skipped.append(
                    SkippedRecipient(key, STATUS_RECIPIENT, "status", "drill: public status page left alone")
                )
                continue
            body = _render(catalog, step, base, None, override=None)
            result.deliveries.append(
                PlannedDelivery(key, STATUS_RECIPIENT, "status", "", step.title, body, severity=step.severity)
            )
            continue
        if step.channel == "chat":
            if activation.drill:
                result.skipped.append(SkippedRecipient(key, "chat", "chat", "drill: chat rooms left alone"))
                continue
            body = _prefixed(_render(catalog, step, base, None, override), activation) or ""
            for ref in step.to:
                room = ref.removeprefix("room:")  # one post per room per step; the row names the room, never its URL
                result.deliveries.append(PlannedDelivery(key, ref, "chat", room, step.title, body))
            continue
        renderer = _StepRenderer(catalog, step, base, override)
        for person in expand(catalog, step.to):
            if drill_members is not None and person.id not in drill_members:
                continue
            address, reason = _address(person, step.channel, opted_out)
            if address is None:
                result.skipped.append(SkippedRecipient(key, person.id, step.channel, reason))
                continue
            text, language = renderer.render(person)
            body = _prefixed(text, activation) or ""  # as sent: [DRILL] counts too
            if step.channel == "sms" and len(body) > SMS_MAX_CHARS:
                raise InvalidRequest(
                    f"{runbook.id} {key}: SMS text is {len(body)} characters; Twilio accepts {SMS_MAX_CHARS}"
                )
            subject = _prefixed(step.subject, activation) if step.channel == "email" else None
            result.deliveries.append(
                PlannedDelivery(key, person.id, step.channel, address, subject, body, person.groups, language=language)
            )
    return result


def expand(catalog: Catalog, refs: Iterable[str]) -> list[Person]:
    """People named by ``group:X`` / ``person:Y`` references, each once, in order."""
    seen: dict[str, Person] = {}
    for ref in refs:
        kind, name = parse_ref(ref)
        if kind == "group":
            people = catalog.contacts.members(name)
        else:
            person = catalog.contacts.person(name)
            people = [person] if person else []
        for person in people:
            seen.setdefault(person.id, person)
    return list(seen.values())


def _address(person: Person, channel: str, opted_out: Collection[str]) -> tuple[str | None, str]:
    if channel in {"sms", "voice"}:
        if not person.phone:
            return None, "no phone number"
        if person.id in opted_out:
            return None, "opted out of SMS (replied STOP)"
        return person.phone, ""
    if channel == "email":
        if not person.email:
            return None, "no email address"
        return str(person.email), ""
    raise InvalidRequest(f"channel '{channel}' does not address people")


def _prefixed(text: str | None, activation: ActivationInfo) -> str | None:
    """In a drill, ``[DRILL]`` once at the start of each text: never twice, even when a template says it already."""
    if text is None or not activation.drill:
        return text
    if text.lstrip().startswith(DRILL_PREFIX.strip()):
        return text
    return DRILL_PREFIX + text


class _StepRenderer:
    """Renders a step's text once per template variant, or once per person when the template uses ``person``.

    A recipient with a ``language`` gets the variant ``sms/outage.<language>.txt`` when it exists.
    """

    def __init__(self, catalog: Catalog, step: Step, base: dict[str, Any], override: str | None) -> None:
        self.catalog = catalog
        self.step = step
        self.base = base
        self.override = override
        self.shared: dict[str, str] = {}
        self.personal: dict[str, bool] = {}

    def render(self, person: Person) -> tuple[str, str | None]:
        """(text, language of the variant used - None for the default)."""
        name = self.step.template
        if name is not None and self.override is None:
            name = self.catalog.templates.variant(name, person.language)
        language = person.language if name != self.step.template else None
        key = name or ""
        if key not in self.personal:
            self.personal[key] = self.override is None and self.catalog.templates.uses_person(
                name=name, text=self.step.text
            )
        if self.personal[key]:
            return _render(self.catalog, self.step, self.base, person, self.override, name), language
        if key not in self.shared:
            self.shared[key] = _render(self.catalog, self.step, self.base, None, self.override, name)
        return self.shared[key], language


def _render(
    catalog: Catalog,
    step: Step,
    base: dict[str, Any],
    person: Person | None,
    override: str | None,
    name: str | None = None,
) -> str:
    if override is not None:
        return override.strip()
    context = dict(base, person=person)
    return catalog.templates.render(context, name=name or step.template, text=step.text)
