"""A fake Exchange Online mail edge (aiosmtpd): healthy, or answering "451 4.3.2 Temporary server error".

Every command the probe sends is recorded, so a test can check the dialogue
(EHLO, MAIL, RCPT, RSET, QUIT) and that DATA never came.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.services import free_port

OUTAGE_REPLY = "451 4.3.2 Temporary server error. Please try again later. PRX4 [AM0PR01CA0001.eurprd01.prod]"


class _Handler:
    def __init__(self, fake: FakeSMTP) -> None:
        self.fake = fake

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:  # noqa: E501
        self.fake.record("EHLO")
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:  # noqa: E501
        self.fake.record("MAIL")
        envelope.mail_from = address
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:  # noqa: E501
        self.fake.record("RCPT")
        if self.fake.failing:
            return OUTAGE_REPLY
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.fake.record("RSET")
        return "250 2.0.0 Resetting"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.fake.record("DATA")
        return "554 5.6.0 a probe must never send DATA"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.fake.record("QUIT")
        return "221 2.0.0 Service closing transmission channel"


class FakeSMTP:
    def __init__(self, *, failing: bool = False) -> None:
        self.failing = failing
        self.commands: list[str] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            ident="Microsoft ESMTP MAIL Service ready",
            server_hostname="AM0PR01CA0001.mail.protection.outlook.com",
        )

    def record(self, command: str) -> None:
        with self._lock:
            self.commands.append(command)

    def __enter__(self) -> FakeSMTP:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()


class SilentServer:
    """Accepts TCP connections and never says a word: a mail edge that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()
