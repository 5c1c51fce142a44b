"""Who was reached and who answered: escalation targets, fallback order and check-in counts.

Pure: the engine reads one activation's ledger rows and answers into
:class:`PersonState` values; everything here is decided from those.

Escalation ``to:`` names who is paged. A person who was asked in the activation
(one of its steps went to them) is paged only while they themselves are
unacknowledged (or unreached); a person who was not asked - a team lead named
only in the escalation - is paged while anyone who was asked still is. So
``to: [group:oncall]`` re-pages the silent on-call staff, and
``to: [group:it-leads]`` tells the leads that someone is silent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

ACK, NEED_HELP = "ack", "need_help"
Condition = Literal["unacknowledged", "undelivered"]


@dataclass(frozen=True)
class PersonState:
    person_id: str
    asked: bool = False  # a step of the activation itself (not an escalation) went to them
    reached: bool = False  # at least one of their messages is known to have arrived (a receipt)
    answer: str | None = None  # ack | need_help | None
    pages: int = 0  # escalation messages already sent to them during this incident
    addressed: bool = False  # a step of the activation named them, even if it had no channel for them
    failed: bool = False  # at least one of their messages failed for good

    @property
    def answered(self) -> bool:
        return self.answer is not None

    @property
    def got_through(self) -> bool:
        """Reached: a delivery receipt or an answer. A message handed to a provider or the outbox is not enough."""
        return self.reached or self.answered

    @property
    def unreachable(self) -> bool:
        """Named by the activation but with no usable channel (no number, no address, opted out): nothing went out."""
        return self.addressed and not self.asked and not self.answered


def failing(state: PersonState, condition: Condition) -> bool:
    """Whether an asked person still meets an escalation's ``if:``. An answer proves they were reached."""
    if not state.asked or state.answered:
        return False
    if condition == "undelivered":
        return not state.reached
    return True


@dataclass(frozen=True)
class Targets:
    page: list[str] = field(default_factory=list)
    limited: list[str] = field(default_factory=list)  # would be paged, but hit the repeat limit


def escalation_targets(
    recipients: Sequence[str], states: Mapping[str, PersonState], condition: Condition, *, limit: int
) -> Targets:
    """Who an escalation pages, in ``recipients`` order (see the module docstring), honouring the repeat limit."""
    anyone_failing = any(failing(state, condition) for state in states.values())
    targets = Targets()
    for person_id in recipients:
        state = states.get(person_id, PersonState(person_id))
        due = failing(state, condition) if state.asked else anyone_failing
        if not due:
            continue
        (targets.limited if state.pages >= limit else targets.page).append(person_id)
    return targets


def next_channels(chain: Sequence[str], failed: str, tried: Collection[str]) -> list[str]:
    """The channels still to try, in order, after ``failed`` failed; those already tried are left out."""
    if failed not in chain:
        return []
    rest = chain[chain.index(failed) + 1 :]
    return [channel for channel in rest if channel not in tried]


@dataclass
class Counts:
    acknowledged: int = 0
    need_help: int = 0
    no_answer: int = 0

    @property
    def total(self) -> int:
        return self.acknowledged + self.need_help + self.no_answer

    def as_dict(self) -> dict[str, int]:
        return {
            "acknowledged": self.acknowledged,
            "need_help": self.need_help,
            "no_answer": self.no_answer,
            "total": self.total,
        }


ALL = "(everyone)"


def roster_counts(states: Iterable[PersonState], groups_of: Mapping[str, Sequence[str]]) -> dict[str, Counts]:
    """Acknowledged / need help / no answer among the people asked, overall (``ALL``) and per group."""
    counts: dict[str, Counts] = {ALL: Counts()}
    for state in states:
        if not state.asked:
            continue
        for key in (ALL, *groups_of.get(state.person_id, ())):
            bucket = counts.setdefault(key, Counts())
            if state.answer == ACK:
                bucket.acknowledged += 1
            elif state.answer == NEED_HELP:
                bucket.need_help += 1
            else:
                bucket.no_answer += 1
    return counts


# The activation page's filters over its people, in the order they are shown; "all" is everyone it named.
FILTERS: dict[str, str] = {
    "all": "everyone",
    "not_reached": "not reached",
    "failed": "failed",
    "no_answer": "no answer",
    "need_help": "needs help",
    "unreachable": "unreachable: no channel",
}


def matches(state: PersonState, name: str) -> bool:
    """Whether a person belongs under filter ``name`` (see ``FILTERS``).

    * not reached: something went out to them, but no receipt and no answer yet;
    * failed: at least one of their messages failed for good;
    * no answer: asked, and silent;
    * unreachable: named, but no channel could carry anything to them (never "not yet").
    """
    if name == "all":
        return state.addressed or state.asked or state.answered
    if name == "not_reached":
        return state.asked and not state.got_through
    if name == "failed":
        return state.failed
    if name == "no_answer":
        return state.asked and not state.answered
    if name == "need_help":
        return state.answer == NEED_HELP
    if name == "unreachable":
        return state.unreachable
    raise ValueError(f"unknown filter '{name}'")


def filter_counts(states: Iterable[PersonState]) -> dict[str, int]:
    counts = dict.fromkeys(FILTERS, 0)
    for state in states:
        for name in FILTERS:
            if matches(state, name):
                counts[name] += 1
    return counts
