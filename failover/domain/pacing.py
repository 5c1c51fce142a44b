"""How long the SMS of an activation take: our sending, then the provider handing them out.

Pure. Twilio accepting a message is not the phone receiving it: each sender
(long code, toll-free number, short code; a Messaging Service pools its
numbers) leaves Twilio at a fixed rate of message segments per second (MPS),
and Twilio queues the excess (up to 10 hours, then error 30001). Only the
operator knows the sender pool's total rate, so it is declared
(``FAILOVER_TWILIO_SENDER_MPS``); undeclared, the preview says so instead of
guessing. Our own send time is the provider's allowed concurrency times a
typical request latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Twilio's Messages API answers in 100-200 ms; the benchmark's fake uses 150 ms (README, Performance).
TYPICAL_LATENCY_S = 0.150
# Twilio queues up to 10 hours of a sender's messages, then refuses more (30001 queue overflow).
TWILIO_QUEUE_S = 10 * 3600
# doctor warns when the largest runbook's SMS take longer than this to hand out.
SLOW_HANDOUT_S = 15 * 60
SETTING = "FAILOVER_TWILIO_SENDER_MPS"


@dataclass(frozen=True)
class Pace:
    """What the settings say about SMS speed: the sender pool's rate, our allowance, Vonage's rate."""

    sender_mps: float | None = None  # FAILOVER_TWILIO_SENDER_MPS: segments/s of all senders together
    max_concurrent: int = 0  # FAILOVER_TWILIO_MAX_CONCURRENT; 0 = no cap (no send-time estimate)
    vonage_rate: float | None = None  # FAILOVER_VONAGE_RATE, when Vonage is one of the SMS providers
    latency_s: float = TYPICAL_LATENCY_S


@dataclass(frozen=True)
class HandOut:
    """The estimate for ``messages`` SMS of ``segments`` segments in all."""

    messages: int
    segments: int
    sender_mps: float | None
    send_s: float | None  # our sending: from the first request to the last accepted
    provider_s: float | None  # Twilio handing every segment out, from the first accepted
    vonage_s: float | None  # the same messages through Vonage at its request rate
    text: str

    @property
    def after_send_s(self) -> float | None:
        """How long after our last request the last segment leaves Twilio (0: as fast as we send)."""
        if self.provider_s is None:
            return None
        return max(0.0, self.provider_s - (self.send_s or 0.0))

    @property
    def overflows(self) -> bool:
        """More than Twilio queues: the tail would fail with 30001 instead of waiting."""
        return self.provider_s is not None and self.provider_s > TWILIO_QUEUE_S


def send_seconds(messages: int, max_concurrent: int, latency_s: float = TYPICAL_LATENCY_S) -> float | None:
    """Our own sending at the allowed concurrency: N × latency / concurrency (+ one latency); None uncapped."""
    if messages <= 0:
        return 0.0
    if max_concurrent <= 0:
        return None
    return messages * latency_s / max_concurrent + latency_s


def handout_seconds(segments: int, sender_mps: float | None) -> float | None:
    """How long the sender pool takes to hand ``segments`` out; None when its rate is not declared."""
    if sender_mps is None or sender_mps <= 0:
        return None
    return segments / sender_mps


def estimate(messages: int, segments: int, pace: Pace) -> HandOut | None:
    """The estimate for an activation's SMS, with its sentence; None when it sends no SMS."""
    if messages <= 0:
        return None
    send_s = send_seconds(messages, pace.max_concurrent, pace.latency_s)
    provider_s = handout_seconds(segments, pace.sender_mps)
    vonage_s = messages / pace.vonage_rate if pace.vonage_rate else None
    draft = HandOut(messages, segments, pace.sender_mps, send_s, provider_s, vonage_s, "")
    return HandOut(messages, segments, pace.sender_mps, send_s, provider_s, vonage_s, _sentence(draft))


def _sentence(h: HandOut) -> str:
    sms = f"{h.messages:,} SMS" + (f" ({h.segments:,} segments)" if h.segments != h.messages else "")
    ours = f"we send them in {duration(h.send_s)}" if h.send_s is not None else ""
    if h.provider_s is None or h.sender_mps is None:
        head = f"{sms}: {ours + '; ' if ours else ''}how long Twilio then takes to hand them out is not known: "
        text = head + f"set {SETTING} to your senders' total messages per second (not declared)."
    else:
        after = h.after_send_s or 0.0
        rate = f"{h.sender_mps:g} MPS"
        if after < 1:
            text = f"{sms} at {rate}: Twilio hands them out as fast as we send" + (f" ({ours})." if ours else ".")
        else:
            text = f"{sms} at {rate}: about {duration(after)} after we finish sending" + (
                f" ({ours})." if ours else "."
            )
        if h.overflows:
            text += " More than Twilio queues (10 hours): the last would fail with 30001; add senders."
    if h.vonage_s is not None:
        text += f" Through Vonage (FAILOVER_VONAGE_RATE) about {duration(h.vonage_s)}."
    return text


def duration(seconds: float | None) -> str:
    """Roughly, as a person says it: "8 s", "3 minutes", "2 h 10 min"."""
    if seconds is None:
        return "an unknown time"
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} minutes"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def slow(segments: int, sender_mps: float | None, limit_s: float = SLOW_HANDOUT_S) -> float | None:
    """The hand-out time when it is longer than ``limit_s`` (doctor's warning), else None."""
    seconds = handout_seconds(segments, sender_mps)
    return seconds if seconds is not None and seconds > limit_s else None
