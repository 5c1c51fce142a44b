"""The bridge step against the Twilio fake: the SMS with number, PIN and one-tap link; the group dialled in
(Calls with TwiML <Conference>); a caller keying the PIN; signed conference callbacks (a forged one refused);
the incident page showing the bridge and who joined. Demo contacts: oncall = alice, bob, heidi; it-leads =
alice, carol.
"""

from __future__ import annotations

import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from failover.domain.bridge import line_for, pin_for
from failover.domain.runbooks import Runbook
from failover.domain.templates import Templates
from tests.integration.tracking.support import PHONES, PUBLIC_URL, Tracked

pytestmark = pytest.mark.integration
BRIDGE = textwrap.dedent("""\
    id: bridge
    title: Teams is down - meet on the bridge
    trigger: {activation: manual}
    steps:
      - {channel: bridge, to: [group:oncall, group:it-leads], dial: [group:it-leads]}
    """)
OUR_NUMBER = "+12025550100"  # TWILIO_FROM in the tests
CALL_URL = PUBLIC_URL + "/webhooks/twilio/bridge"
PIN_URL = PUBLIC_URL + "/webhooks/twilio/bridge/pin"
CONFERENCE_URL = PUBLIC_URL + "/webhooks/twilio/conference"
CONFERENCE_SID = "CF" + "a" * 32


@pytest.fixture
def bridged(tracked: Tracked) -> Tracked:
    (tracked.runtime.settings.runbooks_dir / "bridge.yaml").write_text(BRIDGE)
    return tracked


def test_the_bridge_step_texts_the_line_dials_the_group_and_records_who_joined(bridged: Tracked) -> None:
    accepted = bridged.activate("bridge")
    bridged.drain()
    pin = pin_for("test-secret-key", accepted.incident_id)
    texts = {m["to"]: m["body"] for m in bridged.twilio.messages}
    assert set(texts) == {PHONES[p] for p in ("alice", "bob", "heidi", "carol")}
    expected = f"call {OUR_NUMBER}, PIN {pin}. One tap: tel:{OUR_NUMBER},,{pin}%23"
    assert all(expected in body for body in texts.values()), texts

    bridged.follow_up()  # beat's sweep opens the bridge and dials it-leads in
    bridged.follow_up()  # once
    calls = {c["to"]: c for c in bridged.twilio.calls}
    assert set(calls) == {PHONES["alice"], PHONES["carol"]}
    conference = ET.fromstring(calls[PHONES["alice"]]["_twiml"]).find("Dial/Conference")
    assert conference is not None and conference.text == f"failover-incident-{accepted.incident_id}"
    assert conference.attrib["statusCallback"] == CONFERENCE_URL
    assert conference.attrib["statusCallbackEvent"] == "start end join leave"

    # Bob taps the link: our number answers with a PIN prompt; a wrong PIN is asked again, the right one joins.
    call_sid, status, twiml = bridged.twilio.call_in(CALL_URL, PHONES["bob"])
    assert status == 200 and "Enter the bridge PIN" in twiml and f'action="{PIN_URL}"' in twiml
    status, twiml = bridged.twilio.key_in(PIN_URL, call_sid, PHONES["bob"], "000000#")
    assert "That PIN is not valid" in twiml
    status, twiml = bridged.twilio.key_in(PIN_URL, call_sid, PHONES["bob"], pin + "#")
    assert f">failover-incident-{accepted.incident_id}</Conference>" in twiml

    name = f"failover-incident-{accepted.incident_id}"
    alice_call = calls[PHONES["alice"]]["sid"]
    for event, sid in (("conference-start", None), ("participant-join", alice_call), ("participant-join", call_sid)):
        status, _ = bridged.twilio.conference_callback(
            CONFERENCE_URL, conference_sid=CONFERENCE_SID, name=name, event=event, call_sid=sid
        )
        assert status == 204
    forged, _ = bridged.twilio.conference_callback(
        CONFERENCE_URL,
        conference_sid=CONFERENCE_SID,
        name=name,
        event="participant-leave",
        call_sid=alice_call,
        signature="forged",
    )
    assert forged == 403
    bridged.twilio.conference_callback(  # Twilio repeats a callback: applied once
        CONFERENCE_URL, conference_sid=CONFERENCE_SID, name=name, event="participant-join", call_sid=call_sid
    )

    page = bridged.client.get(f"/incidents/{accepted.incident_id}").get_data(as_text=True)
    assert f"PIN <b>{pin}</b>" in page and f'href="tel:{OUR_NUMBER},,{pin}%23"' in page
    people = re.findall(r"<li>([^<:]+): (joined|called)", page)
    assert sorted(people) == [("Alice Example", "joined"), ("Bob Example", "joined"), ("Carol Example", "called")]
    assert [e.target_id for e in bridged.events("bridge.joined")] == ["alice", "bob"]
    assert len(bridged.events("bridge.pin_wrong")) == 1
    assert bridged.chain_ok()


def test_a_fixed_dial_in_number_and_pin_from_the_settings() -> None:
    line = line_for(7, number="+442071234567", secret="ignored", fixed_pin="246810")
    assert (line.mode, line.pin, line.tel) == ("fixed", "246810", "tel:+442071234567,,246810%23")
    conference = line_for(7, number=OUR_NUMBER, secret="s")
    assert conference.mode == "conference" and re.fullmatch(r"\d{6}", conference.pin)
    assert (
        conference.pin
        == line_for(7, number=OUR_NUMBER, secret="s").pin
        != line_for(8, number=OUR_NUMBER, secret="s").pin
    )


def test_a_preview_shows_placeholders_until_the_incident_exists() -> None:
    runbook = Runbook.model_validate(
        {"id": "b", "title": "B", "steps": [{"channel": "bridge", "to": ["group:oncall"]}]}
    )
    templates = Templates(Path("/nonexistent"))
    text = templates.render({"incident": {"title": "Teams down", "id": None}}, text=runbook.steps[0].text)
    assert text == "Bridge line for Teams down (not Teams): call (bridge number), PIN (PIN). One tap: (one-tap link)"
