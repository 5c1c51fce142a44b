"""A bridge line that is not Teams: a runbook step ``{channel: bridge}``. Pure.

The step texts its recipients the dial-in number and PIN with a one-tap
``tel:`` link (``tel:+12025550100,,482913%23``: the phone dials, pauses, and
keys in the PIN). The line is either a Twilio conference on our own number,
one per incident, its PIN derived from the incident id and the service's
secret (so every process computes the same PIN without storing it first), or
a fixed dial-in number and PIN from the settings (another provider's bridge).
``dial: [group:oncall]`` has failover call those people straight into it.

Templates reach the line through three filters on the incident id -
``bridge_number``, ``bridge_pin``, ``bridge_tel`` - which render
placeholders until the Runtime installs the real ones (previews of a new
incident, ``runbooks check``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jinja2.exceptions import TemplateRuntimeError
from pydantic import BaseModel, ConfigDict

PIN_DIGITS = 6
DEFAULT_TEXT = (
    "Bridge line for {{ incident.title }} (not Teams): call {{ incident.id | bridge_number }}, "
    "PIN {{ incident.id | bridge_pin }}. One tap: {{ incident.id | bridge_tel }}"
)


class BridgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dial: tuple[str, ...] = ()  # group:/person: references failover calls into the bridge


@dataclass(frozen=True)
class Line:
    mode: str  # conference | fixed
    number: str
    pin: str
    incident_id: int

    @property
    def tel(self) -> str:
        """One tap dials, waits two seconds, and keys in the PIN and #."""
        return "tel:" + quote(f"{self.number},,{self.pin}#", safe="+,")

    @property
    def conference(self) -> str:
        return f"failover-incident-{self.incident_id}"


def pin_for(secret: str, incident_id: int) -> str:
    digest = hmac.new(secret.encode(), f"bridge:{incident_id}".encode(), hashlib.sha256).digest()
    return str(int.from_bytes(digest[:8], "big") % 10**PIN_DIGITS).zfill(PIN_DIGITS)


def line_for(incident_id: int, *, number: str, secret: str, fixed_pin: str | None = None) -> Line:
    if fixed_pin:
        return Line("fixed", number, fixed_pin, incident_id)
    return Line("conference", number, pin_for(secret, incident_id), incident_id)


def filters(line: Callable[[int], Line | None]) -> dict[str, Callable[[Any], str]]:
    """The template filters for a Runtime that knows its bridge (``line`` None: not configured)."""

    def pick(attribute: str, placeholder: str) -> Callable[[Any], str]:
        def render(incident_id: Any) -> str:
            if not isinstance(incident_id, int):
                return placeholder  # a preview of an incident not opened yet
            found = line(incident_id)
            if found is None:
                raise TemplateRuntimeError(
                    "a bridge step needs a dial-in number: set FAILOVER_BRIDGE_NUMBER or TWILIO_FROM"
                )
            return str(getattr(found, attribute))

        return render

    return {
        "bridge_number": pick("number", "(bridge number)"),
        "bridge_pin": pick("pin", "(PIN)"),
        "bridge_tel": pick("tel", "(one-tap link)"),
    }


PLACEHOLDER_FILTERS = filters(lambda incident_id: None)
