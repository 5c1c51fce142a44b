"""Activation by phone: RUN <runbook> <PIN> by SMS, the preview as one SMS, the TOTP code confirms.

Signed inbound webhooks from the Twilio fake reach the app; time is frozen so
the authenticator codes are known. Refusals: wrong PINs (slowed, then locked),
stale and replayed codes, a requester approving their own activation, and
numbers that are no operator's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyotp
import pytest
from freezegun import freeze_time
from sqlalchemy import select

from failover.engine import phone_activation
from failover.engine.replies import HELP_TEXT, UNKNOWN_TEXT
from failover.errors import InvalidRequest
from failover.models import Activation, User
from tests.conftest import add_user
from tests.integration.tracking.support import INBOUND_URL, PHONES, Tracked

pytestmark = pytest.mark.integration
START = dt.datetime(2026, 3, 2, 9, 5, 0, tzinfo=dt.UTC)
OLGA, PETE = "+12025550181", "+12025550182"
SECRETS = {"olga": pyotp.random_base32(), "pete": pyotp.random_base32()}


def operator(tracked: Tracked, name: str, phone: str, pin: str, role: str = "operator") -> None:
    add_user(tracked.runtime, name, role)
    with tracked.runtime.database.transaction() as session:
        user = session.scalars(select(User).where(User.username == name)).one()
        user.totp_secret = tracked.runtime.accounts.totp_box.seal(SECRETS[name])
        phone_activation.register(session, username=name, phone=phone, pin=pin, actor="admin")


def code(name: str, at: dt.datetime | None = None) -> str:
    return pyotp.TOTP(SECRETS[name]).at(at or dt.datetime.now(dt.UTC))


def text(tracked: Tracked, phone: str, body: str) -> str:
    status, twiml = tracked.twilio.send_inbound(INBOUND_URL, phone, body)
    assert status == 200
    return twiml.replace("&apos;", "'")


def activations(tracked: Tracked) -> list[Activation]:
    with tracked.runtime.database.reading() as session:
        return list(session.scalars(select(Activation).order_by(Activation.id)))


@pytest.fixture
def frozen() -> Iterator[object]:
    with freeze_time(START) as clock:
        yield clock


def test_run_by_sms_with_pin_and_code_activates_in_the_operators_name(tracked: Tracked, frozen: object) -> None:
    operator(tracked, "olga", OLGA, "4321")
    preview = text(tracked, OLGA, "run Tracked 4321")
    assert "RUN tracked: 3 sms to oncall" in preview and "6-digit authenticator code" in preview
    assert activations(tracked) == [] and tracked.published == []  # nothing before the code

    done = text(tracked, OLGA, code("olga")[:3] + " " + code("olga")[3:])  # as authenticator apps show it
    [made] = activations(tracked)
    assert f"Sending #{made.id}: 3 sms." in done
    assert (made.requested_by, made.state, made.runbook_id) == ("olga", "queued", "tracked")
    assert tracked.published  # queued for the worker
    actors = {e.action: e.actor for e in tracked.events("phone.run_requested") + tracked.events("phone.confirmed")}
    assert actors == {"phone.run_requested": "olga", "phone.confirmed": "olga"}
    assert tracked.chain_ok()


def test_stale_and_replayed_codes_are_refused(tracked: Tracked, frozen: object) -> None:
    operator(tracked, "olga", OLGA, "4321")
    text(tracked, OLGA, "RUN tracked 4321")
    stale = code("olga", START - dt.timedelta(seconds=90))  # three 30-second steps ago
    assert "Wrong or expired code. 4 attempt(s) left." in text(tracked, OLGA, stale)
    first = code("olga")
    assert "Sending #" in text(tracked, OLGA, first)

    text(tracked, OLGA, "RUN tracked 4321")
    assert "already used" in text(tracked, OLGA, first)  # the same code again: a replay
    assert len(activations(tracked)) == 1
    assert [e.actor for e in tracked.events("phone.code_replayed")] == ["olga"]


def test_wrong_pins_slow_down_then_lock_the_phone_path(tracked: Tracked, frozen: object) -> None:
    clock = frozen
    operator(tracked, "olga", OLGA, "4321")
    assert "To activate: RUN" in text(tracked, OLGA, "Run out of battery, call me")  # not an attempt
    for left in (4, 3):
        assert f"Wrong PIN. {left} attempt(s) left." in text(tracked, OLGA, "RUN tracked 0000")
    assert "Wrong PIN. 2 attempt(s) left." in text(tracked, OLGA, "RUN tracked 1111")
    assert "wait 60s" in text(tracked, OLGA, "RUN tracked 4321")  # even the right PIN waits now
    # An hour later (every answer also counts against FAILOVER_REPLY_LIMIT per hour): still counted.
    clock.tick(dt.timedelta(hours=1))  # type: ignore[attr-defined]
    assert "Wrong PIN. 1 attempt(s) left." in text(tracked, OLGA, "RUN tracked 2222")
    clock.tick(dt.timedelta(seconds=61))  # type: ignore[attr-defined]
    assert "locked" in text(tracked, OLGA, "RUN tracked 3333")
    clock.tick(dt.timedelta(minutes=30))  # type: ignore[attr-defined]
    assert "locked" in text(tracked, OLGA, "RUN tracked 4321")  # the right PIN no longer helps
    assert "locked" in text(tracked, OLGA, code("olga"))
    assert activations(tracked) == []
    assert len(tracked.events("phone.pin_wrong")) == 5 and len(tracked.events("phone.locked")) == 1

    with tracked.runtime.database.transaction() as session:  # an admin registers the phone again: unlocked
        phone_activation.register(session, username="olga", phone=OLGA, pin="4321", actor="admin")
    assert "RUN tracked" in text(tracked, OLGA, "RUN tracked 4321")


def test_approval_runbooks_need_a_second_operator_by_phone_too(tracked: Tracked, frozen: object) -> None:
    clock = frozen
    operator(tracked, "olga", OLGA, "4321")
    operator(tracked, "pete", PETE, "8765")
    preview = text(tracked, OLGA, "RUN m365-suite-outage 4321")
    assert "needs a 2nd operator's approval" in preview
    waiting = text(tracked, OLGA, code("olga"))
    [made] = activations(tracked)
    assert made.state == "pending_approval" and f"APPROVE {made.id}" in waiting

    clock.tick(dt.timedelta(seconds=31))  # type: ignore[attr-defined]
    text(tracked, OLGA, f"APPROVE {made.id} 4321")
    assert "another operator must approve" in text(tracked, OLGA, code("olga"))  # four eyes: not the requester

    assert f"APPROVE #{made.id}:" in text(tracked, PETE, f"approve #{made.id} 8765")
    assert "Sending #" in text(tracked, PETE, code("pete"))
    [released] = activations(tracked)
    assert (released.state, released.requested_by, released.approved_by) == ("queued", "olga", "pete")


def test_numbers_that_are_no_operators_get_the_generic_text(tracked: Tracked, frozen: object) -> None:
    operator(tracked, "olga", OLGA, "4321")
    assert HELP_TEXT in text(tracked, PHONES["alice"], "RUN tracked 4321")  # a contact, but no operator
    assert UNKNOWN_TEXT in text(tracked, "+14155550123", "RUN tracked 4321")
    assert activations(tracked) == []
    assert len(tracked.events("phone.not_operator")) == 2
    assert all("+1415555" not in str(e.details) for e in tracked.events("phone.not_operator"))  # masked

    add_user(tracked.runtime, "vic", "viewer")
    with tracked.runtime.database.transaction() as session, pytest.raises(InvalidRequest, match="only operators"):
        phone_activation.register(session, username="vic", phone="+12025550183", pin="1234", actor="admin")
