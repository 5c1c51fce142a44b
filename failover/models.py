"""SQLAlchemy 2.0 models: the durable state of failover.

The delivery ledger (``Delivery``) is the heart of it: one row per activation
x step x recipient x channel, made unique in the database, so a message can
only ever be sent from a row that is ``pending``. The broker only carries
``DispatchBatch`` ids; losing a broker message delays a send, never loses it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from failover.clock import utcnow
from failover.domain.states import ActivationState as ActivationState
from failover.domain.states import DeliveryStatus as DeliveryStatus
from failover.domain.states import EscalationState as EscalationState
from failover.domain.states import IncidentState as IncidentState


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use clock.utcnow()")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return value.replace(tzinfo=dt.UTC) if value is not None else None


# The SQL integer limit: ids and numbers taken from requests are checked against it (a 404 or 400, never an
# overflow in the driver).
MAX_ID = 2_147_483_647


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # Sealed with failover.secretbox (a Fernet token); plain base32 only in rows from before revision 0009.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    # The last TOTP time step accepted: a code is good once, so a shoulder-surfed code cannot be replayed.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]
    # A person of config/contacts.yaml: their phone is paged when an activation awaits approval.
    contact_id: Mapped[str | None] = mapped_column(String(64))


class ConsoleSession(Base):
    """A console login, checked on every request: deleting the row ends the session whatever the cookie says.

    The cookie carries a random token; only its SHA-256 is stored. ``pending``
    rows are logins that passed the password and wait for the TOTP code;
    ``totp_failures`` counts the wrong codes tried against this one.
    """

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_failures: Mapped[int] = mapped_column(Integer, default=0)
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Written at most once a minute (see engine/sessions.py), not on every request.
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for the JSON API: created by an admin for a person, with a role and an expiry.

    Only the SHA-256 of the token is stored (tokens are 256 random bits, so a
    fast hash is enough); ``prefix`` lets people tell their tokens apart. The
    token acts for ``user`` (never with more than their role, never once they
    are disabled); tokens from before owners existed may have none.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    services: Mapped[list[Any]] = mapped_column(default=list)
    state: Mapped[str] = mapped_column(String(16), default=IncidentState.CONFIRMED)
    source: Mapped[str] = mapped_column(String(32))  # manual | watcher | api
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    ms_issue_ids: Mapped[list[Any]] = mapped_column(default=list)
    impact: Mapped[str | None] = mapped_column(Text)
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(64))

    activations: Mapped[list[Activation]] = relationship(back_populates="incident", order_by="Activation.id")


class Activation(Base):
    """One runbook phase (``steps`` or ``on_resolve``) fired for one incident."""

    __tablename__ = "activations"
    __table_args__ = (
        # A confirmed incident activates each runbook exactly once (and all-clears once).
        UniqueConstraint("incident_id", "runbook_id", "phase", name="uq_activation_once"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    runbook_id: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(16), default="steps")
    state: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text)  # the internal note: audit log and console only, never sent
    message: Mapped[str | None] = mapped_column(Text)  # shown to recipients (templates' activation.message)
    requested_by: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    override: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    # Its escalation timers: active | paused (none fires until resumed) | cancelled (none ever fires).
    escalation: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    # The console form a send came from (updates): the same form submitted twice sends once.
    request_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    incident: Mapped[Incident] = relationship(back_populates="activations")


class DispatchBatch(Base):
    """The transactional outbox: a group of ledger rows one broker task sends.

    Written in the same transaction as its rows; ``published_at`` is set once
    the broker accepted the task. A sweep republishes batches that still hold
    due ``pending`` rows, so a broker outage or a lost task only delays sending.
    """

    __tablename__ = "dispatch_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    started_at: Mapped[dt.datetime | None]  # when a task last claimed its rows
    publish_count: Mapped[int] = mapped_column(Integer, default=0)


class Delivery(Base):
    """The ledger: one message to one recipient over one channel."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("activation_id", "step", "person_id", "channel", name="uq_delivery_once"),
        Index("ix_deliveries_batch_status", "batch_id", "status"),
        Index("ix_deliveries_status_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("dispatch_batches.id"))
    step: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    severity: Mapped[str | None] = mapped_column(String(16))  # status notices only
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    transport: Mapped[str | None] = mapped_column(String(16))  # twilio | sendgrid | outbox | status
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    error_code: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None]
    claimed_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Delivery tracking (issue 5): how far the provider got (domain.receipts.Progress label), the
    # provider's own word for it, when it arrived, and when a failure's fallback was decided.
    receipt: Mapped[str | None] = mapped_column(String(16))
    provider_status: Mapped[str | None] = mapped_column(String(24))
    delivered_at: Mapped[dt.datetime | None]
    followed_up_at: Mapped[dt.datetime | None]


