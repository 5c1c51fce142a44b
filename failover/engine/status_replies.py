"""SMS keywords for status page subscribers, ahead of the staff reply rules (engine/replies.py).

``YES`` is claimed only from a number with a pending SMS subscription of the
status page (staff number verification is someone else's YES); ``STOP`` from
a subscriber ends the subscription and then goes on to the staff rules, which
record the opt-out as for anyone. Everything else is not ours.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from failover.channels.callbacks import InboundSMS
from failover.domain.replies import ReplyKind, parse
from failover.engine import subscribers

CONFIRMED_TEXT = "Subscribed: you will get status page incident updates by SMS. Reply STOP to unsubscribe."


def claim(session: Session, message: InboundSMS, *, now: dt.datetime) -> tuple[str, str | None] | None:
    """(action, answer) when the message was a subscriber's, None to let the staff rules handle it."""
    reply = parse(message.body)
    if reply.kind == ReplyKind.START and reply.keyword == "YES":
        if subscribers.confirm_sms(session, phone=message.sender, now=now) is not None:
            return "subscribed", CONFIRMED_TEXT
    elif reply.kind == ReplyKind.STOP:
        subscribers.unsubscribe_sms(session, phone=message.sender, now=now)
    return None
