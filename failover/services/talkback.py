"""Staff talking back: the SMS keywords' wiring, the report button, and the bridge line.

- ``hook(catalog)``: what the inbound reply path (services.tracking) asks before ACK and help:
  staff reports, RUN / APPROVE / codes by phone, poll answers (engine.talkback).
- ``report_from_web``: the status page's "Report a problem" (engine.staff_reports).
- The bridge line: the line an incident gets (engine.bridge.line_of), beat's sweep that opens
  bridges and dials groups in (calls placed after the transaction commits: a crash in between
  loses those calls, never the bridge), a caller's PIN, Twilio's conference callbacks.

Nothing here decides: engine.* keeps the rows, channels.twilio_conference speaks Twilio.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property

from failover.channels import twilio_conference
from failover.channels.twilio_conference import ConferenceDialer, ConferenceEvent, IncomingCall
from failover.clock import utcnow
from failover.db import Database
from failover.domain.runbooks import Catalog
from failover.engine import bridge, phone_activation, staff_reports
from failover.engine.talkback import Talkback as Keywords
from failover.secretbox import SecretBox
from failover.services.config import Configuration
from failover.services.relay import Relay
from failover.settings import Settings


class Talkback:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        config: Configuration,
        relay: Relay,
        transports: Callable[[], Mapping[str, str]],
        totp_box: Callable[[], SecretBox],
    ) -> None:
        self.settings = settings
        self.database = database
        self.config = config
        self.relay = relay
        self.transports = transports
        self.totp_box = totp_box

    # -- inbound SMS keywords ---------------------------------------------------------

    def hook(self, catalog: Catalog | None) -> Keywords:
        tools = phone_activation.Tools(self.totp_box(), self.config.prices, self.transports())
        return Keywords(catalog, lambda: self.config.detection_loaded().config, tools)

    def report_from_web(self, *, client: str, service: str | None) -> staff_reports.Received | None:
        """The report button; None while detection.yaml has no good version."""
        config = self.config.detection_loaded().config
        if config is None:
            return None
        with self.database.transaction() as session:
            received = staff_reports.from_web(
                session, self.config.catalog_or_none(), config, client=client, service=service, now=utcnow()
            )
        self.relay.publish(received.batch_ids)
        return received

    # -- the bridge line ----------------------------------------------------------------

    @cached_property
    def dialer(self) -> ConferenceDialer | None:
        s = self.settings
        if not (s.twilio_account_sid and s.twilio_auth_token and s.twilio_from):
            return None
        return ConferenceDialer(
            account_sid=s.twilio_account_sid,
            auth_token=s.twilio_auth_token.get_secret_value(),
            caller_id=s.twilio_from,
            api_base=str(s.twilio_api_base),
        )

    def callback_url(self) -> str:
        return self.settings.public_url + twilio_conference.CONFERENCE_PATH

    def sweep_bridges(self) -> int:
        """Open new bridges and dial their groups in; returns the calls placed (beat's follow-up runs it)."""
        catalog = self.config.catalog_or_none()
        if catalog is None:
            return 0
        with self.database.transaction() as session:
            dials = bridge.sweep(session, catalog, bridge.line_of(self.settings))
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
            with self.database.transaction() as session:
                bridge.placed(session, dial, sid)
            placed += sid is not None
        return placed

    def incoming_call(self, call: IncomingCall) -> str:
        """TwiML for a call to our number: ask for the PIN, then put the caller into the bridge it opens."""
        action = self.settings.public_url + twilio_conference.PIN_PATH
        if call.digits is None:
            return twilio_conference.pin_prompt(action)
        with self.database.transaction() as session:
            found = bridge.admit(
                session, self.config.catalog_or_none(), call_sid=call.call_sid, caller=call.caller, pin=call.digits
            )
            name = found.name if found is not None else None
        if name is None:
            return twilio_conference.pin_prompt(action, again=True)
        return twilio_conference.conference_twiml(name, self.callback_url())

    def conference_event(self, event: ConferenceEvent) -> bool:
        with self.database.transaction() as session:
            return bridge.conference_event(session, event, utcnow())

    def close(self) -> None:
        if "dialer" in self.__dict__ and self.dialer is not None:
            self.dialer.close()