class Notice(Base):
    """A notice on the public fallback status page."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16), default="major")
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]
    # The all-clear posted on this notice when its incident was stood down: one card, marked resolved.
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by_delivery: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    # The public incident it is (issue 14, engine/statuspage.py): incident | maintenance, where its updates stand
    # (investigating .. resolved, scheduled .. completed), the components it touches (name -> state), the window.
    kind: Mapped[str] = mapped_column(String(16), default="incident", server_default="incident")
    progress: Mapped[str] = mapped_column(String(16), default="investigating", server_default="investigating")
    components: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    scheduled_for: Mapped[dt.datetime | None]
    scheduled_until: Mapped[dt.datetime | None]


class ConfigSnapshot(Base):
    """The last good version of one configuration file, shared by every process (see engine.snapshots)."""

    __tablename__ = "config_snapshots"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # config/contacts.yaml, runbooks/x.yaml, ...
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[dt.datetime]


class OutboxMessage(Base):
    """A message the embedded ``outbox`` channel caught instead of sending."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    to: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# -- outage detection (issue 3): see failover/engine/detection/decisions.py ------------------------------------------


class WatchHead(Base):
    """The detector's lock row: every evaluation locks it, so two watchers take turns."""

    __tablename__ = "watch_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    graph_state: Mapped[str | None] = mapped_column(String(16))  # ok | unreachable | misconfigured | throttled
    graph_detail: Mapped[str | None] = mapped_column(Text)
    graph_checked_at: Mapped[dt.datetime | None]
    graph_ok_at: Mapped[dt.datetime | None]  # last successful Graph poll
    graph_backoff_until: Mapped[dt.datetime | None]  # a long Retry-After: no poll before this


class WatchedService(Base):
    """One watched service's place in the detection state machine (domain.detector.ServiceState)."""

    __tablename__ = "watched_services"

    service: Mapped[str] = mapped_column(String(100), primary_key=True)
    phase: Mapped[str] = mapped_column(String(16))
    since: Mapped[dt.datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="")
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    graph_status: Mapped[str | None] = mapped_column(String(40))  # healthOverviews status
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DetectionVote(Base):
    """A voter's standing opinion about one service (domain.signals.Vote)."""

    __tablename__ = "detection_votes"

    voter: Mapped[str] = mapped_column(String(200), primary_key=True)
    service: Mapped[str] = mapped_column(String(100), primary_key=True)
    origin: Mapped[str] = mapped_column(String(120))
    failing: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[dt.datetime]
    seen_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    summary: Mapped[str] = mapped_column(Text, default="")


class ServiceIssue(Base):
    """A Microsoft service health issue (EX…, MO…) as the last successful poll saw it."""

    __tablename__ = "service_issues"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service: Mapped[str] = mapped_column(String(100), index=True)
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(40))
    classification: Mapped[str] = mapped_column(String(40))
    is_resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    impact: Mapped[str | None] = mapped_column(Text)
    feature: Mapped[str | None] = mapped_column(String(200))
    latest_post: Mapped[str | None] = mapped_column(Text)
    latest_post_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    last_modified_at: Mapped[dt.datetime | None]
    current: Mapped[bool] = mapped_column(Boolean, default=True)  # still listed by Graph
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Signal(Base):
    """A reading that mattered (a verdict that changed, a Microsoft issue that moved, a webhook call)."""

    __tablename__ = "signals"
    __table_args__ = (Index("ix_signals_service_at", "service", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))  # graph | issue | probe | webhook | manual
    origin: Mapped[str] = mapped_column(String(120))
    voter: Mapped[str] = mapped_column(String(200))
    service: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(40))  # failing | healthy | a Microsoft status
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ms_issue_id: Mapped[str | None] = mapped_column(String(64))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)


