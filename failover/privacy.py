"""Masking of contact data for logs, the console and error texts.

Phone numbers keep their country code and last two digits (``+1*******01``);
addresses keep the first letter and the domain (``a***@personal.example``).
``scrub`` masks anything that looks like either inside free text, such as a
provider's error message.
"""

from __future__ import annotations

import logging
import re

_PHONE = re.compile(r"\+\d[\d\s().-]{6,}\d")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


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


def scrub(text: str | None) -> str:
    if not text:
        return ""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


class ScrubbingFilter(logging.Filter):
    """Masks phone numbers and addresses in every log record that passes through."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True
