"""Self-service: a personal link, new contacts confirmed by one-time codes, kept across later syncs."""

from __future__ import annotations

import re

from failover.clock import utcnow
from failover.domain.people import Record
from failover.engine import people as snapshots
from failover.engine import selfservice
from tests.conftest import SQLITE_ONLY, csrf_from
from tests.integration.tracking.support import PHONES, Tracked

NEW_PHONE = "+12025550170"


def code_in(text: str) -> str:
    match = re.search(r"code is (\d{6})", text)
    assert match, text
    return match.group(1)


@SQLITE_ONLY
def test_a_person_confirms_new_contacts_with_codes_and_they_survive_the_next_sync(tracked: Tracked) -> None:
    runtime, client = tracked.runtime, tracked.client
    _, sent, _ = runtime.people.invite(group="oncall", actor="admin")
    assert sent == 3
    tracked.drain()
    link = re.search(r"https://failover\.example\.org(/me/[\w-]+)", tracked.message_to("alice")["body"])
    assert link
    page = client.get(link.group(1))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Alice Example" in html and PHONES["alice"] not in html  # masked
    token = csrf_from(html)

    bad = client.post(link.group(1), data={"csrf_token": token, "phone": "12", "email": "x"})
    assert bad.status_code == 400 and "not a valid number" in bad.get_data(as_text=True)
    answer = client.post(
        link.group(1),
        data={"csrf_token": token, "phone": "(202) 555-0170", "email": "Alice@Home.example", "language": "de"},
    )
    assert answer.status_code == 200 and 'id="self-codes"' in answer.get_data(as_text=True)
    tracked.drain()
    sms_code = code_in([m for m in tracked.twilio.messages if m["to"] == NEW_PHONE][-1]["body"])
    (mail,) = [s for s in tracked.sendgrid.sends if "confirmation code" in str(s)]
    email_code = code_in(str(mail["content"]))

    wrong = client.post(
        link.group(1) + "/confirm", data={"csrf_token": token, "phone_code": "000000", "email_code": email_code}
    )
    assert wrong.status_code == 400
    assert runtime.config.catalog().contacts.person("alice").phone == PHONES["alice"]  # type: ignore[union-attr]
    done = client.post(
        link.group(1) + "/confirm", data={"csrf_token": token, "phone_code": sms_code, "email_code": email_code}
    )
    assert done.status_code == 200 and 'id="self-done"' in done.get_data(as_text=True)
    alice = runtime.config.catalog().contacts.person("alice")
    assert alice is not None and (alice.phone, alice.email, alice.language) == (NEW_PHONE, "Alice@home.example", "de")
    assert client.get(link.group(1)).status_code == 404  # single use

    with runtime.database.transaction() as session:  # a later sync renames her: what she entered stays
        snapshots.apply(
            session,
            source="yaml",
            changes={"alice": Record("alice", "Alice Renamed", phone=PHONES["alice"], groups=("oncall",))},
            config=runtime.people.config(),
            now=utcnow(),
            actor="test",
            check_removals=False,
        )
    alice = runtime.config.catalog().contacts.person("alice")
    assert alice is not None and alice.name == "Alice Renamed" and alice.phone == NEW_PHONE


@SQLITE_ONLY
def test_links_lock_after_too_many_wrong_codes(tracked: Tracked) -> None:
    runtime, client = tracked.runtime, tracked.client
    runtime.people.invite(group="oncall", actor="admin")
    tracked.drain()
    path = re.search(r"(/me/[\w-]+)", tracked.message_to("bob")["body"]).group(1)  # type: ignore[union-attr]
    token = csrf_from(client.get(path).get_data(as_text=True))
    client.post(path, data={"csrf_token": token, "phone": NEW_PHONE})
    for _ in range(selfservice.MAX_FAILURES):
        assert client.post(path + "/confirm", data={"csrf_token": token, "phone_code": "999999"}).status_code in (
            400,
            404,
        )
    assert client.get(path).status_code == 404
