"""Helpers for the delivery-tracking tests: test runbooks, the demo numbers, and ``Tracked``."""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from failover.engine import audit
from failover.engine.activation import Accepted
from failover.models import AuditEvent, Delivery
from failover.runtime import Runtime
from tests.conftest import REPO
from tests.fakes import sendgrid as sg
from tests.fakes import twilio as tw

PUBLIC_URL = "https://failover.example.org"
STATUS_URL = PUBLIC_URL + "/webhooks/twilio/status"
INBOUND_URL = PUBLIC_URL + "/webhooks/twilio/inbound"
EVENTS_URL = PUBLIC_URL + "/webhooks/sendgrid/events"

PHONES = {
    "alice": "+12025550101",
    "bob": "+12025550102",
    "carol": "+12025550103",
    "dan": "+12025550104",
    "erin": "+12025550105",
    "grace": "+12025550107",
    "heidi": "+12025550108",
}

# oncall = alice, bob, heidi; it-leads = alice, carol (the demo contacts).
TRACKED = textwrap.dedent("""\
    id: tracked
    title: Email is down
    trigger: {services: ["Exchange Online"], activation: manual}
    drill_group: it-leads
    steps:
      - {channel: sms, to: [group:oncall], text: "Email is down. Reply ACK.",
         fallback: [voice, {channel: email, subject: "Email is down", text: "Email is down. Reply ACK by SMS."}]}
    escalation:
      - {after: 10m, if: unacknowledged, channel: sms, to: [group:oncall], text: "Reminder: reply ACK."}
      - {after: 20m, if: unacknowledged, channel: voice, to: [group:oncall], text: "Email is down. Press 1."}
      - {after: 30m, if: unacknowledged, channel: sms, to: [group:it-leads], text: "On-call is silent."}
    on_resolve:
      - {channel: sms, to: [group:oncall], text: "All clear."}
    """)
SMS_THEN_EMAIL = textwrap.dedent("""\
    id: sms-then-email
    title: SMS, else email
    trigger: {activation: manual}
    steps:
      - {channel: sms, to: [group:oncall, group:service-desk], text: "Email is down. Reply ACK.",
         fallback: [{channel: email, subject: "Email is down", text: "Your SMS did not arrive: email is down."}]}
    """)
CHECK_IN = textwrap.dedent("""\
    id: check-in
    title: Staff check-in
    trigger: {activation: manual}
    steps:
      - {channel: sms, to: [group:all-staff], check_in: true, text: "Reply 1 if you can work, 2 if you need help."}
    """)


@dataclass
class Tracked:
    runtime: Runtime
    client: FlaskClient
    twilio: tw.FakeTwilio
    sendgrid: sg.FakeSendGrid
    published: list[int] = field(default_factory=list)

    def activate(self, runbook: str = "tracked", **kwargs: Any) -> Accepted:
        accepted, _ = self.runtime.activations.activate(runbook_id=runbook, reason="test", actor="alice", **kwargs)
        return accepted

    def drain(self) -> None:
        """Stand in for the worker: send every batch published so far, and any they lead to."""
        while self.published:
            self.runtime.delivery.send_batch(self.published.pop(0))

    def follow_up(self) -> None:
        self.runtime.delivery.follow_up()
        self.drain()

    def row(self, person: str, channel: str = "sms", step: str | None = None) -> Delivery:
        with self.runtime.database.reading() as session:
            query = select(Delivery).where(Delivery.person_id == person, Delivery.channel == channel)
            if step is not None:
                query = query.where(Delivery.step == step)
            return session.scalars(query.order_by(Delivery.id.desc()).limit(1)).one()

    def rows(self, **where: Any) -> list[Delivery]:
        with self.runtime.database.reading() as session:
            query = select(Delivery).order_by(Delivery.id)
            for name, value in where.items():
                query = query.where(getattr(Delivery, name) == value)
            return list(session.scalars(query))

    def events(self, action: str) -> list[AuditEvent]:
        with self.runtime.database.reading() as session:
            return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))

    def chain_ok(self) -> bool:
        with self.runtime.database.reading() as session:
            return audit.verify(session).ok

    def message_to(self, person: str) -> dict[str, Any]:
        """The latest SMS the fake Twilio accepted for this person."""
        return [m for m in self.twilio.messages if m["to"] == PHONES[person]][-1]

    def reply(self, person: str, body: str) -> tuple[int, str]:
        return self.twilio.send_inbound(INBOUND_URL, PHONES[person], body)


def tracking_config(tmp_path: Path) -> tuple[Path, Path]:
    config, books = tmp_path / "config", tmp_path / "runbooks"
    shutil.copytree(REPO / "config", config)
    shutil.copytree(REPO / "runbooks", books)
    for name, text in (("tracked", TRACKED), ("sms-then-email", SMS_THEN_EMAIL), ("check-in", CHECK_IN)):
        (books / f"{name}.yaml").write_text(text)
    return config, books
