"""Inbound signals from other monitors (``POST /webhooks/signals``): verify, then parse.

Authentication: header ``X-Failover-Signature: sha256=<hex>``, the
HMAC-SHA256 of the exact raw body keyed with ``FAILOVER_SIGNALS_SECRET``.

Two body shapes are accepted (README, "Signals from other monitors"):

* the generic shape::

    {"source": "uptime-kuma",
     "signals": [{"service": "Exchange Online", "status": "failing",
                  "check": "owa-login", "summary": "OWA answers 503", "ttl": "30m"}]}

  (a single signal may also sit at the top level beside ``source``);
* Prometheus Alertmanager's webhook payload (``version`` "4"), each alert
  naming its service in the label ``failover_service`` or ``service``.

One monitor is one independent origin for the probe quorum, however many
alerts it sends. Anything that does not fit raises :class:`SignalRejected`
with the HTTP status and a message that says what is wrong.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from failover import inputs
from failover.domain.detection.config import DetectionConfig
from failover.domain.detection.signals import Reading
from failover.domain.durations import parse_duration

SIGNATURE_HEADER = "X-Failover-Signature"
MAX_SIGNALS = 1000
SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
SOURCE_RULE = "?source= may hold letters, digits, '.', '_' and '-' (at most 40)"
# A signal nobody repeats is forgotten after its ttl; a week is the most that makes sense (and fits any clock).
MAX_TTL = dt.timedelta(days=7)
# Names that become parts of voter ids and audit details: printable, no spaces, bounded.
NAME = r"^[^\x00-\x1f\x7f]{1,100}$"
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
FAILING = frozenset({"failing", "firing", "down", "critical", "error", "outage"})
HEALTHY = frozenset({"healthy", "resolved", "up", "ok", "operational"})
SERVICE_LABELS = ("failover_service", "service")


class SignalRejected(Exception):
    """A request the webhook refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Parsed:
    source: str
    format: str  # generic | alertmanager
    readings: list[Reading] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def sign(body: bytes, secret: str) -> str:
    """The header value a sender puts on ``body`` (used by tests and documented for senders)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secret: str | None) -> None:
    if not secret:
        raise SignalRejected(403, "the signals webhook is disabled: FAILOVER_SIGNALS_SECRET is not set")
    if not header:
        raise SignalRejected(401, f"unsigned request: send {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body>")
    scheme, _, digest = header.strip().partition("=")
    if scheme.lower() != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        raise SignalRejected(401, f"malformed {SIGNATURE_HEADER}: expected sha256=<64 hex digits>")
    if not hmac.compare_digest(sign(body, secret), f"sha256={digest.lower()}"):
        raise SignalRejected(401, f"{SIGNATURE_HEADER} does not match the body (wrong secret or altered body)")


def check_source(source: str | None) -> None:
    """``?source=`` names a monitor in voter ids and the audit log: validate it before anything uses it."""
    if source is not None and not SOURCE.match(source):
        raise SignalRejected(400, SOURCE_RULE)


def parse(body: bytes, *, config: DetectionConfig, now: dt.datetime, source: str | None = None) -> Parsed:
    check_source(source)
    try:
        payload = inputs.load_json(body)
    except inputs.InputError as exc:
        raise SignalRejected(400, f"body: {exc}") from None
    if not isinstance(payload, dict):
        raise SignalRejected(400, "body must be a JSON object (the generic shape or Alertmanager's payload)")
    if "alerts" in payload and ("version" in payload or "receiver" in payload):
        parsed = _alertmanager(payload, config, now, source or "alertmanager")
    else:
        parsed = _generic(payload, config, now)
    if not parsed.readings:
        watched = ", ".join(config.watch) or "none"
        detail = "; ".join(parsed.ignored[:5]) or "no signals in the body"
        raise SignalRejected(422, f"no signal names a watched service ({detail}); watched: {watched}")
    return parsed


class _GenericSignal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=100)
    status: str = Field(max_length=40)
    check: str = Field("default", pattern=NAME)
    summary: str = Field("", max_length=500, pattern=TEXT)
    ttl: str | None = Field(None, max_length=40)

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        folded = value.strip().casefold()
        if folded not in FAILING | HEALTHY:
            raise ValueError("status must be 'failing' or 'healthy'")
        return "failing" if folded in FAILING else "healthy"

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) > MAX_TTL:
            raise ValueError("ttl may be at most 7d")
        return value


class _Generic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(pattern=SOURCE.pattern)
    signals: list[_GenericSignal] = Field(min_length=1, max_length=MAX_SIGNALS)


def _generic(payload: dict[str, Any], config: DetectionConfig, now: dt.datetime) -> Parsed:
    if "signals" not in payload and "service" in payload:  # one signal beside its source
        single = {k: v for k, v in payload.items() if k != "source"}
        payload = {"source": payload.get("source"), "signals": [single]}
    try:
        body = _Generic.model_validate(payload)
    except ValidationError as exc:
        raise SignalRejected(422, "invalid signal: " + _errors(exc)) from None
    parsed = Parsed(source=body.source, format="generic")
    for index, signal in enumerate(body.signals):
        service = config.service(signal.service)
        if service is None:
            parsed.ignored.append(f"signals.{index}: '{signal.service}' is not watched")
            continue
        ttl = parse_duration(signal.ttl) if signal.ttl else config.webhook.ttl
        failing = signal.status == "failing"
        parsed.readings.append(
            Reading(
                origin=f"webhook:{body.source}",
                voter=f"webhook:{body.source}/{signal.check}",
                service=service,
                failing=failing,
                summary=signal.summary or f"{body.source} {signal.check}: {signal.status}",
                kind="webhook",
                details={"format": "generic", "check": signal.check},
                expires_at=now + ttl,
            )
        )
    return parsed


Label = Annotated[str, StringConstraints(max_length=1000)]


class _Alert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[Annotated[str, StringConstraints(max_length=100)], Label] = Field(default_factory=dict, max_length=100)
    annotations: dict[Annotated[str, StringConstraints(max_length=100)], Label] = Field(
        default_factory=dict, max_length=100
    )
    fingerprint: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


class _AlertmanagerPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str = Field("4", max_length=20)
    receiver: str = Field("", max_length=1000)
    status: str = Field("", max_length=40)
    alerts: list[_Alert] = Field(max_length=MAX_SIGNALS)


def _alertmanager(payload: dict[str, Any], config: DetectionConfig, now: dt.datetime, source: str) -> Parsed:
    try:
        body = _AlertmanagerPayload.model_validate(payload)
    except ValidationError as exc:
        raise SignalRejected(422, "invalid Alertmanager payload: " + _errors(exc)) from None
    parsed = Parsed(source=source, format="alertmanager")
    for index, alert in enumerate(body.alerts):
        name = alert.labels.get("alertname", "alert")[:100]
        wanted = next((alert.labels[k] for k in SERVICE_LABELS if alert.labels.get(k)), None)
        service = config.service(wanted) if wanted else None
        if service is None:
            why = f"service '{wanted}' is not watched" if wanted else "no failover_service or service label"
            parsed.ignored.append(f"alerts.{index} ({name}): {why}")
            continue
        key = alert.fingerprint or hashlib.sha256(json.dumps(alert.labels, sort_keys=True).encode()).hexdigest()[:16]
        summary = alert.annotations.get("summary") or alert.annotations.get("description") or name
        parsed.readings.append(
            Reading(
                origin=f"webhook:{source}",
                voter=f"webhook:{source}/{key}",
                service=service,
                failing=alert.status == "firing",
                summary=f"{name}: {summary}"[:500],
                kind="webhook",
                details={"format": "alertmanager", "alertname": name, "fingerprint": key},
                expires_at=now + config.webhook.ttl,
            )
        )
    return parsed


def _errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