class AuditEvent(Base):
    """Append-only, hash-chained record of every decision and message."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)  # gapless sequence
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    incident_id: Mapped[int | None] = mapped_column(Integer, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's tip, locked by each appender: serialises the chain across processes.

    ``key_id`` names the FAILOVER_AUDIT_KEY the chain is signed with (a one-way
    fingerprint, never the key); ``keyed_from`` is the first event hashed with it.
    Events before it are the unkeyed chain older versions wrote; the event at
    ``keyed_from`` (``audit.keyed``) carries it over (see failover/engine/audit.py).
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(16))
    keyed_from: Mapped[int | None] = mapped_column(Integer)


class AuditCheckpoint(Base):
    """A signed checkpoint of the chain (head hash, count, time), as also written to the anchors outside.

    Kept here so every process can verify incrementally from the newest one; the
    copies that prove anything live where the database's writer cannot reach
    (the log, checkpoint files, e-mail).
    """

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    key_id: Mapped[str] = mapped_column(String(16))
    keyed_from: Mapped[int] = mapped_column(Integer)
    signature: Mapped[str] = mapped_column(String(64))


class WebhookRefusal(Base):
    """Refused webhook calls, counted per endpoint and status in a window: one audit row each, not one per call."""

    __tablename__ = "webhook_refusals"

    key: Mapped[str] = mapped_column(String(48), primary_key=True)  # "<endpoint>:<status>"
    endpoint: Mapped[str] = mapped_column(String(32))
    status: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[dt.datetime]
    last_at: Mapped[dt.datetime]
    count: Mapped[int] = mapped_column(Integer, default=0)  # refusals in this window after the audited first
    reason: Mapped[str] = mapped_column(Text, default="")  # the latest, scrubbed and cut
    remote: Mapped[str | None] = mapped_column(String(64))


# -- delivery tracking, replies and escalation (issue 5) ---------------------------

# "Latest open activation of this person" and per-person roster reads.
Index("ix_deliveries_person", Delivery.person_id, Delivery.activation_id)
# The follow-up sweep looks for failures whose fallback is not decided yet.
Index("ix_deliveries_status_followup", Delivery.status, Delivery.followed_up_at)


class ProviderEvent(Base):
    """A provider callback as received: delivery receipts, inbound SMS, keypresses.

    ``(provider, event_key)`` is unique, which is how repeats are dropped (SendGrid's
    ``sg_event_id``, Twilio's MessageSid + status). A receipt for a row the
    dispatcher still holds waits here with ``applied_at`` unset until the sweep
    applies it.
    """

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_key", name="uq_provider_event_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))  # twilio | sendgrid
    kind: Mapped[str] = mapped_column(String(16))  # status | inbound | keypress
    event_key: Mapped[str] = mapped_column(String(128))
    delivery_id: Mapped[int | None] = mapped_column(Integer, index=True)
    provider_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(24))
    progress: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)  # scrubbed of contact data
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    applied_at: Mapped[dt.datetime | None]


class Answer(Base):
    """A person's answer to an activation: acknowledged, or (check-in) needs help. The latest answer counts."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("activation_id", "person_id", name="uq_answer_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id"))
    person_id: Mapped[str] = mapped_column(String(64))
    answer: Mapped[str] = mapped_column(String(16))  # ack | need_help
    via: Mapped[str] = mapped_column(String(16))  # sms | voice | console (an operator, on their behalf)
    first_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OptOut(Base):
    """A number that replied STOP (or that Twilio reports as unsubscribed): no SMS or call until START."""

    __tablename__ = "opt_outs"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    person_id: Mapped[str | None] = mapped_column(String(64))
    keyword: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EscalationTimer(Base):
    """One runbook escalation entry of one activation: due at ``due_at``, fired at most once."""

    __tablename__ = "escalation_timers"
    __table_args__ = (
        UniqueConstraint("activation_id", "entry", name="uq_escalation_once"),
        Index("ix_escalation_timers_due", "fired_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id"))
    entry: Mapped[int] = mapped_column(Integer)  # index into the runbook's escalation list
    condition: Mapped[str] = mapped_column(String(16))  # unacknowledged | undelivered
    channel: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[dt.datetime]
    fired_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))  # paged | nobody | cancelled | missing
    paged: Mapped[int] = mapped_column(Integer, default=0)
    limited: Mapped[int] = mapped_column(Integer, default=0)


