"""After-action reports: what one activation (drill or real) achieved, computed from its ledger rows alone.

Pure: the engine reads an activation's ``Delivery`` rows, its answers and its
escalation timers into the small records below, and :func:`build` turns them
into a :class:`Report`: who was targeted, reached, acknowledged and needed
help (overall, by group and by channel), how long the first and last message
and 50 % / 90 % of acknowledgements took, failures by reason, the cost and the
escalations that fired. :func:`compare` lines several reports up for the
drills page.

Words, as the activation page uses them (``domain.reach``):

* **targeted**: a step of the activation itself went to them (escalation
  pages, approval pages and the status page do not make someone targeted);
* **reached**: a delivery receipt for one of their messages, or an answer
  (a message handed to a provider or the outbox is not proof);
* **acknowledged** / **needs help**: their answer (the latest counts); the time
  of an acknowledgement is the time of their first answer;
* **unreachable**: named by a step, but no channel could carry anything to them.

Times are seconds from the moment the activation was accepted.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from failover.domain import receipts, sms
from failover.domain.preview import Prices

ACK, NEED_HELP = "ack", "need_help"
ALL = "(everyone)"
NOT_SENT = frozenset({receipts.SKIPPED, receipts.CANCELLED})
BILLED_TRANSPORTS = frozenset({"twilio", "sendgrid", "vonage"})  # the outbox and the status page cost nothing


@dataclass(frozen=True)
class LedgerRow:
    person_id: str
    step: str  # steps.0, on_resolve.1, escalation.0, approval.0
    channel: str  # sms | email | voice | status
    status: str
    transport: str | None = None
    error_code: str | None = None
    last_error: str | None = None
    sent_at: dt.datetime | None = None
    body: str = ""


@dataclass(frozen=True)
class AnswerRow:
    person_id: str
    answer: str  # ack | need_help
    first_at: dt.datetime


@dataclass(frozen=True)
class EscalationRow:
    entry: int
    condition: str
    channel: str
    due_at: dt.datetime
    fired_at: dt.datetime | None
    outcome: str | None
    paged: int
    limited: int


@dataclass(frozen=True)
class Tally:
    """People: of those targeted, how many were reached, acknowledged, needed help; plus the unreachable."""

    targeted: int = 0
    reached: int = 0
    acknowledged: int = 0
    need_help: int = 0
    unreachable: int = 0
    failed: int = 0  # targeted people with at least one message failed for good

    @property
    def reach_rate(self) -> float | None:
        return self.reached / self.targeted if self.targeted else None

    @property
    def ack_rate(self) -> float | None:
        return self.acknowledged / self.targeted if self.targeted else None

    @property
    def answered(self) -> int:
        return self.acknowledged + self.need_help


@dataclass(frozen=True)
class ChannelTally:
    """Messages of the activation's own steps over one channel."""

    channel: str
    messages: int = 0  # rows that went out (not skipped or cancelled)
    delivered: int = 0  # with a delivery receipt
    failed: int = 0
    awaiting: int = 0  # still pending / sending / in doubt, or sent with no receipt yet
    people: int = 0  # targeted people this channel carried something to
    people_reached: int = 0  # of those, reached on this channel


@dataclass(frozen=True)
class Cost:
    sms_segments: int
    emails: int
    calls: int
    currency: str
    sms: Decimal | None
    email: Decimal | None

    @property
    def total(self) -> Decimal | None:
        """The sum of the priced parts; None when a part that was used has no price configured."""
        parts = [(self.sms, self.sms_segments), (self.email, self.emails)]
        if any(price is None and count for price, count in parts):
            return None
        return sum((price for price, count in parts if price is not None and count), Decimal("0.00"))


