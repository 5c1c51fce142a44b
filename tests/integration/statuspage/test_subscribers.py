"""Subscribers end to end with the fakes: email double opt-in, SMS YES, webhooks, unsubscribe, floods, 2,000 at once."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import pytest
from sqlalchemy import insert, select

from failover.clock import utcnow
from failover.engine import subscribers
from failover.models import StatusSubscriber
from tests.conftest import SQLITE_ONLY, csrf_from
from tests.fakes.server import FakeServer, Request, Response
from tests.integration.statuspage.conftest import INBOUND_URL, Wired

pytestmark = pytest.mark.integration
READER = "reader@personal.example"
PHONE = "+447911123456"


def sign_up(wired: Wired, address: str, kind: str = "email", components: list[str] | None = None) -> Any:
    token = csrf_from(wired.client.get("/status/subscribe").get_data(as_text=True))
    data: dict[str, Any] = {"csrf_token": token, "kind": kind, "address": address}
    if components:
        data["component"] = components
    return wired.client.post("/status/subscribe", data=data)


def post(wired: Wired, title: str, components: dict[str, str]) -> int:
    status = wired.runtime.status
    return status.open_incident(
        item=status.draft(title=title, body=f"{title}: investigating.", components=components), actor="alice"
    )


def update(wired: Wired, notice_id: int, progress: str, body: str) -> None:
    status = wired.runtime.status
    item = status.draft(title="", body=body, progress=progress, need_title=False)
    status.post_update(notice_id=notice_id, item=item, actor="alice")


def mails_to(wired: Wired, address: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (send, p) for send in wired.sendgrid.sends for p in send["personalizations"] if p["to"][0]["email"] == address
    ]


def state_of(wired: Wired, kind: str, address: str) -> str | None:
    with wired.runtime.database.reading() as session:
        return session.scalar(
            select(StatusSubscriber.state).where(StatusSubscriber.kind == kind, StatusSubscriber.address == address)
        )


@SQLITE_ONLY
def test_email_double_opt_in_updates_and_one_click_unsubscribe(wired: Wired) -> None:
    page = sign_up(wired, " Reader@Personal.example ", components=["VPN"])
    assert page.status_code == 200 and 'id="subscribe-done"' in page.get_data(as_text=True)
    wired.drain()
    ((send, _),) = mails_to(wired, READER)
    link = re.search(r"https://failover\.example(/status/confirm/\S+)", send["content"][0]["value"]).group(1)  # type: ignore[union-attr]
    post(wired, "VPN is down", {"VPN": "major_outage"})
    wired.tick()
    assert len(mails_to(wired, READER)) == 1  # pending: told nothing yet

    form = wired.client.get(link)  # a mail scanner opening the link changes nothing
    assert form.status_code == 200 and state_of(wired, "email", READER) == "pending"
    token = csrf_from(form.get_data(as_text=True))
    assert wired.client.post(link, data={"csrf_token": token}).status_code == 200
    assert state_of(wired, "email", READER) == "confirmed"
    assert wired.client.post(link, data={"csrf_token": token}).status_code == 404  # replayed
    forged = re.sub(r"-(.)", lambda m: "-" + ("A" if m.group(1) != "A" else "B"), link, count=1)
    assert wired.client.post(forged, data={"csrf_token": token}).status_code == 404
    for forged_token in ("999-nothing", "9" * 30 + "-x", "١٢-x", "d" + "9" * 40 + "-x"):
        assert wired.client.post(f"/status/confirm/{forged_token}", data={"csrf_token": token}).status_code == 404
        assert wired.client.post(f"/status/unsubscribe/{forged_token}").status_code == 404

    vpn = post(wired, "VPN flaps", {"VPN": "partial_outage"})
    post(wired, "Teams is slow", {"Microsoft Teams": "degraded_performance"})  # not a component they chose
    wired.tick()
    mails = mails_to(wired, READER)
    assert [m[0]["subject"] for m in mails[1:]] == ["[Contoso status] VPN flaps: Investigating"]
    headers = mails[1][1]["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(r"<https://failover\.example(/status/unsubscribe/\S+)>", headers["List-Unsubscribe"])
    assert unsubscribe
    wired.tick()
    assert len(mails_to(wired, READER)) == 2  # a second run tells nobody twice

    one_click = wired.client.post(unsubscribe.group(1), data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200 and state_of(wired, "email", READER) == "unsubscribed"
    assert (
        wired.client.post(unsubscribe.group(1)[:-3] + "abc", data={"List-Unsubscribe": "One-Click"}).status_code == 404
    )
    update(wired, vpn, "resolved", "Back.")
    wired.tick()
    assert len(mails_to(wired, READER)) == 2


@SQLITE_ONLY
def test_sms_confirm_by_yes_and_stop_unsubscribes(wired: Wired) -> None:
    assert sign_up(wired, "+44 7911 123456", kind="sms").status_code == 200
    wired.drain()
    (confirmation,) = [m for m in wired.twilio.messages if m["to"] == PHONE]
    assert "reply YES" in confirmation["body"]
    status, answer = wired.twilio.send_inbound(INBOUND_URL, PHONE, "yes")
    assert status == 200 and "Subscribed" in answer and state_of(wired, "sms", PHONE) == "confirmed"
    status, answer = wired.twilio.send_inbound(INBOUND_URL, PHONE, "YES")  # nothing pending: not ours any more
    assert "Subscribed" not in answer

    notice = post(wired, "Mail is down", {"Exchange Online": "major_outage"})
    wired.tick()
    told = [m for m in wired.twilio.messages if m["to"] == PHONE]
    assert len(told) == 2 and "Mail is down" in told[1]["body"] and "STOP to unsubscribe" in told[1]["body"]
    wired.twilio.send_inbound(INBOUND_URL, PHONE, "STOP")
    assert state_of(wired, "sms", PHONE) == "unsubscribed"
    update(wired, notice, "resolved", "Mail flows again.")
    wired.tick()
    assert len([m for m in wired.twilio.messages if m["to"] == PHONE]) == 2

    # A YES from a number that never subscribed is left to the staff rules.
    status, answer = wired.twilio.send_inbound(INBOUND_URL, "+12025550177", "YES")
    assert status == 200 and "Subscribed" not in answer


@SQLITE_ONLY
def test_sign_up_reveals_nothing_refuses_bad_addresses_and_throttles_floods(wired: Wired) -> None:
    first = sign_up(wired, READER).get_data(as_text=True)
    wired.drain()
    with wired.runtime.database.transaction() as session:
        row = session.scalars(select(StatusSubscriber)).one()
        subscribers._confirmed(session, row, utcnow(), "test")
    again = sign_up(wired, READER).get_data(as_text=True)
    strip = lambda html: re.sub(r'name="csrf_token"[^>]*>', "", html)  # noqa: E731
    assert strip(first) == strip(again)  # subscribed or not, the same answer
    wired.drain()
    assert len(mails_to(wired, READER)) == 1  # and no second confirmation to someone already in

    for address, kind, error in (
        ("not-an-address", "email", "not an email address"),
        ("12345", "sms", "international form"),
        ("<script>alert(1)</script>@x", "email", "not an email address"),
        ("a" * 400 + "@example.org", "email", "longer than 300"),
        ("https://hook.example/x", "webhook", "subscribe by email or by SMS"),
    ):
        response = sign_up(wired, address, kind=kind)
        assert response.status_code == 400 and error in response.get_data(as_text=True), address
        assert "<script>alert(1)" not in response.get_data(as_text=True)
    assert sign_up(wired, READER, components=["Nope"]).status_code == 400

    codes = [sign_up(wired, f"flood{n}@personal.example").status_code for n in range(25)]
    accepted = codes.count(200)
    assert codes == [200] * accepted + [429] * (25 - accepted) and 5 < accepted < 25  # 4 x the per-address limit
    wired.drain()
    assert len(wired.sendgrid.sends) == 1 + accepted  # a refused sign-up sends nothing


def test_two_thousand_subscribers_each_told_of_each_update_once(wired: Wired) -> None:
    now = utcnow()
    emails = [f"s{n:04d}@personal.example" for n in range(1900)]
    phones = [f"+4479111{n:05d}" for n in range(100)]
    with wired.runtime.database.transaction() as session:
        session.execute(
            insert(StatusSubscriber),
            [
                {"kind": kind, "address": address, "state": "confirmed", "confirm_sent": 1, "created_at": now}
                for kind, group in (("email", emails), ("sms", phones))
                for address in group
            ],
        )
    notice = post(wired, "Mail is down", {"Exchange Online": "major_outage"})
    update(wired, notice, "identified", "A certificate expired.")
    wired.runtime.status.tell()
    wired.runtime.status.tell()  # a second beat run while the first batches are still queued
    update(wired, notice, "resolved", "Renewed; mail flows.")
    wired.tick()
    wired.tick()
    wired.drain()
    assert set(wired.sendgrid.recipients().values()) == {3} and len(wired.sendgrid.recipients()) == 1900
    counts: dict[str, int] = {}
    for message in wired.twilio.messages:
        counts[message["to"]] = counts.get(message["to"], 0) + 1
    assert counts == {phone: 3 for phone in phones}
    assert wired.count(channel="email", status="sent") == 3 * 1900


@SQLITE_ONLY
def test_a_webhook_subscriber_gets_a_signed_statuspage_payload(wired: Wired) -> None:
    class Hook(FakeServer):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[Request] = []
            self.route("POST", "/hook", self.receive)

        def receive(self, request: Request) -> Response:
            self.calls.append(request)
            return Response(204)

    with Hook() as hook:
        assert isinstance(hook, Hook)
        _, key = wired.runtime.status.add_webhook(url=f"{hook.url}/hook", components=None, actor="admin")
        post(wired, "Teams is down", {"Microsoft Teams": "major_outage"})
        wired.tick()
        (call,) = hook.calls
    stamp, mac = re.fullmatch(r"t=(\d+),sha256=([0-9a-f]{64})", call.headers["x-failover-signature"]).groups()  # type: ignore[union-attr]
    assert hmac.compare_digest(
        mac, hmac.new(key.encode(), f"{stamp}.".encode() + call.body, hashlib.sha256).hexdigest()
    )
    payload = call.json()
    assert set(payload) == {"meta", "page", "incident"}
    assert set(payload["page"]) == {"id", "status_indicator", "status_description"}
    assert payload["incident"]["name"] == "Teams is down" and payload["incident"]["status"] == "investigating"
    assert payload["meta"]["unsubscribe"].startswith("https://failover.example/status/unsubscribe/")


@SQLITE_ONLY
def test_an_activation_from_the_console_updates_page_snapshot_and_every_subscriber_once(
    wired: Wired, operator: Any, tmp_path: Any
) -> None:
    from tests.integration.statuspage.conftest import STATUS_YAML
    from tests.integration.test_web import confirm_activation

    site = tmp_path / "site"
    wired.write_status({**STATUS_YAML, "publish": [{"kind": "directory", "name": "site", "path": str(site)}]})
    now = utcnow()
    with wired.runtime.database.transaction() as session:
        session.execute(
            insert(StatusSubscriber),
            [
                {"kind": "email", "address": READER, "state": "confirmed", "confirm_sent": 1, "created_at": now},
                {"kind": "email", "address": "teams-only@personal.example", "state": "confirmed",
                 "components": ["Microsoft Teams"], "confirm_sent": 1, "created_at": now},
                {"kind": "sms", "address": PHONE, "state": "confirmed", "confirm_sent": 1, "created_at": now},
            ],
        )  # fmt: skip
    confirm_activation(wired.client)  # exchange-outage, from the console's form
    wired.drain()  # the worker: SMS, mail and the status notice
    for _ in range(3):
        wired.tick()  # beat, a few times over
    assert "Partial System Outage" in wired.client.get("/status").get_data(as_text=True)
    snapshot = (site / "index.html").read_text()
    assert "Email delays" in snapshot and "Partial System Outage" in snapshot
    assert [m[0]["subject"] for m in mails_to(wired, READER)] == ["[Contoso status] Email delays: Investigating"]
    assert mails_to(wired, "teams-only@personal.example") == []  # chose another component
    assert len([m for m in wired.twilio.messages if m["to"] == PHONE]) == 1
