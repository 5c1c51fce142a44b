"""Readiness checks: what was checked, what was found, and how to fix it. Pure: no I/O here.

A check gives one :class:`Finding`; a :class:`Report` collects them and turns
them into the exit code ``failover doctor`` answers with (0 all good, 1 any
failure, 2 warnings only under ``--strict``). The small verdict functions
below hold the rules (thresholds, "points at Microsoft") so they can be tested
with plain tables, apart from the network code that gathers their inputs.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


class Result(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"  # not configured, or not checkable now: says why, never counts as good or bad


@dataclass(frozen=True)
class Finding:
    """One line of the report. ``check`` is a stable id (``twilio.credentials``) scripts can match on."""

    check: str
    area: str  # Twilio, SendGrid, Independence, Graph, Break-glass, Service, Canaries
    what: str  # what was checked, in words
    result: Result
    detail: str = ""  # what was found
    fix: str = ""  # how to fix it (empty when nothing is to be done)
    items: tuple[str, ...] = ()  # a list that goes with it (accounts, addresses), already masked

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "area": self.area,
            "what": self.what,
            "result": self.result.value,
            "detail": self.detail,
            "fix": self.fix,
            "items": list(self.items),
        }


def ok(check: str, area: str, what: str, detail: str = "", **kw: Any) -> Finding:
    return Finding(check, area, what, Result.OK, detail, **kw)


def warn(check: str, area: str, what: str, detail: str, fix: str, **kw: Any) -> Finding:
    return Finding(check, area, what, Result.WARN, detail, fix, **kw)


def fail(check: str, area: str, what: str, detail: str, fix: str, **kw: Any) -> Finding:
    return Finding(check, area, what, Result.FAIL, detail, fix, **kw)


def skipped(check: str, area: str, what: str, detail: str, fix: str = "", **kw: Any) -> Finding:
    return Finding(check, area, what, Result.SKIPPED, detail, fix, **kw)


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    checked_at: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, findings: Iterable[Finding], *, now: dt.datetime) -> Report:
        items = tuple(findings)
        counts = {result.value: sum(1 for f in items if f.result == result) for result in Result}
        return cls(items, now, counts)

    @property
    def worst(self) -> Result:
        results = {f.result for f in self.findings}
        for result in (Result.FAIL, Result.WARN):
            if result in results:
                return result
        return Result.OK

    def exit_code(self, *, strict: bool = False) -> int:
        """0 all good; 1 any failure; 2 warnings but no failure, only when ``strict``."""
        if self.worst == Result.FAIL:
            return 1
        if strict and self.worst == Result.WARN:
            return 2
        return 0

    def areas(self) -> list[tuple[str, list[Finding]]]:
        """Findings grouped by area, in the order the areas first appear."""
        grouped: dict[str, list[Finding]] = {}
        for finding in self.findings:
            grouped.setdefault(finding.area, []).append(finding)
        return list(grouped.items())

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at.isoformat(),
            "result": self.worst.value,
            "counts": self.counts,
            "checks": [f.as_dict() for f in self.findings],
        }


# -- rules -------------------------------------------------------------------------------------

# Hosts that would carry the backup mail or the public URL through Microsoft: they go down with it.
MICROSOFT_MAIL_SUFFIXES = (".mail.protection.outlook.com", ".mx.microsoft", ".outlook.com", ".office365.com")
MICROSOFT_SPF_INCLUDES = ("spf.protection.outlook.com", "spf.protection.office365.us")
MICROSOFT_WEB_SUFFIXES = (
    ".azurefd.net",
    ".azureedge.net",
    ".azurewebsites.net",
    ".cloudapp.azure.com",
    ".cloudapp.net",
    ".trafficmanager.net",
    ".azurestaticapps.net",
    ".azure-api.net",
    ".blob.core.windows.net",
    ".web.core.windows.net",
    ".sharepoint.com",
)
MICROSOFT_NAMESERVER_SUFFIXES = (".azure-dns.com", ".azure-dns.net", ".azure-dns.org", ".azure-dns.info")


def _host(name: str) -> str:
    return name.strip().rstrip(".").lower()


def is_microsoft_mail_host(name: str) -> bool:
    host = _host(name)
    return any(host.endswith(suffix) or host == suffix.lstrip(".") for suffix in MICROSOFT_MAIL_SUFFIXES)


def spf_microsoft_includes(records: Sequence[str]) -> list[str]:
    """The Microsoft ``include:`` mechanisms of the SPF records among ``records`` (TXT strings)."""
    found = []
    for record in records:
        terms = record.strip().strip('"').split()
        if not terms or terms[0].lower() != "v=spf1":
            continue
        for term in terms[1:]:
            name = term.lstrip("+?~-").lower()
            if name.startswith(("include:", "redirect=")):
                target = _host(name.split(":", 1)[-1].split("=", 1)[-1])
                if target in MICROSOFT_SPF_INCLUDES:
                    found.append(target)
    return found


def microsoft_web_hosts(names: Iterable[str]) -> list[str]:
    """Names (a CNAME chain, name servers) that are Azure front doors, App Service or Azure DNS."""
    suffixes = MICROSOFT_WEB_SUFFIXES + MICROSOFT_NAMESERVER_SUFFIXES
    return [_host(n) for n in names if any(_host(n).endswith(s) for s in suffixes)]


def expiry(expires: dt.datetime | None, *, now: dt.datetime, warn_within: dt.timedelta) -> tuple[Result, str]:
    """A certificate's or a secret's end date: FAIL once past, WARN within ``warn_within``."""
    if expires is None:
        return Result.SKIPPED, "no expiry date known"
    left = expires - now
    day = expires.astimezone(dt.UTC).strftime("%Y-%m-%d")
    if left <= dt.timedelta(0):
        return Result.FAIL, f"expired on {day}"
    days = left.days
    text = f"expires on {day} (in {days} day{'s' if days != 1 else ''})"
    return (Result.WARN if left <= warn_within else Result.OK), text


def balance(amount: float, currency: str, *, threshold: float) -> tuple[Result, str]:
    text = f"balance {amount:.2f} {currency}"
    if amount <= 0:
        return Result.FAIL, text + ": nothing left to send with"
    if amount < threshold:
        return Result.WARN, f"{text}, under the threshold of {threshold:.2f}"
    return Result.OK, text


def stale(last: dt.datetime | None, *, now: dt.datetime, max_age: dt.timedelta) -> tuple[bool, str]:
    """(too old or never, "3 days ago") for heartbeats, logins and canaries."""
    if last is None:
        return True, "never"
    return now - last > max_age, f"{age_text(now - last)} ago"


def age_text(delta: dt.timedelta) -> str:
    seconds = int(max(delta.total_seconds(), 0))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower() if "@" in address else ""
