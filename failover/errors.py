"""The exception tree of failover.

    FailoverError
    ├── ConfigError                 a setting or file is wrong; names the variable or file:line
    │   └── ConfigProblems          several file:line problems found at once (runbooks check)
    ├── NotFound                    an id that names nothing (runbook, incident, activation)
    ├── InvalidRequest              a request that cannot be honoured as asked
    │   ├── ApprovalError           approving your own activation, or one not pending approval
    │   └── Conflict                the object is no longer in a state that allows it (already resolved...)
    ├── BrokerUnavailable           the task broker refused a publish; the sweep will retry
    ├── WebhookRejected             a provider callback that is unsigned, forged, stale (403) or unreadable (400)
    └── DeliveryError               a channel could not hand a message to its provider
        ├── RetryableDeliveryError  timeouts, 429, 5xx: try again later (``retry_after`` seconds)
        └── PermanentDeliveryError  invalid number, unsubscribed, rejected: never retried

Channels raise only the two DeliveryError leaves; they never return a bool. The
dispatcher turns them into ledger states. Anything else escaping a channel is a
bug and is treated as retryable so that a crash never silently drops a message.
"""

from __future__ import annotations

from dataclasses import dataclass


class FailoverError(Exception):
    """Base of every error failover raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file, at one line (1-based; 0 when unknown)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class ConfigError(FailoverError):
    """A setting or configuration file is wrong. The message names which."""


class ConfigProblems(ConfigError):
    """Several problems found while loading configuration files."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class NotFound(FailoverError):
    """An id that names nothing."""


class InvalidRequest(FailoverError):
    """A request that cannot be honoured as asked (wrong state, bad arguments)."""


class ApprovalError(InvalidRequest):
    """An approval that is not allowed."""


class Conflict(InvalidRequest):
    """Well-formed, but the object's state forbids it now (HTTP 409): resolved, closed, revoked."""


class BrokerUnavailable(FailoverError):
    """The broker could not take a task now. Nothing is lost: the sweep republishes."""


class WebhookRejected(FailoverError):
    """A provider callback we must not act on. ``status`` is 403 for signatures, 400 for bad content.

    The message says what is wrong (never what the request contained), so it can
    be answered to the caller and written to the audit log as it is.
    """

    def __init__(self, reason: str, *, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class DeliveryError(FailoverError):
    """A channel could not hand a message to its provider.

    ``code`` is the provider's error code when there is one (Twilio 21211,
    HTTP 429, ...); ``detail`` is a short human-readable reason, free of
    contact data.
    """

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class RetryableDeliveryError(DeliveryError):
    """Worth trying again: timeouts, 429 / 20429, 5xx, connection failures.

    ``maybe_sent`` is true when the provider may have accepted the message
    anyway (a timeout or 5xx after the request went out): such a row is in
    doubt and must be reconciled with the provider before it is sent again.
    """

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


class PermanentDeliveryError(DeliveryError):
    """Never worth retrying: invalid number, recipient opted out, rejected content."""
