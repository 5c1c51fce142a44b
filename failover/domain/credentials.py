"""What the runbooks need from the environment, and what is missing (``failover runbooks check``).

Pure: given the catalog, which providers have credentials and the
environment, say in words which channel cannot really send and which
variable would fix it. These are warnings - a machine that only checks the
files (CI) has no secrets - and they never print a secret's value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from failover.domain import rooms
from failover.domain.runbooks import Catalog


@dataclass(frozen=True)
class Providers:
    sms: Sequence[str]  # in order of preference; empty: the outbox
    voice: bool  # Twilio
    email: bool  # SendGrid
    vonage_signature: bool  # VONAGE_SIGNATURE_SECRET: Vonage receipts and replies can be verified


def used_channels(catalog: Catalog) -> dict[str, list[str]]:
    """Channel -> the runbooks that use it (step, fallback, escalation or all-clear)."""
    used: dict[str, list[str]] = {}
    for runbook in catalog.runbooks.values():
        steps = (*runbook.steps, *runbook.escalation, *runbook.on_resolve)
        for channel in sorted({c for step in steps for c in step.chain}):
            used.setdefault(channel, []).append(runbook.id)
    return used


def summary(providers: Providers, catalog: Catalog) -> str:
    sms = ", then ".join(providers.sms) if providers.sms else "outbox only"
    return (
        f"providers: sms {sms}; voice {'twilio' if providers.voice else 'outbox only'}; "
        f"email {'sendgrid' if providers.email else 'outbox only'}; chat {len(catalog.rooms.rooms)} room(s)"
    )


def warnings(catalog: Catalog, providers: Providers, env: Mapping[str, str]) -> list[str]:
    used = used_channels(catalog)
    found: list[str] = []

    def who(channel: str) -> str:
        return ", ".join(sorted(used[channel]))

    if "sms" in used and not providers.sms:
        found.append(
            f"sms ({who('sms')}): no SMS provider has credentials (TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN, or "
            "VONAGE_API_KEY + VONAGE_API_SECRET): messages go to the outbox only"
        )
    if "sms" in used and "vonage" in providers.sms and not providers.vonage_signature:
        found.append("sms: VONAGE_SIGNATURE_SECRET is not set: Vonage receipts and replies will be refused")
    if "voice" in used and not providers.voice:
        found.append(f"voice ({who('voice')}): TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set: outbox only")
    if "email" in used and not providers.email:
        found.append(f"email ({who('email')}): SENDGRID_API_KEY is not set: outbox only")
    if "chat" in used:
        needed = {
            name
            for runbook in catalog.runbooks.values()
            for step in (*runbook.steps, *runbook.on_resolve)
            if step.channel == "chat"
            for name in (rooms.room_name(ref) for ref in step.to)
            if name
        }
        chosen = [room for name in sorted(needed) if (room := catalog.rooms.get(name)) is not None]
        for name, missing in rooms.missing_variables(chosen, env).items():
            found.append(f"chat room {name}: {', '.join(missing)} not set (config/chat.yaml)")
    return found
