"""Which SMS provider carries a message, and which errors move it to the next provider (pure policy).

``FAILOVER_SMS_PROVIDERS=twilio,vonage`` is an order of preference. A message
is offered to the first provider that can take it now; it moves on to the next
one only when the provider itself - not the number - is the problem:

* its circuit is open (the breaker saw it fail, so no request is made);
* it answered that it did not process the request (HTTP 503 "service
  unavailable", the documented "try again later" of a provider that is down);
* it refused for a reason of its own: account suspended or out of credit,
  bad credentials, a sender it blocks, a destination its account may not reach.

It never moves on when the message may already have reached the provider (a
timeout, a 500 after the request went out): that row is reconciled with that
provider first, and only a "not found" makes it pending again. It never moves
on for a permanent error about the number (invalid, not a mobile, barred, STOP):
another provider would fail the same way, or must not try.
"""

from __future__ import annotations

from collections.abc import Iterable

from failover.errors import ConfigError

SMS_PROVIDERS = ("twilio", "vonage")

# Codes (as the channels put them in the ledger) that are the provider's own refusal, not the number's.
PROVIDER_REFUSALS: dict[str, frozenset[str]] = {
    "twilio": frozenset(
        {
            "401",  # no Twilio error code, just unauthorised
            "20003",  # authentication failed (wrong or revoked credentials)
            "20005",  # account not active (suspended, closed)
            "21212",  # our 'From' number is invalid
            "21606",  # 'From' is not an SMS-capable number of ours
            "21659",  # 'From' is not a Twilio number
            "30002",  # account suspended
        }
    ),
    "vonage": frozenset(
        {
            "vonage-4",  # invalid credentials
            "vonage-8",  # account barred
            "vonage-9",  # partner quota exceeded: no credit
            "vonage-11",  # account not enabled for this API
            "vonage-14",  # invalid signature (our signature secret is wrong)
            "vonage-15",  # illegal sender address (sender blocked)
            "vonage-32",  # signature and API secret disallowed
        }
    ),
}
# Refusals about a destination this account may not reach (another provider may): they fail over, but
# one person abroad must not open the breaker for everyone.
DESTINATION_REFUSALS: dict[str, frozenset[str]] = {
    "twilio": frozenset({"21408"}),  # this account may not send to that region
    "vonage": frozenset({"vonage-29"}),  # non-whitelisted destination (trial account)
}
# "The provider did not take it": nothing can have been sent, and the provider is what fails.
NOT_TAKEN = frozenset({"circuit_open", "503", "vonage-5"})


def parse_order(text: str, available: Iterable[str]) -> tuple[str, ...]:
    """``twilio,vonage`` -> ("twilio", "vonage"); every name known, configured and listed once."""
    configured = set(available)
    names = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    if not names:
        raise ConfigError("FAILOVER_SMS_PROVIDERS names no provider (use e.g. twilio,vonage)")
    for name in names:
        if name not in SMS_PROVIDERS:
            raise ConfigError(f"FAILOVER_SMS_PROVIDERS: unknown provider '{name}' (known: {', '.join(SMS_PROVIDERS)})")
        if name not in configured:
            raise ConfigError(f"FAILOVER_SMS_PROVIDERS names {name}, but {name} has no credentials set")
    if len(set(names)) != len(names):
        raise ConfigError("FAILOVER_SMS_PROVIDERS lists a provider twice")
    return names


def default_order(available: Iterable[str]) -> tuple[str, ...]:
    """Without FAILOVER_SMS_PROVIDERS: every configured provider, Twilio first."""
    configured = set(available)
    return tuple(name for name in SMS_PROVIDERS if name in configured)


def is_refusal(provider: str, code: str | None) -> bool:
    """The provider refused for a reason of its own (the breaker counts these as the provider failing)."""
    return code is not None and code in PROVIDER_REFUSALS.get(provider, frozenset())


def provider_failing(provider: str, code: str | None) -> bool:
    """Whether an error says the provider (not the number) fails for everyone: the breaker counts these."""
    return code in NOT_TAKEN or is_refusal(provider, code)


def fails_over(provider: str, code: str | None, *, maybe_sent: bool) -> bool:
    """Whether a message that ``provider`` did not carry is offered to the next provider right away."""
    if maybe_sent:
        return False  # it may have reached this provider: reconcile there before anyone else sends it
    return provider_failing(provider, code) or code in DESTINATION_REFUSALS.get(provider, frozenset())
