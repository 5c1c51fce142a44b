"""Channels: one module per transport, and an explicit registry.

``build_channels`` picks, for each step channel, the real provider when its
credentials are set and the embedded outbox otherwise.
"""

from __future__ import annotations

from failover.channels.base import Channel
from failover.channels.chat import ChatChannel
from failover.channels.outbox import OutboxChannel
from failover.channels.sendgrid_email import SendGridEmail
from failover.channels.sms_providers import SMSProviders
from failover.channels.status_page import StatusPageChannel
from failover.channels.twilio_sms import TwilioSMS
from failover.channels.twilio_voice import TwilioVoice
from failover.channels.vonage_sms import VonageSMS
from failover.db import Database
from failover.settings import Settings


def build_channels(settings: Settings, database: Database) -> dict[str, Channel]:
    channels: dict[str, Channel] = {"status": StatusPageChannel(database)}
    sms = [_sms_provider(settings, name) for name in settings.sms_provider_order]
    if len(sms) > 1:
        channels["sms"] = SMSProviders(sms)  # FAILOVER_SMS_PROVIDERS: in order, each with its own breaker
    elif sms:
        channels["sms"] = sms[0]
    else:
        channels["sms"] = OutboxChannel("sms", database)
    if settings.twilio_enabled:
        assert settings.twilio_account_sid and settings.twilio_auth_token
        channels["voice"] = TwilioVoice(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            caller_id=settings.twilio_from,
            api_base=settings.twilio_api_base,
            public_url=settings.public_url,
        )
    else:
        channels["voice"] = OutboxChannel("voice", database)
    channels["chat"] = ChatChannel(settings.config_dir)  # rooms in config/chat.yaml; secrets from the environment
    if settings.sendgrid_enabled:
        assert settings.sendgrid_api_key and settings.sendgrid_from
        channels["email"] = SendGridEmail(
            api_key=settings.sendgrid_api_key.get_secret_value(),
            sender=settings.sendgrid_from,
            api_base=settings.sendgrid_api_base,
        )
    else:
        channels["email"] = OutboxChannel("email", database)
    return channels


def _sms_provider(settings: Settings, name: str) -> Channel:
    if name == "vonage":
        assert settings.vonage_api_key and settings.vonage_api_secret and settings.vonage_from
        return VonageSMS(
            api_key=settings.vonage_api_key,
            api_secret=settings.vonage_api_secret.get_secret_value(),
            sender=settings.vonage_from,
            api_base=settings.vonage_api_base,
            public_url=settings.public_url,
        )
    assert settings.twilio_account_sid and settings.twilio_auth_token
    return TwilioSMS(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        sender=settings.twilio_from,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        api_base=settings.twilio_api_base,
        public_url=settings.public_url,
    )
