"""How many SMS segments a text costs, and in which encoding (3GPP TS 23.038).

A text made only of GSM 03.38 characters is sent as GSM-7: 160 septets in a
single message, 153 per segment once it is split (the user data header takes
the rest). Characters of the extension table (``^{}\\[~]|€`` and form feed)
take two septets each, and an escape pair is never split across segments.
One character outside both tables turns the whole message into UCS-2: 70
UTF-16 code units alone, 67 per segment, a surrogate pair (emoji) never split.

Twilio's optional "smart encoding" may swap some Unicode look-alikes (curly
quotes, long dashes) for GSM characters; we count without it, so the preview
shows the worst case and names the characters that force UCS-2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class SmsInfo:
    """``units`` are septets for GSM-7 and UTF-16 code units for UCS-2."""

    encoding: Encoding
    characters: int
    units: int
    segments: int
    non_gsm: tuple[str, ...] = ()  # the characters that forced UCS-2, each once, in order


def analyse(text: str) -> SmsInfo:
    """Encoding, length and segment count of one SMS body."""
    non_gsm = tuple(dict.fromkeys(ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION))
    if not non_gsm:
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return SmsInfo("GSM-7", len(text), sum(costs), _segments(costs, GSM7_SINGLE, GSM7_PART))
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SmsInfo("UCS-2", len(text), sum(costs), _segments(costs, UCS2_SINGLE, UCS2_PART), non_gsm)


def _segments(costs: list[int], single: int, part: int) -> int:
    """Pack characters into segments without splitting one character's units."""
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments, used = segments + 1, 0
        used += cost
    return segments
