"""What an operator sees before confirming: counts, texts, SMS segments and an estimated cost.

Pure: takes the :class:`~failover.domain.planning.Plan` of each chosen
runbook and the configured prices, and returns a :class:`Preview` that holds
no contact data (person ids, never addresses), so the console and the API can
show it as it is. Its ``fingerprint`` changes whenever a recipient, an
address or a text changes: confirming a preview that no longer matches what
would be sent is refused and shown again.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from failover.domain.contacts import parse_ref
from failover.domain.labels import step_label
from failover.domain.pacing import HandOut, Pace
from failover.domain.pacing import estimate as handout_estimate
from failover.domain.planning import Plan, PlannedDelivery
from failover.domain.runbooks import Runbook
from failover.domain.sms import SmsInfo, analyse

NAMED = "(named)"  # recipients addressed as person:ID rather than through a group


@dataclass(frozen=True)
class Prices:
    """Per-segment and per-email prices; ``None`` means not configured (no guess is shown).

    ``pace``: the providers' declared speed, for how long the SMS take to reach phones (domain.pacing).
    """

    sms_segment: Decimal | None = None
    email: Decimal | None = None
    currency: str = "USD"
    pace: Pace = field(default_factory=Pace)


@dataclass(frozen=True)
class TextVariant:
    """One distinct text of a step and how many recipients get it."""

    subject: str | None
    body: str
    recipients: int
    sms: SmsInfo | None = None


@dataclass(frozen=True)
class StepPreview:
    step: str
    channel: str
    recipients: int
    groups: dict[str, int]
    texts: tuple[TextVariant, ...]
    label: str = ""  # "Step 1 · SMS to oncall"
    transport: str | None = None  # twilio, sendgrid, status, outbox: where the messages really go
    languages: dict[str, int] = field(default_factory=dict)  # recipients per template language ("default")

    @property
    def sms_segments(self) -> int:
        return sum(t.sms.segments * t.recipients for t in self.texts if t.sms)


@dataclass(frozen=True)
class Skip:
    runbook_id: str
    step: str
    person_id: str
    channel: str
    reason: str
    label: str = ""


@dataclass(frozen=True)
class RunbookPreview:
    runbook_id: str
    title: str
    phase: str
    needs_approval: bool
    steps: tuple[StepPreview, ...]


@dataclass(frozen=True)
class Cost:
    currency: str
    sms_segments: int
    emails: int
    sms: Decimal | None
    email: Decimal | None

    @property
    def total(self) -> Decimal | None:
        """The sum, or None when a price that this preview needs is not configured."""
        if self.sms is None and self.email is None:
            return None
        parts = [part for part, count in ((self.sms, self.sms_segments), (self.email, self.emails)) if count]
        if any(part is None for part in parts):
            return None
        return sum((part for part in parts if part is not None), Decimal(0))


@dataclass(frozen=True)
class Preview:
    runbooks: tuple[RunbookPreview, ...]
    counts: dict[str, int]
    groups: dict[str, dict[str, int]]  # channel -> group -> recipients
    skipped: tuple[Skip, ...]
    cost: Cost
    fingerprint: str
    handout: HandOut | None = None  # how long the SMS take to leave the provider; None: no SMS

    @property
    def needs_approval(self) -> tuple[str, ...]:
        return tuple(r.runbook_id for r in self.runbooks if r.needs_approval)

    @property
    def outbox_only(self) -> tuple[str, ...]:
        """Channels whose messages would only land in the outbox: nobody would receive them."""
        return tuple(
            dict.fromkeys(
                step.channel for section in self.runbooks for step in section.steps if step.transport == "outbox"
            )
        )


def summarise(
    items: Sequence[tuple[Runbook, Plan]],
    prices: Prices,
    *,
    transports: Mapping[str, str] | None = None,
    automatic: bool = False,
) -> Preview:
    """Summarise the plans of one request (one or more runbooks, one phase each).

    ``transports`` names what carries each channel (``twilio``, ``outbox``, ...);
    ``automatic``: the watcher activates them, so ``manual`` runbooks wait for an operator too.
    """
    transports = transports or {}
    sections = []
    counts: Counter[str] = Counter()
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    skipped: list[Skip] = []
    digest = hashlib.sha256()
    for runbook, plan in items:
        steps = []
        by_step: dict[str, list[PlannedDelivery]] = defaultdict(list)
        for delivery in plan.deliveries:
            by_step[delivery.step].append(delivery)
            digest.update(_line(runbook.id, delivery))
        for step_key, deliveries in by_step.items():
            step_groups = _groups(runbook, plan.phase, step_key, deliveries)
            steps.append(
                StepPreview(
                    step=step_key,
                    channel=deliveries[0].channel,
                    recipients=len(deliveries),
                    groups=step_groups,
                    texts=_texts(deliveries),
                    label=step_label(step_key, deliveries[0].channel, runbook),
                    transport=transports.get(deliveries[0].channel),
                    languages=dict(Counter(d.language or "default" for d in deliveries)),
                )
            )
            counts[deliveries[0].channel] += len(deliveries)
            groups[deliveries[0].channel].update(step_groups)
        for skip in plan.skipped:
            label = step_label(skip.step, skip.channel, runbook)
            skipped.append(Skip(runbook.id, skip.step, skip.person_id, skip.channel, skip.reason, label))
            digest.update(f"skip\x00{runbook.id}\x00{skip.step}\x00{skip.person_id}\x00{skip.channel}\n".encode())
        sections.append(
            RunbookPreview(
                runbook_id=runbook.id,
                title=runbook.title,
                phase=plan.phase,
                needs_approval=plan.phase == "steps"
                and (
                    runbook.trigger.activation == "approval" or (automatic and runbook.trigger.activation == "manual")
                ),
                steps=tuple(steps),
            )
        )
    return Preview(
        runbooks=tuple(sections),
        counts=dict(counts),
        groups={channel: dict(per_group) for channel, per_group in groups.items()},
        skipped=tuple(skipped),
        cost=estimate(sections, prices),
        fingerprint=digest.hexdigest()[:32],
        handout=_handout(sections, prices.pace),
    )


def _handout(sections: Sequence[RunbookPreview], pace: Pace) -> HandOut | None:
    """The SMS that really leave (not the outbox's): how long our sending and the provider's hand-out take."""
    steps = [s for section in sections for s in section.steps if s.channel == "sms" and s.transport != "outbox"]
    return handout_estimate(sum(s.recipients for s in steps), sum(s.sms_segments for s in steps), pace)


def estimate(sections: Sequence[RunbookPreview], prices: Prices) -> Cost:
    segments = sum(step.sms_segments for section in sections for step in section.steps)
    emails = sum(step.recipients for section in sections for step in section.steps if step.channel == "email")
    return Cost(
        currency=prices.currency,
        sms_segments=segments,
        emails=emails,
        sms=_money(prices.sms_segment * segments) if prices.sms_segment is not None else None,
        email=_money(prices.email * emails) if prices.email is not None else None,
    )


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _texts(deliveries: list[PlannedDelivery]) -> tuple[TextVariant, ...]:
    variants: Counter[tuple[str | None, str]] = Counter((d.subject, d.body) for d in deliveries)
    channel = deliveries[0].channel
    return tuple(
        TextVariant(subject, body, count, analyse(body) if channel == "sms" else None)
        for (subject, body), count in variants.items()
    )


def _groups(runbook: Runbook, phase: str, step_key: str, deliveries: list[PlannedDelivery]) -> dict[str, int]:
    """Recipients per group the step addressed; a person in two addressed groups counts in each."""
    step = runbook.step_at(step_key)  # None for messages no runbook step describes (an incident update)
    refs = step.to if step is not None else ()
    addressed = [name for kind, name in map(parse_ref, refs) if kind == "group"]
    counts: Counter[str] = Counter()
    for delivery in deliveries:
        if delivery.channel == "status":
            continue
        matched = [group for group in addressed if group in delivery.groups]
        counts.update(matched or [NAMED])
    return dict(counts)


def _line(runbook_id: str, delivery: PlannedDelivery) -> bytes:
    # The address is part of the fingerprint (a changed number changes what is sent) but
    # only as a hash input: the fingerprint itself reveals nothing.
    fields = (runbook_id, delivery.step, delivery.person_id, delivery.channel, delivery.address)
    return ("\x00".join((*fields, delivery.subject or "", delivery.body)) + "\n").encode()
