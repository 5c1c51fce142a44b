"""Words for people under pressure: "Step 1 · SMS to oncall" instead of ``steps.0``.

Pure: the console, the CLI and the preview name ledger steps and channels
through here, so a step reads the same wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence

from failover.domain.contacts import parse_ref
from failover.domain.runbooks import Runbook

CHANNELS = {"sms": "SMS", "email": "email", "voice": "call", "status": "status page", "chat": "chat"}
PHASES = {"steps": "Step", "escalation": "Escalation", "on_resolve": "All-clear", "approval": "Approval page"}
# How each transport is named, and whether anything really leaves the machine through it.
TRANSPORTS = {
    "twilio": "Twilio",
    "vonage": "Vonage",
    "sendgrid": "SendGrid",
    "status": "the fallback status page",
    "chat": "the chat rooms of config/chat.yaml",
    "outbox": "the outbox only: NOT sent to anyone",
}


def channel_name(channel: str) -> str:
    return CHANNELS.get(channel, channel)


def transport_name(transport: str | None) -> str:
    if transport and "," in transport:  # several SMS providers, in order of preference
        first, *others = [transport_name(part) for part in transport.split(",")]
        return f"{first} (then {', then '.join(others)} if it is down)"
    return TRANSPORTS.get(transport or "", transport or "unknown")


def audience(refs: Sequence[str]) -> str:
    """``[group:oncall, person:alice]`` as "oncall, alice"."""
    return ", ".join(name for _, name in map(parse_ref, refs))


def step_label(key: str, channel: str | None = None, runbook: Runbook | None = None) -> str:
    """``steps.0`` as "Step 1 · SMS to oncall"; without the runbook, as much as the key and channel say."""
    phase, _, number = key.partition(".")
    word = PHASES.get(phase, phase.replace("_", " ").capitalize())
    label = f"{word} {int(number) + 1}" if number.isdigit() else word
    step = runbook.step_at(key) if runbook is not None else None
    channel = channel or (step.channel if step is not None else None)
    if channel is None:
        return label
    text = f"{label} · {channel_name(channel)}"
    if step is not None and step.to:
        text += f" to {audience(step.to)}"
    return text
