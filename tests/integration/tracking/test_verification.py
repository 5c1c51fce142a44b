"""Contact verification: "reply YES" texts through the ledger, YES answers through the inbound webhook."""

from __future__ import annotations

from sqlalchemy import select, update

from failover.engine import verification
from failover.models import Delivery
from failover.models_people import PersonRow
from tests.conftest import SQLITE_ONLY
from tests.integration.tracking.support import PHONES, Tracked


def verified(tracked: Tracked, person: str) -> bool:
    with tracked.runtime.database.reading() as session:
        row = session.get(PersonRow, person)
        return row is not None and row.phone_verified_at is not None


@SQLITE_ONLY
def test_a_yes_confirms_only_a_number_we_asked_about(tracked: Tracked) -> None:
    activation_id, texts, _ = tracked.runtime.people.verify(group="oncall", actor="admin")
    assert texts == 3
    tracked.drain()
    asked = {m["to"] for m in tracked.twilio.messages if "Reply YES" in m["body"]}
    assert asked == {PHONES["alice"], PHONES["bob"], PHONES["heidi"]}

    status, answer = tracked.reply("alice", "yes")
    assert status == 200 and "confirmed for emergency alerts" in answer
    assert verified(tracked, "alice")
    assert [e.target_id for e in tracked.events("people.verified")] == ["alice"]
    assert PHONES["alice"] not in str(tracked.events("people.verified")[0].details)  # masked

    status, answer = tracked.reply("dan", "YES")  # never asked: not ours, the usual handling answers
    assert status == 200 and "confirmed" not in answer and not verified(tracked, "dan")
    status, answer = tracked.reply("alice", "YES")  # asked and answered already: not claimed twice
    assert "confirmed" not in answer and len(tracked.events("people.verified")) == 1

    with tracked.runtime.database.transaction() as session:  # bob's number turns out to be dead
        session.execute(
            update(Delivery)
            .where(Delivery.activation_id == activation_id, Delivery.person_id == "bob")
            .values(status="failed", error_code="30003")
        )
    with tracked.runtime.database.reading() as session:
        figures = verification.readiness(session)
    oncall = figures["groups"]["oncall"]
    assert (oncall["people"], oncall["verified"], oncall["share"]) == (3, 1, 0.333)
    assert oncall["unverified"] == ["bob", "heidi"] and oncall["failed"] == ["bob"]
    assert "alice" not in oncall["never_reached"] and "carol" in figures["groups"]["it-leads"]["never_reached"]
    with tracked.runtime.database.reading() as session:
        rows = session.scalars(select(Delivery).where(Delivery.activation_id == activation_id)).all()
    assert {r.step for r in rows} == {verification.STEP} and len(rows) == 3
