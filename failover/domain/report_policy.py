"""detection.yaml ``reports:``: the staff outage reports source's settings (used by domain.staff_reports)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from failover.domain.durations import Duration

KEYWORD = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,19}$")
DEFAULT_REPLY = "Thanks - we are on it. Keep using SMS and your personal email for now."


class ReportsPolicy(BaseModel):
    """detection.yaml ``reports:``; present means staff reports are a detection source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    keywords: tuple[str, ...] = Field(default=("DOWN",), min_length=1)  # the first word of a report
    suite: str | None = None  # the watched service a bare keyword reports ("Microsoft 365 suite")
    aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # watched service -> words
    window: Duration = dt.timedelta(minutes=10)
    min_reporters: Annotated[int, Field(ge=1, le=1000)] = 5
    per_number: Annotated[int, Field(ge=1, le=100)] = 3  # reports kept per reporter per window; more are dropped
    reply: str = Field(default=DEFAULT_REPLY, min_length=1, max_length=320)
    web: bool = True  # the status page's "Report a problem" button counts (one reporter per client)
    web_per_client: Annotated[int, Field(ge=1, le=100)] = 3  # button presses per client per window

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(k.strip().upper() for k in value)
        for word in cleaned:
            if not KEYWORD.match(word):
                raise ValueError(f"keyword '{word}' must be one word of letters, digits or '-' (at most 20)")
        return cleaned

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        cleaned: dict[str, tuple[str, ...]] = {}
        for service, words in value.items():
            if not words:
                raise ValueError(f"aliases of '{service}': list at least one word (MAIL, OUTLOOK, ...)")
            upper = tuple(w.strip().upper() for w in words)
            for word in upper:
                if not KEYWORD.match(word):
                    raise ValueError(f"alias '{word}' of '{service}' must be one word of letters, digits or '-'")
            cleaned[service.strip()] = upper
        return cleaned

    @field_validator("window")
    @classmethod
    def _window(cls, value: dt.timedelta) -> dt.timedelta:
        if value < dt.timedelta(minutes=1):
            raise ValueError("window must be at least 1m")
        return value

    def word_map(self) -> dict[str, str]:
        """Alias word -> watched service."""
        return {word: service for service, words in self.aliases.items() for word in words}

    def example(self) -> str:
        """How to report, for a reply that did not name a service."""
        keyword = self.keywords[0]
        words = [f"{keyword} {words[0]}" for words in self.aliases.values()]
        if self.suite:
            words.append(keyword)
        return ", ".join(words) or keyword
