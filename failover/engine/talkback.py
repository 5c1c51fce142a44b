"""The SMS keywords beyond ACK and STOP, hooked into the inbound reply path (engine.replies).

In order: a report keyword (``DOWN MAIL``: engine.staff_reports), an
operator command (``RUN``, ``APPROVE``, a 6-digit code: engine.phone_activation),
a number answering a poll the sender was asked (engine.polls).
Anything else returns None and the reply path answers as before (ACK, 2, help).
Opt-outs are handled before this hook is asked, so STOP always wins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from failover.channels.callbacks import InboundSMS
from failover.domain import phone_commands, polls
from failover.domain import staff_reports as report_words
from failover.domain.detection.config import DetectionConfig
from failover.domain.runbooks import Catalog
from failover.engine import phone_activation, staff_reports
from failover.engine import polls as poll_cases
from failover.engine.replies import Outcome


@dataclass
class Talkback:
    """One inbound message's extra keywords; built per message by the Runtime."""

    catalog: Catalog | None
    detection: Callable[[], DetectionConfig | None]  # the policy in force, None while it is broken
    phone: phone_activation.Tools | None = None

    def __call__(
        self, session: Session, message: InboundSMS, person_id: str | None, now: dt.datetime
    ) -> Outcome | None:
        config = self.detection()
        policy = staff_reports.policy_of(config)
        if config is not None and policy is not None:
            parsed = report_words.parse(message.body, policy)
            if parsed is not None:
                received = staff_reports.from_sms(
                    session,
                    self.catalog,
                    config,
                    parsed=parsed,
                    sender=message.sender,
                    person_id=person_id,
                    now=now,
                )
                if received.action == "unknown_sender":
                    return None  # counted for nothing; strangers get the usual answer within its limits
                return Outcome(f"report_{received.action}", received.text, tuple(received.batch_ids))
        command = phone_commands.parse(message.body)
        if command is not None and self.phone is not None and self.catalog is not None:
            answered = phone_activation.handle(
                session, self.catalog, self.phone, sender=message.sender, command=command, now=now
            )
            if answered is not None:
                return Outcome(answered.action, answered.text, tuple(answered.batch_ids))
        choice = polls.parse_choice(message.body)
        if choice is not None and person_id is not None and self.catalog is not None:
            replied = poll_cases.answer(session, self.catalog, person_id=person_id, choice=choice, now=now)
            if replied is not None:
                return Outcome(replied.action, replied.text)
        return None
