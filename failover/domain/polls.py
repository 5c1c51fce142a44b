"""Polls: a runbook step that asks a question with numbered answers. Pure.

A step ``{channel: sms, to: [...], poll: {question: ..., options: [...]}}``
sends the question with its options numbered ("Reply 1 working, 2 cannot
work, ..."); ``follow_up: {after: 15m, to: unanswered}`` re-asks, once, the
recipients who have not answered: the runbook gets one more escalation entry
(``if: unacknowledged``) for it, and an answer counts as an acknowledgement,
so the existing escalation timers re-ask exactly the people who did not
answer and never those who did.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from failover.domain.durations import Duration

MAX_OPTIONS = 9  # one digit each
_CHOICE = re.compile(r"^\s*#?([1-9])(?:\b|$)")


class PollSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(min_length=1, max_length=300)
    options: tuple[str, ...] = Field(min_length=2, max_length=MAX_OPTIONS)

    @field_validator("options")
    @classmethod
    def _options(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(" ".join(str(o).split()) for o in value)
        if any(not o or len(o) > 60 for o in cleaned):
            raise ValueError("each option needs 1 to 60 characters")
        if len({o.casefold() for o in cleaned}) != len(cleaned):
            raise ValueError("options must differ")
        return cleaned

    def text(self) -> str:
        """The question as sent: options numbered from 1."""
        numbered = ", ".join(f"{n} {option}" for n, option in enumerate(self.options, 1))
        return f"{self.question.strip()} Reply {numbered}."


class FollowUp(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    after: Duration
    to: Literal["unanswered"] = "unanswered"


def follow_up_entry(step: Mapping[str, Any]) -> dict[str, Any] | None:
    """The escalation entry a raw poll step's ``follow_up`` stands for (None: none, or not well-formed yet)."""
    follow = step.get("follow_up")
    poll = step.get("poll")
    if not isinstance(follow, Mapping) or not isinstance(poll, Mapping) or "after" not in follow:
        return None
    try:
        spec = PollSpec.model_validate(poll)
    except ValueError:
        return None  # the step's own validation reports it
    return {
        "after": follow["after"],
        "if": "unacknowledged",
        "channel": step.get("channel", "sms"),
        "to": step.get("to", ()),
        "text": f"Reminder: {spec.text()}",
    }


def parse_choice(body: str | None) -> int | None:
    """``"2"``, ``"2 - stuck at home"``, ``"#3"`` -> the number; anything else None."""
    text = unicodedata.normalize("NFKC", body or "")[:40]
    found = _CHOICE.match(text)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class Answer:
    person_id: str
    choice: int


@dataclass(frozen=True)
class Tally:
    options: tuple[str, ...]
    groups: dict[str, list[int]]  # group -> count per option, then the unanswered count last
    answered: int
    asked: int


def tally(
    options: Sequence[str],
    asked: Iterable[str],
    answers: Iterable[Answer],
    groups_of: Mapping[str, Sequence[str]],
) -> Tally:
    """Counts per option for everyone and per group, with the unanswered last."""
    chosen = {a.person_id: a.choice for a in answers if 1 <= a.choice <= len(options)}
    people = list(dict.fromkeys(asked))
    rows: dict[str, Counter[int]] = {"(everyone)": Counter()}
    for person in people:
        choice = chosen.get(person, 0)
        for group in ("(everyone)", *groups_of.get(person, ())):
            rows.setdefault(group, Counter())[choice] += 1
    groups = {g: [c[i] for i in range(1, len(options) + 1)] + [c[0]] for g, c in rows.items()}
    answered = sum(1 for p in people if p in chosen)
    return Tally(tuple(options), groups, answered, len(people))


def csv_text(question: str, options: Sequence[str], rows: Iterable[tuple[str, str, str, int | None, str]]) -> str:
    """One line per person asked: id, name, groups, the number and option they chose, when."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["question", question])
    writer.writerow(["person_id", "name", "groups", "choice", "option", "answered_at"])
    for person_id, name, groups, choice, at in rows:
        option = options[choice - 1] if choice and 1 <= choice <= len(options) else ""
        writer.writerow([_safe(person_id), _safe(name), _safe(groups), choice or "", _safe(option), at])
    return out.getvalue()


def _safe(value: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas: quote them."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
