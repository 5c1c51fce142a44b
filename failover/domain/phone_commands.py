"""Activation by phone, the pure part: what an operator's text means, and the one-SMS preview.

``RUN <runbook> <PIN>`` asks to activate a runbook; ``APPROVE <activation>
<PIN>`` asks to release one waiting for a second operator; a 6-digit code
alone confirms the request waiting for it. Nothing is sent before the code:
the PIN says it is the operator's phone, the TOTP code that it is the
operator holding it. Keywords in any case; the PIN and code are digits.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from failover.domain.preview import Preview

MAX_PARSED = 160
REQUEST_TTL = dt.timedelta(minutes=5)  # a RUN waits this long for its code
MAX_FAILURES = 5  # wrong PINs and codes in a row before the phone path locks
SLOW_AFTER = 3  # from this many failures on, one attempt per SLOW_DOWN
SLOW_DOWN = dt.timedelta(minutes=1)
PIN = re.compile(r"^\d{4,12}$")
_RUN = re.compile(r"^RUN\s+([A-Za-z0-9][A-Za-z0-9._-]{0,63})\s+(\S+)$")
_APPROVE = re.compile(r"^APPROVE\s+#?(\d{1,12})\s+(\S+)$")
_CODE = re.compile(r"^(\d{3})\s?(\d{3})$")


@dataclass(frozen=True)
class Run:
    runbook_id: str
    pin: str


@dataclass(frozen=True)
class Approve:
    activation_id: int
    pin: str


@dataclass(frozen=True)
class Code:
    code: str


Command = Run | Approve | Code


def parse(body: str | None) -> Command | None:
    """The operator command in a text, or None (then it is an ordinary reply)."""
    text = unicodedata.normalize("NFKC", body or "")[:MAX_PARSED].strip()
    words = " ".join(text.split())
    upper = words.upper()
    if upper.startswith("RUN "):
        found = _RUN.match("RUN " + words[4:])
        return Run(found.group(1).lower(), found.group(2)) if found else Run("", "")
    if upper.startswith("APPROVE "):
        found = _APPROVE.match("APPROVE " + words[8:])
        return Approve(int(found.group(1)), found.group(2)) if found else Approve(0, "")
    code = _CODE.match(words)
    return Code(code.group(1) + code.group(2)) if code else None


def wait_before_next(failures: int, last_failure: dt.datetime | None, now: dt.datetime) -> dt.timedelta | None:
    """After SLOW_AFTER failures an attempt must wait SLOW_DOWN after the last one; None: go ahead."""
    if failures < SLOW_AFTER or last_failure is None:
        return None
    left = last_failure + SLOW_DOWN - now
    return left if left > dt.timedelta(0) else None


def preview_sms(preview: Preview, *, what: str, needs_code: bool = True) -> str:
    """The preview summary as one SMS: what would go to how many, and what to answer."""
    counts = ", ".join(f"{n} {channel}" for channel, n in sorted(preview.counts.items()) if n) or "nothing"
    groups = sorted({g for by_group in preview.groups.values() for g in by_group})
    text = f"{what}: {counts}"
    if groups:
        text += f" to {', '.join(groups[:4])}{' +' + str(len(groups) - 4) if len(groups) > 4 else ''}"
    if preview.needs_approval:
        text += "; needs a 2nd operator's approval"
    if preview.outbox_only:
        text += f"; {', '.join(preview.outbox_only)} only to the outbox"
    if needs_code:
        minutes = int(REQUEST_TTL.total_seconds() // 60)
        text += f". Reply with your 6-digit authenticator code within {minutes} min to confirm."
    return text[:320]