@dataclass(frozen=True)
class Report:
    started_at: dt.datetime
    overall: Tally
    by_group: dict[str, Tally]
    by_channel: list[ChannelTally]
    first_message_s: float | None
    last_message_s: float | None
    ack_50_s: float | None
    ack_90_s: float | None
    ack_curves: dict[str, list[tuple[float, float]]]  # group -> (seconds, share of the group's targeted acked)
    failures: list[tuple[str, int]]  # reason -> rows, most frequent first
    cost: Cost
    escalations: list[EscalationRow]
    escalation_messages: int
    messages: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


def build(
    *,
    started_at: dt.datetime,
    rows: Iterable[LedgerRow],
    answers: Iterable[AnswerRow],
    groups_of: Mapping[str, Sequence[str]],
    prices: Prices,
    escalations: Sequence[EscalationRow] = (),
) -> Report:
    """The after-action report of one activation (see the module docstring for the words)."""
    rows = [row for row in rows if row.channel != "status" and not row.step.startswith("approval.")]
    answer_of = {a.person_id: a for a in answers}
    own = [row for row in rows if not row.step.startswith("escalation.")]

    targeted: set[str] = set()
    addressed: set[str] = set()
    reached: set[str] = set()
    failed: set[str] = set()
    for row in own:
        addressed.add(row.person_id)
        if row.status not in NOT_SENT:
            targeted.add(row.person_id)
        if row.status == receipts.FAILED:
            failed.add(row.person_id)
    for row in rows:  # a receipt for an escalation page proves the person reachable too
        if receipts.reached(row.status, row.transport):
            reached.add(row.person_id)
    reached |= set(answer_of)

    def tally(people: Iterable[str]) -> Tally:
        people = set(people)
        asked = people & targeted
        return Tally(
            targeted=len(asked),
            reached=len(asked & reached),
            acknowledged=sum(1 for p in asked if p in answer_of and answer_of[p].answer == ACK),
            need_help=sum(1 for p in asked if p in answer_of and answer_of[p].answer == NEED_HELP),
            unreachable=len({p for p in people & addressed if p not in targeted and p not in answer_of}),
            failed=len(asked & failed),
        )

    members: dict[str, set[str]] = defaultdict(set)
    for person_id in addressed | set(answer_of):
        for group in groups_of.get(person_id, ()):
            members[group].add(person_id)
    everyone = addressed | set(answer_of)
    by_group = {ALL: tally(everyone), **{g: tally(members[g]) for g in sorted(members)}}

    ack_times = {p: _seconds(started_at, a.first_at) for p, a in answer_of.items() if a.answer == ACK and p in targeted}
    curves = {
        group: _curve(
            [ack_times[p] for p in (everyone if group == ALL else members[group]) if p in ack_times],
            by_group[group].targeted,
        )
        for group in by_group
        if by_group[group].targeted
    }
    sent_times = sorted(_seconds(started_at, row.sent_at) for row in own if row.sent_at is not None)
    overall = by_group[ALL]
    return Report(
        started_at=started_at,
        overall=overall,
        by_group=by_group,
        by_channel=_channels(own, targeted, reached),
        first_message_s=sent_times[0] if sent_times else None,
        last_message_s=sent_times[-1] if sent_times else None,
        ack_50_s=time_to_share(sorted(ack_times.values()), overall.targeted, 0.5),
        ack_90_s=time_to_share(sorted(ack_times.values()), overall.targeted, 0.9),
        ack_curves=curves,
        failures=failures_by_reason(rows),
        cost=cost(rows, prices),
        escalations=list(escalations),
        escalation_messages=sum(1 for r in rows if r.step.startswith("escalation.") and r.status not in NOT_SENT),
        messages=sum(1 for r in own if r.status not in NOT_SENT),
        statuses=dict(Counter(r.status for r in own)),
    )


def time_to_share(times: Sequence[float], total: int, share: float) -> float | None:
    """Seconds until ``share`` of ``total`` people had acknowledged (``times`` sorted); None if never."""
    if total <= 0:
        return None
    needed = math.ceil(total * share - 1e-9)
    if needed <= 0:
        return 0.0
    return times[needed - 1] if len(times) >= needed else None


