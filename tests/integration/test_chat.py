"""Chat rooms through Apprise (generic JSON webhook, Mattermost, ntfy on custom hosts) and the signed webhook:
one post per room per step through the ledger, errors per row, rooms named - never their URLs or tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from failover.db import migrate
from failover.domain import rooms
from failover.models import AuditEvent, Delivery
from failover.runtime import Runtime
from failover.settings import load_settings
from tests.conftest import make_people, write_config
from tests.fakes.chat import FakeChat

pytestmark = pytest.mark.integration

TOKEN = "mm-token-abcdefghijklmnop"  # what must never appear in the ledger or the audit log
SECRET = "bot-secret-0123456789"
RUNBOOK = textwrap.dedent("""\
    id: rooms
    title: Teams is down
    trigger: {activation: manual}
    drill_group: oncall
    steps:
      - {channel: chat, to: [room:ops-json, room:ops-mattermost, room:ops-ntfy, room:incident-bot],
         title: "Teams is down", text: "Teams is down: use this room. Incident {{ incident.title }}."}
    """)


@dataclass
class Chat:
    runtime: Runtime
    fake: FakeChat
    config: Path
    published: list[int] = field(default_factory=list)

    def activate(self, runbook: str = "rooms", **kwargs: object) -> int:
        accepted, _ = self.runtime.activations.activate(runbook_id=runbook, reason="test", actor="alice", **kwargs)
        self.drain()
        return accepted.activation_id

    def drain(self) -> None:
        while self.published:
            self.runtime.delivery.send_batch(self.published.pop(0))

    def rows(self) -> dict[str, Delivery]:
        with self.runtime.database.reading() as session:
            return {r.address: r for r in session.scalars(select(Delivery).where(Delivery.channel == "chat"))}

    def rooms_yaml(self, text: str) -> None:
        (self.config / "chat.yaml").write_text(textwrap.dedent(text))


@pytest.fixture
def fake_chat() -> Iterator[FakeChat]:
    with FakeChat() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def chat(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_chat: FakeChat) -> Iterator[Chat]:
    config, books = write_config(tmp_path, make_people(3))
    (books / "rooms.yaml").write_text(RUNBOOK)
    port = fake_chat.port
    (config / "chat.yaml").write_text(
        textwrap.dedent(f"""\
        rooms:
          - name: ops-json
            url: "json://127.0.0.1:{port}/json-hook"
          - name: ops-mattermost
            url: "mmost://127.0.0.1:{port}/${{CHAT_MM_TOKEN}}"
          - name: ops-ntfy
            url: "ntfy://127.0.0.1:{port}/${{CHAT_NTFY_TOPIC}}"
          - name: incident-bot
            webhook: "http://127.0.0.1:{port}/bot"
            secret_env: CHAT_BOT_SECRET
        """)
    )
    values = {
        "FAILOVER_DATABASE_URL": f"sqlite:///{tmp_path / 'chat.db'}",
        "FAILOVER_CONFIG_DIR": str(config),
        "FAILOVER_RUNBOOKS_DIR": str(books),
        "CHAT_MM_TOKEN": TOKEN,
        "CHAT_NTFY_TOPIC": "ops-alerts",
        "CHAT_BOT_SECRET": SECRET,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime(load_settings())
    migrate(runtime.database)
    wired = Chat(runtime, fake_chat, config)
    runtime.relay.publisher = lambda batch_id, countdown: wired.published.append(batch_id)
    yield wired
    runtime.close()


def test_one_post_per_room_through_the_ledger_named_never_by_url(chat: Chat) -> None:
    preview = chat.runtime.activations.preview(runbook_ids=["rooms"], reason="test", actor="alice")
    (step,) = preview.runbooks[0].steps
    assert (step.recipients, step.transport, preview.counts) == (4, "chat", {"chat": 4})
    chat.activate()
    assert len(chat.fake.posts("/json-hook")) == 1
    assert len(chat.fake.posts(f"/hooks/{TOKEN}")) == 1  # Mattermost's incoming webhook, on our host
    (ntfy,) = [r for r in chat.fake.posts("/") if b"ops-alerts" in r.body or r.path.endswith("ops-alerts")]
    posted = chat.fake.posts("/json-hook")[0].json()
    assert posted["title"] == "Teams is down" and posted["message"].startswith("Teams is down: use this room.")
    (bot,) = chat.fake.posts("/bot")
    expected = "sha256=" + hmac.new(SECRET.encode(), bot.body, hashlib.sha256).hexdigest()
    assert bot.headers["x-failover-signature"] == expected  # the signed generic webhook: HMAC over the body
    assert bot.json()["room"] == "incident-bot" and bot.headers["x-failover-delivery"] == str(bot.json()["delivery_id"])
    rows = chat.rows()
    assert set(rows) == {"ops-json", "ops-mattermost", "ops-ntfy", "incident-bot"}
    assert {(r.status, r.transport) for r in rows.values()} == {("sent", "chat")}
    # Exactly once: the same batches run again (a redelivered task) post nothing more.
    with chat.runtime.database.reading() as session:
        batches = set(session.scalars(select(Delivery.batch_id).where(Delivery.channel == "chat")))
    for batch in batches:
        assert batch is not None
        chat.runtime.delivery.send_batch(batch)
    assert len(chat.fake.posts("/json-hook")) == 1 and len(chat.fake.posts("/bot")) == 1
    # The room's name is in the audit log; its URL, token and secret are nowhere.
    with chat.runtime.database.reading() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "delivery.sent")).all()
        everything = json.dumps([e.details for e in session.scalars(select(AuditEvent))])
        ledger = json.dumps([[r.address, r.provider_id, r.last_error] for r in session.scalars(select(Delivery))])
    assert {e.details["provider_id"].split(":")[1] for e in events} == set(rows)
    for secret in (TOKEN, SECRET, "ops-alerts", "127.0.0.1"):
        assert secret not in everything and secret not in ledger
    del ntfy


def test_a_room_that_refuses_fails_its_row_clearly_and_is_not_retried(chat: Chat) -> None:
    chat.fake.answer("/json-hook", 403)
    chat.activate()
    row = chat.rows()["ops-json"]
    assert (row.status, row.error_code) == ("failed", "403")
    assert row.last_error == "room ops-json: the service refused the post (HTTP 403)"
    assert chat.rows()["ops-mattermost"].status == "sent"  # one room's refusal is its own row's error
    assert len(chat.fake.requests("POST", "/json-hook")) == 1


def test_a_room_that_is_down_is_retried_and_posted_once(chat: Chat) -> None:
    chat.fake.answer("/bot", 503)
    chat.fake.answer(f"/hooks/{TOKEN}", 502)
    chat.activate()
    rows = chat.rows()
    assert rows["incident-bot"].status == "pending" and rows["ops-mattermost"].status == "pending"
    assert "HTTP 503" in (rows["incident-bot"].last_error or "")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    with chat.runtime.database.transaction() as session:
        session.execute(
            Delivery.__table__.update()
            .where(Delivery.status == "pending")
            .values(next_attempt_at=later - dt.timedelta(minutes=10))
        )
        batches = set(session.scalars(select(Delivery.batch_id).where(Delivery.status == "pending")))
    for batch in batches:
        assert batch is not None
        chat.runtime.delivery.send_batch(batch)
    assert {r.status for r in chat.rows().values()} == {"sent"}
    assert len(chat.fake.posts("/bot")) == 1 and len(chat.fake.posts(f"/hooks/{TOKEN}")) == 1


def test_a_malformed_url_or_a_missing_secret_is_a_clear_error_per_row(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHAT_BOT_SECRET")
    text = (chat.config / "chat.yaml").read_text().replace("json://", "jsonx://")
    (chat.config / "chat.yaml").write_text(text)
    chat.activate()
    rows = chat.rows()
    assert rows["ops-json"].last_error == "room ops-json: not a valid Apprise URL (see config/chat.yaml)"
    assert rows["incident-bot"].last_error == "room incident-bot: CHAT_BOT_SECRET is not set (see config/chat.yaml)"
    assert rows["ops-json"].status == rows["incident-bot"].status == "failed"
    assert rows["ops-ntfy"].status == "sent"


def test_a_drill_leaves_chat_rooms_alone(chat: Chat) -> None:
    chat.activate(drill=True)
    assert {r.status for r in chat.rows().values()} == {"skipped"} and not chat.fake.exchanges


@pytest.mark.parametrize(
    ("yaml_text", "problem"),
    [
        (
            'rooms:\n  - name: a\n    url: "mmost://user:hunter2@chat.example.com/x"\n',
            "a password is written in the URL",
        ),
        ('rooms:\n  - name: a\n    url: "json://h/x?token=abc"\n', "'token' is written in the URL"),
        ('rooms:\n  - name: a\n    webhook: "https://h/x"\n', "needs secret_env"),
        ('rooms:\n  - name: a\n    url: "json://h/x"\n  - name: a\n    url: "json://h/y"\n', "duplicate room 'a'"),
        ("rooms:\n  - name: a\n", "give exactly one of url:"),
    ],
)
def test_chat_yaml_problems_name_file_and_line(tmp_path: Path, yaml_text: str, problem: str) -> None:
    path = tmp_path / "chat.yaml"
    path.write_text(yaml_text)
    _, problems = rooms.load(path)
    assert problems and problem in problems[0].message and problems[0].line > 0


def test_a_runbook_naming_an_unknown_room_is_refused(chat: Chat) -> None:
    book = chat.config.parent / "runbooks" / "rooms.yaml"
    book.write_text(RUNBOOK.replace("room:ops-ntfy", "room:nowhere"))
    messages = [p.message for p in chat.runtime.config.loaded().problems]
    assert "steps.0.to: unknown room 'nowhere' (not in config/chat.yaml)" in messages


def test_runbooks_check_names_the_providers_and_the_missing_credentials(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from failover.cli import main

    monkeypatch.delenv("CHAT_MM_TOKEN")
    for name, value in {"VONAGE_API_KEY": "k", "VONAGE_API_SECRET": "s", "VONAGE_FROM": "447700900000"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["runbooks", "check"])
    assert result.exit_code == 0, result.output
    assert "providers: sms vonage; voice outbox only; email outbox only; chat 4 room(s)" in result.output
    assert "warning: chat room ops-mattermost: CHAT_MM_TOKEN not set (config/chat.yaml)" in result.output
    assert (
        "warning: sms: VONAGE_SIGNATURE_SECRET is not set: Vonage receipts and replies will be refused" in result.output
    )
    monkeypatch.setenv("FAILOVER_SMS_PROVIDERS", "twilio,vonage")  # Twilio has no credentials here
    result = CliRunner().invoke(main, ["runbooks", "check"])
    assert result.exit_code == 1
    assert "FAILOVER_SMS_PROVIDERS names twilio, but twilio has no credentials set" in result.output


def test_the_activation_page_names_the_rooms(chat: Chat) -> None:
    from failover.web import create_app
    from tests.conftest import AuthActions

    activation_id = chat.activate()
    client = create_app(runtime=chat.runtime, test_config={"TESTING": True}).test_client()
    AuthActions(client, chat.runtime).login("viewer")
    for path in ("", "/live.json", ".json", "/roster.json", "/roster.csv"):
        answer = client.get(f"/activations/{activation_id}{path}")
        assert answer.status_code == 200, path
    page = client.get(f"/activations/{activation_id}").get_data(as_text=True)
    assert "ops-mattermost" in page and TOKEN not in page and "127.0.0.1" not in page
