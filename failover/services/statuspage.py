"""The public status page as one service of the runtime: its page, its publishing, its subscribers.

Built once by the runtime (``rt.status``) from the settings, the database, the
watched services and the relay; each method runs one engine use case in one transaction. Nothing here
blocks SMS or mail: publishing runs in its own beat task and its failures are
counted per target, never raised into a send.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from failover.channels.base import Channel, OutgoingMessage
from failover.channels.s3_publish import S3Publisher
from failover.channels.sendgrid_email import SendGridEmail
from failover.channels.subscriber_webhook import WebhookChannel
from failover.clock import utcnow
from failover.db import Database
from failover.domain import statuspage as sp
from failover.engine import notices, publishing, statuspage, subscribers
from failover.errors import ConfigError, ConfigProblems, NotFound
from failover.models import Notice
from failover.publish import render, snapshot
from failover.publish.directory import DirectoryPublisher
from failover.settings import Settings

log = logging.getLogger(__name__)


class StatusPage:
    """Built from exactly what it needs: settings, the database, the watched services and the relay."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        watched: Callable[[], Sequence[str]],
        relay: Callable[[list[int]], object],
    ) -> None:
        self.settings = settings
        self.database = database
        self._watch = watched
        self._relay = relay
        self._page: tuple[Any, sp.Page] | None = None
        self._lock = threading.Lock()

    # -- configuration --------------------------------------------------------------------------------------

    def page(self) -> sp.Page:
        """config/status.yaml with detection.yaml's watch list; a broken file keeps the page up, unbranded."""
        watch = self._watched()
        path = sp.status_file(self.settings.config_dir)
        try:
            stat = path.stat()
            signature: Any = (stat.st_mtime_ns, stat.st_size, watch)
        except FileNotFoundError:
            signature = (None, watch)
        with self._lock:
            if self._page is None or self._page[0] != signature:
                try:
                    page = sp.load(self.settings.config_dir, watch)
                except ConfigProblems as exc:
                    log.error("config/status.yaml is broken; the page shows the watched services: %s", exc)
                    page = sp.Page(sp.Brand(), tuple(sp.Component(n) for n in watch), (), tuple(exc.problems))
                self._page = (signature, page)
            return self._page[1]

    def _watched(self) -> tuple[str, ...]:
        try:
            return tuple(self._watch())
        except ConfigError:  # detection.yaml broken with no last good version: the declared components only
            return ()

    @property
    def secret(self) -> bytes:
        return self.settings.flask_secret_key().encode()

    @property
    def texts(self) -> subscribers.Texts:
        return subscribers.Texts(self.page().brand.name, self.settings.public_url)

    def install(self, channels: dict[str, Channel]) -> None:
        """Add the webhook channel and the List-Unsubscribe header of subscriber mail to the runtime's channels."""
        secret = self.secret
        channels["webhook"] = WebhookChannel(lambda url: subscribers.webhook_key(secret, url))
        email = channels.get("email")
        if isinstance(email, SendGridEmail):
            email.headers_for = self._list_unsubscribe

    def _list_unsubscribe(self, message: OutgoingMessage) -> dict[str, str] | None:
        if not subscribers.is_update_step(message.step):
            return None
        token = subscribers.delivery_unsubscribe_token(self.secret, message.delivery_id)
        url = f"{self.settings.public_url.rstrip('/')}/status/unsubscribe/{token}"
        return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}

    # -- reading and rendering ---------------------------------------------------------------------------------

    def view(self, session: Session | None = None) -> sp.PageView:
        if session is None:
            with self.database.reading() as reading:
                return self.view(reading)
        return statuspage.view(
            session,
            self.page(),
            now=utcnow(),
            heartbeat_s=int(self.settings.status_heartbeat),
            public_url=self.settings.public_url,
        )

    def snapshot(self, session: Session) -> list[snapshot.File]:
        legacy = notices.public_status(session, utcnow()).as_json()
        return snapshot.build(self.view(session), legacy)

    # -- publishing -----------------------------------------------------------------------------------------------

    def publishers(self) -> dict[str, Callable[[], publishing.Publisher]]:
        """Each configured target's publisher, built when called (engine.publishing builds only the due ones)."""
        targets: dict[str, Callable[[], publishing.Publisher]] = {}
        for target in self.page().targets:
            if isinstance(target, sp.S3Target):
                targets[target.label] = functools.partial(
                    S3Publisher,
                    bucket=target.bucket,
                    prefix=target.prefix,
                    region=target.region,
                    endpoint_url=target.endpoint_url,
                )
            else:
                targets[target.label] = functools.partial(DirectoryPublisher, self._path(target.path))
        return targets

    def _path(self, path: str) -> Path:
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.settings.config_dir / candidate

    def publish(self, *, force: bool = False) -> list[publishing.Outcome]:
        return publishing.publish_due(
            self.database,
            self.publishers(),
            self.snapshot,
            now=utcnow,
            heartbeat=dt.timedelta(seconds=self.settings.status_heartbeat),
            force=force,
        )

    def export(self, outdir: Path) -> dict[str, int]:
        with self.database.reading() as session:
            files = self.snapshot(session)
        return DirectoryPublisher(outdir).publish(files)

    def targets(self) -> list[publishing.TargetState]:
        with self.database.reading() as session:
            return publishing.states(session, [t.label for t in self.page().targets])

    def tick(self) -> dict[str, Any]:
        """Beat's status work: tell subscribers of new updates (through the ledger), then publish what is due."""
        told = self.tell()
        outcomes = self.publish()
        return {
            "batches": told,
            "published": [o.target for o in outcomes if o.ok],
            "failed": [o.target for o in outcomes if not o.ok],
        }

    def tell(self) -> int:
        view: list[sp.PageView] = []

        def webhook_body(notice_id: int, unsubscribe: str) -> str | None:
            if not view:
                with self.database.reading() as reading:
                    view.append(self.view(reading))
            page = view[0]
            item = next((i for i in [*page.incidents, *page.maintenances, *page.history] if i.id == notice_id), None)
            return (
                None
                if item is None
                else render.dumps(render.webhook_payload(page, item, unsubscribe=unsubscribe)).decode()
            )

        with self.database.transaction() as session:
            batch_ids = subscribers.tell(
                session, texts=self.texts, now=utcnow(), secret=self.secret, webhook_body=webhook_body
            )
        self._relay(batch_ids)
        return len(batch_ids)

    # -- operators ----------------------------------------------------------------------------------------------

    def draft(self, **fields: Any) -> statuspage.Draft:
        return statuspage.draft(self.page(), **fields)

    def preview(self, item: statuspage.Draft, *, notice_id: int | None = None) -> dict[str, Any]:
        """What posting ``item`` shows and sends: the text as the page renders it, and who is told."""
        with self.database.reading() as session:
            components = list(item.components)
            title = item.title
            if notice_id is not None:
                notice = session.get(Notice, notice_id)
                if notice is None:
                    raise NotFound(f"no incident {notice_id}")
                components = components or list(notice.components or {})
                title = notice.title
            reach = subscribers.audience(session, components)
        return {
            "title": title,
            "status": item.progress,
            "components": item.components,
            "body_html": render.markdown(item.body),
            "subscribers": reach,
            **subscribers.preview_texts(self.texts, title, item.progress, item.body),
        }

    def kind_of(self, notice_id: int) -> str:
        with self.database.reading() as session:
            notice = session.get(Notice, notice_id)
            if notice is None:
                raise NotFound(f"no incident {notice_id}")
            return notice.kind or "incident"

    def open_incident(self, *, item: statuspage.Draft, actor: str) -> int:
        with self.database.transaction() as session:
            return statuspage.open_incident(session, item, actor=actor, now=utcnow()).id

    def post_update(self, *, notice_id: int, item: statuspage.Draft, actor: str) -> int:
        with self.database.transaction() as session:
            return statuspage.post_update(
                session, self.page(), notice_id=notice_id, item=item, actor=actor, now=utcnow()
            ).id

    # -- subscribers --------------------------------------------------------------------------------------------

    def subscribe(self, *, kind: str, address: str, components: Sequence[str] | None, client: str) -> None:
        page = self.page()
        with self.database.transaction() as session:
            signup = subscribers.subscribe(
                session,
                kind=kind,
                address=address,
                components=components,
                known=page.names,
                client=client,
                texts=self.texts,
                now=utcnow(),
                limit=self.settings.status_signup_limit,
            )
        self._relay(signup.batch_ids)

    def confirm(self, token: str) -> None:
        with self.database.transaction() as session:
            subscribers.confirm(session, token=token, now=utcnow())

    def unsubscribe(self, token: str) -> bool:
        with self.database.transaction() as session:
            return subscribers.unsubscribe(session, token=token, secret=self.secret, now=utcnow())

    def subscribers(self, *, state: str | None = None) -> list[dict[str, Any]]:
        with self.database.reading() as session:
            return subscribers.listing(session, state=state)

    def remove_subscriber(self, *, subscriber_id: int, actor: str) -> None:
        with self.database.transaction() as session:
            subscribers.remove(session, subscriber_id=subscriber_id, actor=actor, now=utcnow())

    def add_webhook(self, *, url: str, components: Sequence[str] | None, actor: str) -> tuple[int, str]:
        with self.database.transaction() as session:
            row = subscribers.add_webhook(
                session, url=url, components=components, known=self.page().names, actor=actor, now=utcnow()
            )
            return row.id, subscribers.webhook_key(self.secret, row.address)