def _curve(times: list[float], total: int) -> list[tuple[float, float]]:
    """The step curve of acknowledgements: (seconds, share acknowledged by then), starting at (0, 0)."""
    points = [(0.0, 0.0)]
    for index, seconds in enumerate(sorted(times), start=1):
        points.append((seconds, index / total))
    return points


def _channels(own: Sequence[LedgerRow], targeted: set[str], reached: set[str]) -> list[ChannelTally]:
    out = []
    for channel in sorted({row.channel for row in own}):
        mine = [row for row in own if row.channel == channel and row.status not in NOT_SENT]
        people = {row.person_id for row in mine} & targeted
        people_reached = {row.person_id for row in mine if receipts.reached(row.status, row.transport)}
        out.append(
            ChannelTally(
                channel=channel,
                messages=len(mine),
                delivered=sum(1 for row in mine if receipts.reached(row.status, row.transport)),
                failed=sum(1 for row in mine if row.status == receipts.FAILED),
                awaiting=sum(1 for row in mine if _awaiting(row)),
                people=len(people),
                people_reached=len(people_reached & reached & people),
            )
        )
    return out


def _awaiting(row: LedgerRow) -> bool:
    """More news can still come: still being sent, or sent through a provider that reports back."""
    if row.status in (receipts.PENDING, receipts.SENDING, receipts.IN_DOUBT):
        return True
    return row.status == receipts.SENT and (row.transport or "") in receipts.RECEIPT_TRANSPORTS


def failure_reason(row: LedgerRow) -> str:
    """One line per kind of failure: the provider's code and words, never an address (they are not in errors)."""
    words = (row.last_error or "").strip().splitlines()[0][:120] if row.last_error else ""
    if row.error_code and words:
        return f"{row.error_code}: {words}"
    return row.error_code or words or "unknown"


def failures_by_reason(rows: Iterable[LedgerRow]) -> list[tuple[str, int]]:
    counts = Counter(failure_reason(row) for row in rows if row.status == receipts.FAILED)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def cost(rows: Iterable[LedgerRow], prices: Prices) -> Cost:
    """What the messages handed to a provider cost: SMS by segment, mail by message (escalations included)."""
    segments = emails = calls = 0
    for row in rows:
        if row.sent_at is None or row.transport not in BILLED_TRANSPORTS or row.status in NOT_SENT:
            continue
        if row.channel == "sms":
            segments += sms.analyse(row.body).segments
        elif row.channel == "email":
            emails += 1
        elif row.channel == "voice":
            calls += 1
    return Cost(
        sms_segments=segments,
        emails=emails,
        calls=calls,
        currency=prices.currency,
        sms=_money(prices.sms_segment * segments) if prices.sms_segment is not None else None,
        email=_money(prices.email * emails) if prices.email is not None else None,
    )


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def _seconds(start: dt.datetime, at: dt.datetime) -> float:
    return max(0.0, (at - start).total_seconds())


# -- drills over time ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillPoint:
    activation_id: int
    at: dt.datetime
    runbook_id: str
    targeted: int
    reach_rate: float | None
    ack_rate: float | None
    ack_50_s: float | None
    ack_90_s: float | None


def compare(items: Iterable[tuple[int, str, Report]]) -> list[DrillPoint]:
    """Drills side by side, oldest first: reach and acknowledgement rates and times, for the drills chart."""
    points = [
        DrillPoint(
            activation_id=activation_id,
            at=report.started_at,
            runbook_id=runbook_id,
            targeted=report.overall.targeted,
            reach_rate=report.overall.reach_rate,
            ack_rate=report.overall.ack_rate,
            ack_50_s=report.ack_50_s,
            ack_90_s=report.ack_90_s,
        )
        for activation_id, runbook_id, report in items
    ]
    return sorted(points, key=lambda p: (p.at, p.activation_id))