class InboundLimit(Base):
    """A fixed-window counter for automatic answers to inbound SMS (keyed by a hash, never a number)."""

    __tablename__ = "inbound_limits"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[dt.datetime]
    count: Mapped[int] = mapped_column(Integer, default=0)


# -- readiness (issue 16): heartbeats and canaries, see failover/engine/readiness.py and canary.py ----------


class Heartbeat(Base):
    """A worker's or the beat's latest sign of life, one row per process name (``worker@host``, ``beat``)."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # worker | beat
    at: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime]
    pid: Mapped[int | None] = mapped_column(Integer)


class CanaryRun(Base):
    """One canary message: sent through one provider to one designated target, then waited on.

    ``outcome`` is None while it waits for its delivery receipt (matched on
    ``provider_id`` among the stored provider events), then ok | failed.
    ``target`` is stored masked: the designated numbers and addresses live in the settings.
    """

    __tablename__ = "canary_runs"
    __table_args__ = (Index("ix_canary_runs_pending", "outcome", "deadline_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms | email
    transport: Mapped[str] = mapped_column(String(16))  # twilio | sendgrid | outbox | ...
    target: Mapped[str] = mapped_column(String(320))  # masked
    started_at: Mapped[dt.datetime] = mapped_column(index=True)
    deadline_at: Mapped[dt.datetime]
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    receipt_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    alerted: Mapped[bool] = mapped_column(Boolean, default=False)


# -- drills (issue 16): see failover/engine/drills.py ---------------------------------------------------------


class DrillRun(Base):
    """One scheduled drill's time slot, taken once: the unique key is what stops a slot from running twice."""

    __tablename__ = "drill_runs"
    __table_args__ = (UniqueConstraint("schedule", "slot", name="uq_drill_run_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule: Mapped[str] = mapped_column(String(64))
    slot: Mapped[dt.datetime]
    runbook_id: Mapped[str] = mapped_column(String(64))
    activation_id: Mapped[int | None] = mapped_column(ForeignKey("activations.id"))
    outcome: Mapped[str] = mapped_column(String(16))  # started | failed
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


from failover import models_people  # noqa: E402,F401  - the people directory's tables (issue 13), same metadata

# -- the public status page (issue 14): see failover/engine/statuspage.py and engine/subscribers.py ---------


class NoticeUpdate(Base):
    """One timestamped update of a public incident; subscribers are told of it once (``told_at``)."""

    __tablename__ = "notice_updates"
    __table_args__ = (Index("ix_notice_updates_untold", "told_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    progress: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    components: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    told_at: Mapped[dt.datetime | None]  # when its subscriber messages were written to the ledger


class StatusSubscriber(Base):
    """Someone who asked to hear about incidents: an email address, a phone number or a webhook URL."""

    __tablename__ = "status_subscribers"
    __table_args__ = (UniqueConstraint("kind", "address", name="uq_status_subscriber"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # email | sms | webhook
    address: Mapped[str] = mapped_column(String(320))
    components: Mapped[list[Any] | None] = mapped_column(JSON)  # None: every component
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | confirmed | unsubscribed
    confirm_hash: Mapped[str | None] = mapped_column(String(64))  # sha256 of the pending confirmation token
    confirm_sent: Mapped[int] = mapped_column(Integer, default=0)
    confirm_sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[dt.datetime | None]
    unsubscribed_at: Mapped[dt.datetime | None]


class StatusRevision(Base):
    """One row: bumped in the transaction of every change the public page shows (the publish outbox)."""

    __tablename__ = "status_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StatusTarget(Base):
    """Where one publish target stands: the revision it holds, its failures and its next retry."""

    __tablename__ = "status_targets"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[dt.datetime | None]
    latency_ms: Mapped[int | None] = mapped_column(Integer)  # from the change to the snapshot being readable
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row; 0 once it succeeds again
    failed_total: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None]
    lease_until: Mapped[dt.datetime | None]  # a publisher holds it until then


# -- staff talking back (issue 18): reports, activation by phone, polls, the bridge ---------------------


class StaffReport(Base):
    """One counted staff outage report (domain.staff_reports); the text itself is never stored."""

    __tablename__ = "staff_reports"
    __table_args__ = (Index("ix_staff_reports_service_at", "service", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    service: Mapped[str] = mapped_column(String(100))
    reporter: Mapped[str] = mapped_column(String(64), index=True)  # a person id, or web:<client hash>
    via: Mapped[str] = mapped_column(String(8))  # sms | web


class OperatorPhone(Base):
    """An operator's registered phone for activation by SMS: a PIN (argon2) and its lock-out counter."""

    __tablename__ = "operator_phones"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), unique=True)  # E.164
    pin_hash: Mapped[str] = mapped_column(String(255))
    failures: Mapped[int] = mapped_column(Integer, default=0)  # wrong PINs and codes in a row
    failed_at: Mapped[dt.datetime | None]
    locked_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PhoneRequest(Base):
    """A RUN (or APPROVE) texted by an operator, waiting for their TOTP code."""

    __tablename__ = "phone_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # run | approve
    runbook_id: Mapped[str | None] = mapped_column(String(64))
    activation_id: Mapped[int | None] = mapped_column(ForeignKey("activations.id"))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | refused | expired
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]


class Poll(Base):
    """A runbook step's question with numbered answers, asked in one activation."""

    __tablename__ = "polls"
    __table_args__ = (UniqueConstraint("activation_id", "step", name="uq_poll_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id"), index=True)
    step: Mapped[str] = mapped_column(String(32))
    question: Mapped[str] = mapped_column(Text)
    options: Mapped[list[Any]] = mapped_column(default=list)
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]


class PollAnswer(Base):
    """A person's numbered answer to a poll (the latest counts)."""

    __tablename__ = "poll_answers"
    __table_args__ = (UniqueConstraint("poll_id", "person_id", name="uq_poll_answer"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"), index=True)
    person_id: Mapped[str] = mapped_column(String(64))
    choice: Mapped[int] = mapped_column(Integer)  # 1-based
    answered_at: Mapped[dt.datetime]


class Bridge(Base):
    """A bridge line opened by a runbook step: a Twilio conference, or a fixed dial-in number and PIN."""

    __tablename__ = "bridges"
    __table_args__ = (UniqueConstraint("activation_id", "step", name="uq_bridge_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    activation_id: Mapped[int] = mapped_column(ForeignKey("activations.id"), index=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    step: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))  # conference | fixed
    name: Mapped[str] = mapped_column(String(64))  # the conference's friendly name
    number: Mapped[str] = mapped_column(String(32))
    pin: Mapped[str] = mapped_column(String(16))
    conference_sid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BridgeParticipant(Base):
    """Who joined a bridge, from Twilio's signed conference status callbacks."""

    __tablename__ = "bridge_participants"
    __table_args__ = (UniqueConstraint("bridge_id", "call_sid", name="uq_bridge_call"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bridge_id: Mapped[int] = mapped_column(ForeignKey("bridges.id"), index=True)
    call_sid: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str | None] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(32))  # masked
    joined_at: Mapped[dt.datetime | None]
    left_at: Mapped[dt.datetime | None]
