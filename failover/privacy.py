"""Masking of contact data and credentials for logs, the console and error texts.

Phone numbers keep their country code and last two digits (``+1*******01``);
addresses keep the first letter and the domain (``a***@personal.example``).
``scrub`` masks anything that looks like either inside free text, such as a
provider's error message; ``redact_secrets`` hides credentials (Authorization
headers, passwords in URLs, ``api_key=``, tokens) and every log record gets both.

Everything here runs on text an outsider may choose (a webhook's reason, a
provider's error), so every pattern is linear: a match may only start where a
run of its characters starts (a negative lookbehind) and runs are consumed
possessively, so no input makes the engine retry a run from each of its
positions. ``scrub(text, limit)`` cuts the text before it masks anything.
"""

from __future__ import annotations

import logging
import re
import string

REDACTED = "**********"
# The characters of an address's local part and of a domain (RFC 5322's common subset).
_LOCAL = "A-Za-z0-9._%+-"
# A number starts at a "+" and its run never holds another, so each character is read by one attempt.
_PHONE = re.compile(r"\+\d[\d\s().-]{6,}\d")
_EMAIL = re.compile(rf"(?<![{_LOCAL}])[{_LOCAL}]++@(?:[A-Za-z0-9-]++\.)+[A-Za-z]{{2,}}+(?![A-Za-z0-9-])")
# What a cut may leave of an address or a number at the end of a truncated text.
_TAIL = string.ascii_letters + string.digits + "._%+-@()"

_SECRETS = (
    # Authorization headers as SDKs log them: "Bearer SG.x", 'Authorization': 'Basic QUM6dG9r'
    (re.compile(r"(?i)(?<![A-Za-z])(bearer)\s++[^\s'\",]++"), r"\1 " + REDACTED),
    (re.compile(r"(?i)(?<![A-Za-z])(basic)\s++[A-Za-z0-9+/=]{8,}+"), r"\1 " + REDACTED),
    # user:password@ in a URL (redis://:pw@host, postgresql://user:pw@db)
    (re.compile(r"://([^\s/@:'\"]*+):[^\s/@'\"]++@"), r"://\1:" + REDACTED + "@"),
    # key=value, key: value and "key": "value" for the usual names of credentials
    (
        re.compile(
            r"(?i)(?<![A-Za-z0-9_])((?:api|access|auth|refresh|id|client|signing)?[_-]?(?:key|token|secret)|password"
            r"|passwd|pwd|signature|sig)(['\"]?\s*+[:=]\s*+['\"]?)[^\s'\"&,;\\)}\]]++"
        ),
        r"\1\2" + REDACTED,
    ),
    # Credentials recognisable by their shape wherever they appear.
    (re.compile(r"(?<![A-Za-z0-9])SG\.[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}+"), REDACTED),  # SendGrid API key
    (re.compile(r"(?<![A-Za-z0-9])eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]*+"), REDACTED),  # JWT
    (re.compile(r"(?<![A-Za-z0-9_])fo_[A-Za-z0-9_-]{16,}+"), REDACTED),  # failover API token
)


def mask_phone(number: str | None) -> str:
    if not number:
        return ""
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 4:
        return "*" * len(digits)
    head = "+" + digits[:1] if number.startswith("+") else digits[:1]
    return f"{head}{'*' * (len(digits) - 3)}{digits[-2:]}"


def mask_email(address: str | None) -> str:
    if not address or "@" not in address:
        return "***" if address else ""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_address(address: str | None) -> str:
    """Mask a phone number or an email address, whichever it is."""
    if address and "@" in address:
        return mask_email(address)
    return mask_phone(address)


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters; a cut never leaves half an address or number behind."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    stripped = cut.rstrip(_TAIL)
    if stripped != cut:  # the cut went through a word that may be an address: drop all of it
        stripped = stripped.rstrip("0123456789 ()+.-")
    return stripped + "…"


def scrub(text: str | None, limit: int | None = None) -> str:
    """Mask addresses and numbers in ``text``, cut to ``limit`` characters first (linear in the input)."""
    if not text:
        return ""
    if limit is not None:
        text = truncate(text, limit)
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def redact_secrets(text: str) -> str:
    """Hide credentials: Authorization values, URL passwords, ``api_key=``-style pairs, known token shapes."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class ScrubbingFilter(logging.Filter):
    """Masks contact data and credentials in every log record that passes through, tracebacks included."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_secrets(scrub(message))
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_secrets(scrub(record.exc_text))
        if record.stack_info:
            record.stack_info = redact_secrets(scrub(record.stack_info))
        return True
