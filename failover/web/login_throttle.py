"""Counters of failed logins, keyed only on what the server knows; the rules are in failover/web/auth.py.

Moving windows: in Redis when failover has one (``Settings.shared_redis_url``,
so every web process shares them; the ``limits`` library's Lua scripts), and
in this process otherwise. If Redis stops answering, the counters carry on
in memory (trying Redis again every 30 s) rather than locking everyone out
on the worst day. The in-process windows are plain lists of timestamps read
with ``time.time()``, with no expiry thread, so freezegun moves them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

# A client that failed this recently is "suspect": refused while its account, or everyone, is over the limit.
SUSPECT_FOR = "1 per 15 minutes"
# Wrong TOTP codes per account, whoever sends them (only someone with the password gets that far).
SECOND_FACTOR = "10 per hour"
RETRY_PRIMARY_S = 30.0


@dataclass(frozen=True)
class Limits:
    pair: str  # per client and account: FAILOVER_LOGIN_RATE_LIMIT
    client: str  # per client, all accounts: FAILOVER_LOGIN_CLIENT_LIMIT
    account: str  # per account, all clients (suspect clients only): FAILOVER_LOGIN_ACCOUNT_LIMIT
    everyone: str  # all failures (suspect clients only): FAILOVER_LOGIN_GLOBAL_LIMIT
    second_factor: str = SECOND_FACTOR
    suspect: str = SUSPECT_FOR


class Windows(Protocol):
    def test(self, item: RateLimitItem, *identifiers: str) -> bool: ...

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool: ...


class LocalWindows:
    """Moving windows in this process: the times of recent failures per key, pruned as they are read."""

    PRUNE_EVERY = 1000

    def __init__(self) -> None:
        self._times: dict[str, tuple[float, list[float]]] = {}  # key -> (window seconds, times)
        self._lock = threading.Lock()
        self._hits = 0

    def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        with self._lock:
            return len(self._recent(item, identifiers)) < item.amount

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        with self._lock:
            recent = self._recent(item, identifiers)
            if len(recent) >= item.amount:
                return False
            recent.append(time.time())
            self._hits += 1
            if self._hits % self.PRUNE_EVERY == 0:
                self._prune()
            return True

    def _recent(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> list[float]:
        key, window = item.key_for(*identifiers), item.get_expiry()
        since = time.time() - window
        recent = [t for t in self._times.get(key, (window, []))[1] if t > since]
        self._times[key] = (window, recent)
        return recent

    def _prune(self) -> None:
        now = time.time()
        for key, (window, times) in list(self._times.items()):
            if not times or times[-1] <= now - window:
                del self._times[key]


class LoginThrottle:
    def __init__(self, storage_uri: str, limits: Limits) -> None:
        self._uri = storage_uri
        self._limits = {name: parse_many(value) for name, value in vars(limits).items()}
        self._primary: Windows
        if storage_uri.startswith("memory://"):
            self._primary = LocalWindows()
        else:
            storage = storage_from_string(storage_uri, wrap_exceptions=True, socket_timeout=2, socket_connect_timeout=2)
            self._primary = MovingWindowRateLimiter(storage)
        self._fallback: LocalWindows | None = None
        self._retry_at = 0.0

    def refusal(self, client: str, account: str, *, second_factor: bool = False) -> str | None:
        """Why this client may not try this account now, or None."""
        if not self._allows("pair", client, account):
            return "client and account"
        if not self._allows("client", client):
            return "client"
        if second_factor and not self._allows("second_factor", account):
            return "second factor"
        if not self._allows("suspect", client):
            if not self._allows("account", account):
                return "account"
            if not self._allows("everyone"):
                return "everyone"
        return None

    def failed(self, client: str, account: str, *, second_factor: bool = False) -> list[str]:
        """Count a failure; returns the scopes it just closed (each is audited once, when it closes)."""
        keys: list[tuple[str, tuple[str, ...]]] = [
            ("pair", (client, account)),
            ("client", (client,)),
            ("account", (account,)),
            ("everyone", ()),
            ("suspect", (client,)),
        ]
        if second_factor:
            keys.append(("second_factor", (account,)))
        closed = []
        for name, identifiers in keys:
            if self._hit(name, *identifiers) and not self._allows(name, *identifiers) and name != "suspect":
                closed.append(_SCOPES[name])
        return closed

    # -- storage, with the memory fallback ------------------------------------------------------

    def _allows(self, name: str, *identifiers: str) -> bool:
        return all(self._call("test", item, name, identifiers) for item in self._limits[name])

    def _hit(self, name: str, *identifiers: str) -> bool:
        """Count one failure against every window of a limit; True if it still fitted in all of them."""
        return all([self._call("hit", item, name, identifiers) for item in self._limits[name]])

    def _call(self, method: str, item: RateLimitItem, name: str, identifiers: tuple[str, ...]) -> bool:
        keys = ("failover-login", name, *(part[:128] for part in identifiers))
        if self._fallback is None or time.monotonic() >= self._retry_at:
            try:
                result = bool(getattr(self._primary, method)(item, *keys))
            except StorageError as exc:
                if self._fallback is None:
                    log.warning("login throttle: %s unreachable (%s); counting in memory", _redact(self._uri), exc)
                    self._fallback = LocalWindows()
                self._retry_at = time.monotonic() + RETRY_PRIMARY_S
            else:
                if self._fallback is not None:
                    log.warning("login throttle: %s answers again", _redact(self._uri))
                    self._fallback = None
                return result
        assert self._fallback is not None
        return bool(getattr(self._fallback, method)(item, *keys))


_SCOPES = {
    "pair": "client and account",
    "client": "client",
    "account": "account",
    "everyone": "everyone",
    "second_factor": "second factor",
}


def _redact(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"
