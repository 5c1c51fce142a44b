"""Posts to chat rooms (``channel: chat``): one Apprise URL per room, or a signed webhook (webhook_post).

Rooms come from ``config/chat.yaml`` (failover.domain.rooms), read again when
the file changes; their ``${NAME}`` placeholders are filled from the
environment at the moment of posting, so no secret is ever stored, logged or
audited. A ledger row's address is the room's name. Apprise answers one bool
per ``notify``, so each post gets its own ``Apprise`` object (one room), and
its log is captured to tell a refusal (4xx: permanent) from an outage (retry).
Errors name the room, never its URL.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import apprise

from failover.channels import webhook_post
from failover.channels.base import OutgoingMessage, Receipt
from failover.domain import rooms as roomconf
from failover.errors import ConfigError, PermanentDeliveryError, RetryableDeliveryError

log = logging.getLogger(__name__)
_STATUS = re.compile(r"error=(\d{3})\b")  # how Apprise's plugins log an HTTP answer they did not like


class ChatChannel:
    name = "chat"
    transport = "chat"
    max_batch = 1

    def __init__(self, config_dir: Path, env: Callable[[], Mapping[str, str]] = lambda: os.environ) -> None:
        self.path = roomconf.chat_file(config_dir)
        self.env = env
        self._cache: tuple[float, roomconf.Rooms, list[str]] | None = None

    def rooms(self) -> tuple[roomconf.Rooms, list[str]]:
        try:
            stamp = self.path.stat().st_mtime
        except OSError:
            stamp = -1.0
        if self._cache is None or self._cache[0] != stamp:
            found, problems = roomconf.load(self.path)
            self._cache = (stamp, found, [str(p) for p in problems])
        return self._cache[1], self._cache[2]

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt]:
        return [self._post(message) for message in messages]

    def _post(self, message: OutgoingMessage) -> Receipt:
        known, problems = self.rooms()
        name = message.to
        room = known.get(name)
        if room is None:
            hint = f" ({problems[0]})" if problems else ""
            raise PermanentDeliveryError(f"room {name}: not in config/chat.yaml{hint}", code="unknown_room")
        try:
            target = roomconf.resolve(room.url or room.webhook or "", self.env())
            secret = roomconf.resolve(f"${{{room.secret_env}}}", self.env()) if room.secret_env else ""
        except ConfigError as exc:
            raise PermanentDeliveryError(f"room {name}: {exc} (see config/chat.yaml)", code="missing_secret") from None
        if room.webhook:
            payload = {
                "room": name,
                "title": message.subject or "",
                "text": message.body,
                "incident_id": message.incident_id,
                "step": message.step,
                "delivery_id": message.delivery_id,
                "sent_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            webhook_post.post(target, secret, payload, room=name)
        else:
            self._notify(name, target, message)
        return Receipt(message.delivery_id, f"room:{name}:{message.delivery_id}"[:64])

    def _notify(self, name: str, url: str, message: OutgoingMessage) -> None:
        client = apprise.Apprise()
        if not client.add(url):
            raise PermanentDeliveryError(f"room {name}: not a valid Apprise URL (see config/chat.yaml)", code="bad_url")
        with apprise.LogCapture(level=logging.WARNING) as captured:
            ok = client.notify(title=message.subject or "", body=message.body)
            text = captured.getvalue() if hasattr(captured, "getvalue") else ""
        if ok:
            return
        codes = [int(c) for c in _STATUS.findall(str(text))]
        status = codes[-1] if codes else None
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            raise PermanentDeliveryError(f"room {name}: the service refused the post (HTTP {status})", code=str(status))
        reason = f"HTTP {status}" if status else "no answer"
        raise RetryableDeliveryError(f"room {name}: posting failed ({reason})", code=str(status or "network"))
