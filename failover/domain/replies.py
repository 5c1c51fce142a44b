"""What an SMS reply means: acknowledge, need help, opt out, opt back in, or ask for help.

Opt-out and opt-in keywords are Twilio's defaults (its Advanced Opt-Out list),
matched only when they are the whole message, as Twilio matches them, so
"End of shift, on my way" is not an opt-out. Acknowledgements are forgiving:
"ack", "OK!", "1 - on it" all count.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

MAX_PARSED = 160  # a keyword reply is short; never scan a long body


class ReplyKind(StrEnum):
    ACK = "ack"
    NEED_HELP = "need_help"  # "2" in a check-in: cannot work / needs help
    STOP = "stop"
    START = "start"
    HELP = "help"
    OTHER = "other"


ACK_WORDS = frozenset({"ACK", "ACKNOWLEDGE", "ACKNOWLEDGED", "OK", "OKAY", "1", "CONFIRM", "CONFIRMED"})
NEED_HELP_WORDS = frozenset({"2"})
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_EDGES = re.compile(r"^[\W_]+|[\W_]+$")
_FIRST_WORD = re.compile(r"[A-Z0-9]+")


@dataclass(frozen=True)
class Reply:
    kind: ReplyKind
    keyword: str = ""  # the word that decided it, upper-case ("" for OTHER)


def parse(body: str | None) -> Reply:
    """Classify a reply. Pure; the body is never stored or logged by callers."""
    text = unicodedata.normalize("NFKC", body or "")[:MAX_PARSED].strip().upper()
    whole = _EDGES.sub("", text).replace(" ", "")
    for words, kind in (
        (STOP_WORDS, ReplyKind.STOP),
        (START_WORDS, ReplyKind.START),
        (HELP_WORDS, ReplyKind.HELP),
        (ACK_WORDS, ReplyKind.ACK),
        (NEED_HELP_WORDS, ReplyKind.NEED_HELP),
    ):
        if whole in words:
            return Reply(kind, whole)
    first = _FIRST_WORD.match(_EDGES.sub("", text))
    if first:
        word = first.group(0)
        if word in ACK_WORDS:
            return Reply(ReplyKind.ACK, word)
        if word in NEED_HELP_WORDS:
            return Reply(ReplyKind.NEED_HELP, word)
    return Reply(ReplyKind.OTHER)
