"""The pure rules of delivery tracking: receipt order, reply keywords, escalation targets, fallback order."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.domain import reach, runbooks
from failover.domain.reach import PersonState
from failover.domain.receipts import Decision, Progress, decide, reached
from failover.domain.replies import ReplyKind, parse
from tests.unit.test_loaders import GOOD_RUNBOOK, make_tree, problems_of

P = Progress

# -- receipts: never backwards -------------------------------------------------------------


@pytest.mark.parametrize(
    ("ledger", "current", "receipt", "expected"),
    [
        # the ordinary life of an SMS: queued, sent, delivered
        ("sent", P.NONE, P.ACCEPTED, Decision(record=True)),
        ("sent", P.ACCEPTED, P.SENT, Decision(record=True)),
        ("sent", P.SENT, P.DELIVERED, Decision(record=True, ledger="delivered")),
        # out of order: "sent" after "delivered" changes nothing; delivered is never downgraded
        ("delivered", P.DELIVERED, P.SENT, Decision(record=False)),
        ("delivered", P.DELIVERED, P.ACCEPTED, Decision(record=False)),
        # repeats change nothing
        ("delivered", P.DELIVERED, P.DELIVERED, Decision(record=False)),
        ("failed", P.FAILED, P.FAILED, Decision(record=False)),
        # a failure after delivery is ignored; a delivery after a failure is the better evidence
        ("delivered", P.DELIVERED, P.FAILED, Decision(record=False)),
        ("failed", P.FAILED, P.DELIVERED, Decision(record=True, ledger="delivered")),
        ("sent", P.SENT, P.FAILED, Decision(record=True, ledger="failed")),
        # the dispatcher still holds the row: wait for it
        ("sending", P.NONE, P.DELIVERED, Decision(record=False, defer=True)),
        # the provider has it, so a pending / in-doubt row must never be sent again
        ("in_doubt", P.NONE, P.SENT, Decision(record=True, ledger="sent")),
        ("pending", P.NONE, P.ACCEPTED, Decision(record=True, ledger="sent")),
        ("in_doubt", P.NONE, P.DELIVERED, Decision(record=True, ledger="delivered")),
        # rows that were never ours to send only keep the information
        ("cancelled", P.NONE, P.DELIVERED, Decision(record=True)),
        ("sent", P.NONE, P.NONE, Decision(record=False)),
    ],
)
def test_receipts_only_move_forward(ledger: str, current: Progress, receipt: Progress, expected: Decision) -> None:
    assert decide(ledger, current, receipt) == expected


def test_progress_labels_round_trip() -> None:
    assert [Progress.of(p.label) for p in Progress] == list(Progress)
    assert Progress.of(None) == Progress.of("nonsense") == Progress.NONE


@pytest.mark.parametrize(
    ("status", "transport", "expected"),
    [
        ("delivered", "twilio", True),
        ("sent", "twilio", False),  # Twilio will say whether it arrived
        ("sent", "sendgrid", False),
        ("sent", "outbox", False),  # the outbox sends nothing: handed over is not reached
        ("failed", "outbox", False),
        ("pending", None, False),
    ],
)
def test_reached(status: str, transport: str | None, expected: bool) -> None:
    assert reached(status, transport) is expected


# -- replies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind", "keyword"),
    [
        ("ACK", ReplyKind.ACK, "ACK"),
        (" ack ", ReplyKind.ACK, "ACK"),
        ("Ok!", ReplyKind.ACK, "OK"),
        ("okay", ReplyKind.ACK, "OKAY"),
        ("1", ReplyKind.ACK, "1"),
        ("1 - on my way", ReplyKind.ACK, "1"),
        ("ACK, in the office in 10", ReplyKind.ACK, "ACK"),
        ("2", ReplyKind.NEED_HELP, "2"),
        ("2 no car today", ReplyKind.NEED_HELP, "2"),
        ("STOP", ReplyKind.STOP, "STOP"),
        ("stop.", ReplyKind.STOP, "STOP"),
        ("Unsubscribe", ReplyKind.STOP, "UNSUBSCRIBE"),
        ("stop all", ReplyKind.STOP, "STOPALL"),
        ("quit", ReplyKind.STOP, "QUIT"),
        ("START", ReplyKind.START, "START"),
        ("unstop", ReplyKind.START, "UNSTOP"),
        ("yes", ReplyKind.START, "YES"),
        ("help", ReplyKind.HELP, "HELP"),
        # keywords inside a sentence are not opt-outs, as with Twilio
        ("End of shift, on my way", ReplyKind.OTHER, ""),
        ("please stop sending these", ReplyKind.OTHER, ""),
        ("12", ReplyKind.OTHER, ""),
        ("who is this?", ReplyKind.OTHER, ""),
        ("", ReplyKind.OTHER, ""),
        ("\uff21\uff23\uff2b", ReplyKind.ACK, "ACK"),  # full-width letters from some phone keyboards
    ],
)
def test_reply_keywords(body: str, kind: ReplyKind, keyword: str) -> None:
    reply = parse(body)
    assert (reply.kind, reply.keyword) == (kind, keyword)


def test_a_long_body_is_not_scanned_to_its_end() -> None:
    assert parse("x" * 5000 + " STOP").kind == ReplyKind.OTHER


# -- escalation targets ---------------------------------------------------------------------


def state(person: str, *, asked: bool = True, reached: bool = True, answer: str | None = None, pages: int = 0):  # type: ignore[no-untyped-def]
    return PersonState(person, asked=asked, reached=reached, answer=answer, pages=pages)


STATES = {
    "alice": state("alice", answer="ack"),
    "bob": state("bob"),  # reached, silent
    "heidi": state("heidi", reached=False),  # not reached, silent
    "dan": state("dan", answer="need_help", reached=False),
}


@pytest.mark.parametrize(
    ("recipients", "condition", "page"),
    [
        # re-page the silent ones among those asked
        (["alice", "bob", "heidi", "dan"], "unacknowledged", ["bob", "heidi"]),
        # undelivered: only those not known to be reached (an answer proves reach)
        (["alice", "bob", "heidi", "dan"], "undelivered", ["heidi"]),
        # a lead who was not asked is told while anyone asked is silent
        (["carol"], "unacknowledged", ["carol"]),
        (["carol", "alice"], "unacknowledged", ["carol"]),
    ],
)
def test_escalation_targets(recipients: list[str], condition: reach.Condition, page: list[str]) -> None:
    assert reach.escalation_targets(recipients, STATES, condition, limit=3).page == page


def test_nobody_is_paged_when_everyone_answered() -> None:
    states = {"alice": state("alice", answer="ack"), "bob": state("bob", answer="need_help")}
    targets = reach.escalation_targets(["alice", "bob", "carol"], states, "unacknowledged", limit=3)
    assert targets.page == [] and targets.limited == []


def test_the_repeat_limit_stops_paging_storms() -> None:
    states = {"bob": state("bob", pages=3), "heidi": state("heidi", pages=2), "carol": PersonState("carol", pages=5)}
    targets = reach.escalation_targets(["bob", "heidi", "carol"], states, "unacknowledged", limit=3)
    assert targets.page == ["heidi"] and targets.limited == ["bob", "carol"]


def test_people_not_asked_are_not_counted_in_the_roster() -> None:
    states = [
        state("alice", answer="ack"),
        state("bob", answer="need_help"),
        state("heidi"),
        PersonState("carol"),  # only got an escalation
    ]
    groups = {"alice": ("oncall", "it-leads"), "bob": ("oncall",), "heidi": ("oncall",), "carol": ("it-leads",)}
    counts = {k: v.as_dict() for k, v in reach.roster_counts(states, groups).items()}
    assert counts == {
        reach.ALL: {"acknowledged": 1, "need_help": 1, "no_answer": 1, "total": 3},
        "oncall": {"acknowledged": 1, "need_help": 1, "no_answer": 1, "total": 3},
        "it-leads": {"acknowledged": 1, "need_help": 0, "no_answer": 0, "total": 1},
    }


@pytest.mark.parametrize(
    ("failed", "tried", "expected"),
    [
        ("sms", {"sms"}, ["voice", "email"]),
        ("sms", {"sms", "voice"}, ["email"]),
        ("voice", {"sms", "voice"}, ["email"]),
        ("email", {"sms", "voice", "email"}, []),
        ("status", set(), []),
    ],
)
def test_fallback_order(failed: str, tried: set[str], expected: list[str]) -> None:
    assert reach.next_channels(("sms", "voice", "email"), failed, tried) == expected


# -- the runbook keys -------------------------------------------------------------------------

FALLBACK_RUNBOOK = GOOD_RUNBOOK.replace(
    '- {channel: sms, to: [group:oncall], text: "{{ incident.title }}: reply ACK"}',
    '- {channel: sms, to: [group:oncall], text: "{{ incident.title }}: reply ACK", check_in: true,\n'
    '         fallback: [voice, {channel: email, subject: "Please read", template: email/hello.txt}]}',
)


def test_a_step_may_name_its_fallback_channels_and_ask_for_a_check_in(tmp_path: Path) -> None:
    catalog = runbooks.load(*make_tree(tmp_path, runbooks_={"good.yaml": FALLBACK_RUNBOOK}))
    runbook = catalog.runbooks["good"]
    step = runbook.steps[0]
    assert step.chain == ("sms", "voice", "email") and step.check_in and runbook.check_in
    voice = step.fallback_step("voice")
    assert (voice.channel, voice.text, voice.to) == ("voice", step.text, step.to)  # inherits the text
    email = step.fallback_step("email")
    assert (email.channel, email.subject, email.template) == ("email", "Please read", "email/hello.txt")
    assert email.text is None
    assert runbook.step_at("steps.0") is step and runbook.step_at("escalation.0") is runbook.escalation[0]
    assert runbook.step_at("steps.9") is None and runbook.step_at("nonsense") is None


@pytest.mark.parametrize(
    ("fallback", "message"),
    [
        ("[fax]", "steps.0.fallback.0.channel: a fallback channel must be one of sms, email, voice, not 'fax'"),
        ("[sms]", "steps.0: fallback: channel 'sms' is already tried before it"),
        ("[email]", "steps.0: an email fallback needs a subject: (on the fallback or on the step)"),
        ("[{channel: voice, text: a, template: b}]", "steps.0.fallback.0: give at most one of template: or text:"),
        ("[{channel: voice, template: nope.txt}]", "steps.0.fallback.0.template: no template 'nope.txt'"),
    ],
)
def test_bad_fallbacks_name_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fallback: str, message: str
) -> None:
    text = GOOD_RUNBOOK.replace(
        '- {channel: sms, to: [group:oncall], text: "{{ incident.title }}: reply ACK"}',
        f'- {{channel: sms, to: [group:oncall], text: "reply ACK", fallback: {fallback}}}',
    )
    problems = problems_of(tmp_path, monkeypatch, runbooks_={"x.yaml": text})
    assert len(problems) == 1 and problems[0].startswith("runbooks/x.yaml:6: ") and message in problems[0]


def test_a_status_step_cannot_fall_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = GOOD_RUNBOOK.replace('title: Email down, text: "Email is down."}', "title: Down, text: x, check_in: true}")
    problems = problems_of(tmp_path, monkeypatch, runbooks_={"x.yaml": text})
    assert problems == ["runbooks/x.yaml:8: steps.2: a status step cannot have fallback: or check_in:"]


# -- settings and TwiML ---------------------------------------------------------------------------


def test_tracking_settings_have_safe_defaults_and_check_the_verification_key(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from failover.errors import ConfigError
    from failover.settings import load_settings

    settings = load_settings()
    assert (settings.webhook_max_age, settings.escalation_limit, settings.reply_limit) == (600, 3, 5)

    def b64(key: object) -> str:
        der = key.public_key().public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", b64(ec.generate_private_key(ec.SECP256R1())))
    assert load_settings().sendgrid_webhook_public_key is not None
    assert str(load_settings().sendgrid_webhook_public_key) == "**********"
    for bad, message in (
        ("not base64!", "not a base64 public key"),
        (b64(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "not an ECDSA P-256 key"),
        (b64(ec.generate_private_key(ec.SECP384R1())), "not an ECDSA P-256 key"),
    ):
        monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", bad)
        with pytest.raises(ConfigError, match=f"SENDGRID_WEBHOOK_PUBLIC_KEY: {message}"):
            load_settings()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", "")
    monkeypatch.setenv("FAILOVER_ESCALATION_LIMIT", "0")
    with pytest.raises(ConfigError, match="FAILOVER_ESCALATION_LIMIT"):
        load_settings()


def test_a_voice_alert_reads_the_message_and_asks_for_1() -> None:
    from failover.channels.twilio_webhooks import voice_alert

    twiml = voice_alert("Email is down & <b>now</b>.", "https://failover.example/webhooks/twilio/voice?delivery=7")
    assert twiml.count("<Say>Email is down &amp; &lt;b&gt;now&lt;/b&gt;.</Say>") == 2
    assert '<Gather action="https://failover.example/webhooks/twilio/voice?delivery=7" method="POST"' in twiml
    assert 'numDigits="1"' in twiml
    long = voice_alert("x" * 1600, "https://failover.example/v")
    assert long.count("<Say>x") == 1 and len(long) < 4000  # Twilio's limit for inline TwiML
