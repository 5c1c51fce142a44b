"""The bridge line's wiring for the Runtime: which line an incident gets, template filters, dialling, webhooks.

Nothing here decides: engine.bridge keeps the rows, channels.twilio_conference
speaks Twilio. Calls are placed after the transaction that opened the bridge
commits (a crash in between loses those calls, never the bridge; the SMS with
the number and PIN goes out through the ledger like any step).
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING

from failover.channels import twilio_conference
from failover.channels.twilio_conference import ConferenceDialer, ConferenceEvent, IncomingCall
from failover.clock import utcnow
from failover.domain import bridge as lines
from failover.domain.bridge import Line
from failover.domain.templates import Templates
from failover.engine import bridge

if TYPE_CHECKING:
    from failover.runtime import Runtime

log = logging.getLogger(__name__)


class BridgeLine:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    def line(self, incident_id: int) -> Line | None:
        number = self.settings.bridge_number or self.settings.twilio_from
        if not number:
            return None
        return lines.line_for(
            incident_id, number=number, secret=self.settings.flask_secret_key(), fixed_pin=self.settings.bridge_pin
        )

    def install(self, templates: Templates) -> None:
        """Templates render the real number, PIN and tel: link (domain.bridge filters)."""
        templates.env.filters.update(lines.filters(self.line))

    @cached_property
    def dialer(self) -> ConferenceDialer | None:
        s = self.settings
        caller = s.twilio_from
        if not (s.twilio_account_sid and s.twilio_auth_token and caller):
            return None
        return ConferenceDialer(
            account_sid=s.twilio_account_sid,
            auth_token=s.twilio_auth_token.get_secret_value(),
            caller_id=caller,
            api_base=str(s.twilio_api_base),
        )

    def callback_url(self) -> str:
        return self.settings.public_url + twilio_conference.CONFERENCE_PATH

    def sweep(self) -> int:
        """Open new bridges and dial their groups in; returns the calls placed (beat's follow-up runs it)."""
        catalog = self.runtime.catalog_or_none()
        if catalog is None:
            return 0
        with self.runtime.database.transaction() as session:
            dials = bridge.sweep(session, catalog, self.line)
        placed = 0
        for dial in dials:
            sid = None
            if self.dialer is not None:
                if dial.line.mode == "fixed":
                    twiml = twilio_conference.fixed_twiml(dial.line.number, dial.line.pin)
                else:
                    twiml = twilio_conference.conference_twiml(
                        dial.line.conference, self.callback_url(), greeting="Joining the incident bridge."
                    )
                sid = self.dialer.call(dial.phone, twiml)
            with self.runtime.database.transaction() as session:
                bridge.placed(session, dial, sid)
            placed += sid is not None
        return placed

    def incoming(self, call: IncomingCall) -> str:
        """TwiML for a call to our number: ask for the PIN, then put the caller into the bridge it opens."""
        action = self.settings.public_url + twilio_conference.PIN_PATH
        if call.digits is None:
            return twilio_conference.pin_prompt(action)
        with self.runtime.database.transaction() as session:
            found = bridge.admit(
                session, self.runtime.catalog_or_none(), call_sid=call.call_sid, caller=call.caller, pin=call.digits
            )
            name = found.name if found is not None else None
        if name is None:
            return twilio_conference.pin_prompt(action, again=True)
        return twilio_conference.conference_twiml(name, self.callback_url())

    def conference_event(self, event: ConferenceEvent) -> bool:
        with self.runtime.database.transaction() as session:
            return bridge.conference_event(session, event, utcnow())

    def close(self) -> None:
        if "dialer" in self.__dict__ and self.dialer is not None:
            self.dialer.close()
