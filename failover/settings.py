"""Every environment variable failover reads, read here and only here, once.

A bad or incomplete value stops start-up with a ``ConfigError`` that names the
variable. Secrets are ``SecretStr``: they print as ``**********`` and are only
unwrapped where a provider client is built.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from failover import datafiles
from failover.errors import ConfigError

if TYPE_CHECKING:
    from failover.domain.pacing import Pace

DEFAULT_TWILIO_API_BASE = "https://api.twilio.com"
DEFAULT_SENDGRID_API_BASE = "https://api.sendgrid.com"
DEFAULT_VONAGE_API_BASE = "https://rest.nexmo.com"
DEFAULT_GRAPH_API_BASE = "https://graph.microsoft.com"
DEFAULT_GRAPH_AUTHORITY_BASE = "https://login.microsoftonline.com"


def _strip_slash(value: str) -> str:
    return value.rstrip("/")


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


BaseUrl = Annotated[str, AfterValidator(_http_url)]


class Settings(BaseSettings):
    """Process settings. Build with :func:`load_settings`, not directly."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    data_dir: Path = Field(Path("var"), validation_alias="FAILOVER_DATA_DIR")
    database_url: str | None = Field(None, validation_alias="FAILOVER_DATABASE_URL")
    broker_url: str | None = Field(None, validation_alias="FAILOVER_BROKER_URL")
    secret_key: SecretStr | None = Field(None, validation_alias="FAILOVER_SECRET_KEY")
    config_dir: Path = Field(Path("config"), validation_alias="FAILOVER_CONFIG_DIR")
    runbooks_dir: Path = Field(Path("runbooks"), validation_alias="FAILOVER_RUNBOOKS_DIR")
    public_url: BaseUrl = Field("http://127.0.0.1:8000", validation_alias="FAILOVER_PUBLIC_URL")
    host: str = Field("127.0.0.1", validation_alias="FAILOVER_HOST")
    port: int = Field(8000, ge=1, le=65535, validation_alias="FAILOVER_PORT")
    log_level: str = Field("INFO", validation_alias="FAILOVER_LOG_LEVEL")
    worker_concurrency: int = Field(4, ge=1, le=512, validation_alias="FAILOVER_WORKER_CONCURRENCY")
    web_workers: int = Field(1, ge=1, le=64, validation_alias="FAILOVER_WEB_WORKERS")  # gunicorn processes
    web_threads: int = Field(8, ge=1, le=256, validation_alias="FAILOVER_WEB_THREADS")  # threads per process
    max_attempts: int = Field(5, ge=1, le=50, validation_alias="FAILOVER_MAX_ATTEMPTS")
    # Seconds a row may stay in "sending" before it is considered in doubt.
    sending_timeout: float = Field(120.0, gt=0, validation_alias="FAILOVER_SENDING_TIMEOUT")
    # Seconds a published batch may sit neither started nor republished before its task counts as lost.
    republish_after: float = Field(120.0, gt=0, validation_alias="FAILOVER_REPUBLISH_AFTER")
    # Provider requests in flight at once on each worker's send loop; 0 = as many as the guard allows.
    send_concurrency: int = Field(0, ge=0, le=10000, validation_alias="FAILOVER_SEND_CONCURRENCY")
    redis_url: str | None = Field(None, validation_alias="FAILOVER_REDIS_URL")
    # Provider limits, shared by every worker (Redis) or every thread (embedded). 0 = unlimited.
    twilio_max_concurrent: int = Field(50, ge=0, validation_alias="FAILOVER_TWILIO_MAX_CONCURRENT")
    twilio_rate: float = Field(0.0, ge=0, validation_alias="FAILOVER_TWILIO_RATE")
    sendgrid_max_concurrent: int = Field(8, ge=0, validation_alias="FAILOVER_SENDGRID_MAX_CONCURRENT")
    sendgrid_rate: float = Field(0.0, ge=0, validation_alias="FAILOVER_SENDGRID_RATE")
    vonage_max_concurrent: int = Field(10, ge=0, validation_alias="FAILOVER_VONAGE_MAX_CONCURRENT")
    vonage_rate: float = Field(30.0, ge=0, validation_alias="FAILOVER_VONAGE_RATE")  # the SMS API's 30 requests/s
    # The Twilio sender pool's total rate, message segments per second (1 per US long code, 3 toll-free,
    # 100 short code; a Messaging Service adds its numbers'). Unset: not declared, the preview says so.
    twilio_sender_mps: float | None = Field(None, gt=0, validation_alias="FAILOVER_TWILIO_SENDER_MPS")
    breaker_threshold: int = Field(5, ge=0, validation_alias="FAILOVER_BREAKER_THRESHOLD")
    breaker_cooldown: float = Field(30.0, gt=0, validation_alias="FAILOVER_BREAKER_COOLDOWN")

    # Console sessions: idle timeout (each request extends it) and an absolute cap since login, in seconds.
    session_timeout: int = Field(1800, ge=60, le=86400, validation_alias="FAILOVER_SESSION_TIMEOUT")
    session_max_age: int = Field(43200, ge=300, le=7 * 86400, validation_alias="FAILOVER_SESSION_MAX_AGE")
    # Failed logins allowed (limits syntax, "5 per minute;30 per hour"); see failover/web/auth.py for the rules.
    login_rate_limit: str = Field("5 per minute;30 per hour", validation_alias="FAILOVER_LOGIN_RATE_LIMIT")
    login_client_limit: str = Field("10 per minute;60 per hour", validation_alias="FAILOVER_LOGIN_CLIENT_LIMIT")
    login_account_limit: str = Field("10 per 15 minutes", validation_alias="FAILOVER_LOGIN_ACCOUNT_LIMIT")
    login_global_limit: str = Field("100 per 15 minutes", validation_alias="FAILOVER_LOGIN_GLOBAL_LIMIT")
    # Reverse proxies in front of the web process whose X-Forwarded-For / -Proto are trusted (0: none).
    trusted_proxies: int = Field(0, ge=0, le=10, validation_alias="FAILOVER_TRUSTED_PROXIES")
    # Fernet keys sealing TOTP secrets, comma-separated, the first one seals; unset: derived from the secret key.
    totp_key: SecretStr | None = Field(None, validation_alias="FAILOVER_TOTP_KEY")
    # Prices for the preview's cost estimate; unset means "not configured", never a guess.
    sms_segment_price: Decimal | None = Field(None, ge=0, validation_alias="FAILOVER_SMS_SEGMENT_PRICE")
    email_price: Decimal | None = Field(None, ge=0, validation_alias="FAILOVER_EMAIL_PRICE")
    price_currency: str = Field("USD", pattern=r"^[A-Z]{3}$", validation_alias="FAILOVER_PRICE_CURRENCY")
    # The console shows times in this zone ("09:05, 4 min ago") next to UTC; an IANA name such as Europe/Berlin.
    timezone: str = Field("UTC", validation_alias="FAILOVER_TIMEZONE")

    twilio_account_sid: str | None = Field(None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(None, validation_alias="TWILIO_AUTH_TOKEN")
    twilio_from: str | None = Field(None, validation_alias="TWILIO_FROM")
    twilio_messaging_service_sid: str | None = Field(None, validation_alias="TWILIO_MESSAGING_SERVICE_SID")
    twilio_api_base: BaseUrl = Field(DEFAULT_TWILIO_API_BASE, validation_alias="FAILOVER_TWILIO_API_BASE")
    # The bridge line of {channel: bridge} steps: a Twilio conference on this number (default TWILIO_FROM),
    # or, with FAILOVER_BRIDGE_PIN, a fixed dial-in number and PIN of another provider's bridge.
    bridge_number: str | None = Field(None, pattern=r"^\+[1-9]\d{6,14}$", validation_alias="FAILOVER_BRIDGE_NUMBER")
    bridge_pin: str | None = Field(None, pattern=r"^\d{3,12}$", validation_alias="FAILOVER_BRIDGE_PIN")

    # A second SMS provider (Vonage SMS API) and the order SMS providers are tried in ("twilio,vonage").
    sms_providers: str | None = Field(None, validation_alias="FAILOVER_SMS_PROVIDERS")
    vonage_api_key: str | None = Field(None, validation_alias="VONAGE_API_KEY")
    vonage_api_secret: SecretStr | None = Field(None, validation_alias="VONAGE_API_SECRET")
    # Signs our requests and verifies Vonage's webhooks (receipts, inbound SMS); required for the webhooks.
    vonage_signature_secret: SecretStr | None = Field(None, validation_alias="VONAGE_SIGNATURE_SECRET")
    vonage_signature_method: Literal["md5", "sha1", "sha256", "sha512"] = Field(
        "sha256", validation_alias="VONAGE_SIGNATURE_METHOD"
    )
    vonage_from: str | None = Field(None, validation_alias="VONAGE_FROM")
    vonage_api_base: BaseUrl = Field(DEFAULT_VONAGE_API_BASE, validation_alias="FAILOVER_VONAGE_API_BASE")

    sendgrid_api_key: SecretStr | None = Field(None, validation_alias="SENDGRID_API_KEY")
    sendgrid_from: str | None = Field(None, validation_alias="SENDGRID_FROM")
    sendgrid_api_base: BaseUrl = Field(DEFAULT_SENDGRID_API_BASE, validation_alias="FAILOVER_SENDGRID_API_BASE")
    sendgrid_webhook_public_key: SecretStr | None = Field(None, validation_alias="SENDGRID_WEBHOOK_PUBLIC_KEY")

    signals_secret: SecretStr | None = Field(None, validation_alias="FAILOVER_SIGNALS_SECRET")

    # The audit chain's HMAC key, kept out of the database. Unset: generated once into the data dir, which
    # only works with SQLite (one host); with a server database every process must be given the same key.
    audit_key: SecretStr | None = Field(None, min_length=32, validation_alias="FAILOVER_AUDIT_KEY")
    # Seconds between the signed checkpoints beat writes outside the database (0: none).
    audit_checkpoint_interval: float = Field(
        300.0, ge=0, le=86400, validation_alias="FAILOVER_AUDIT_CHECKPOINT_INTERVAL"
    )
    # Directories that get checkpoint files besides the log (comma-separated); default <data dir>/audit.
    audit_checkpoint_dirs: str | None = Field(None, validation_alias="FAILOVER_AUDIT_CHECKPOINT_DIRS")
    # An address (outside Microsoft 365) that gets the day's first checkpoint by e-mail, through SendGrid.
    audit_checkpoint_email: str | None = Field(None, validation_alias="FAILOVER_AUDIT_CHECKPOINT_EMAIL")

    # Delivery tracking, replies and escalation.
    # Seconds a signed SendGrid event batch stays acceptable (its replay window).
    webhook_max_age: float = Field(600.0, ge=30, le=86400, validation_alias="FAILOVER_WEBHOOK_MAX_AGE")
    # Escalation messages one person may get during one incident, across all runbooks and entries.
    escalation_limit: int = Field(3, ge=1, le=100, validation_alias="FAILOVER_ESCALATION_LIMIT")
    # Automatic SMS answers per number per hour (help texts, unknown senders): breaks auto-reply loops.
    reply_limit: int = Field(5, ge=1, le=1000, validation_alias="FAILOVER_REPLY_LIMIT")

    # Operations (issue 16): /metrics for this bearer token (unset: no /metrics); logs as text or JSON lines;
    # errors to Sentry (unset: none).
    metrics_token: SecretStr | None = Field(None, min_length=16, validation_alias="FAILOVER_METRICS_TOKEN")
    log_format: Literal["text", "json"] = Field("text", validation_alias="FAILOVER_LOG_FORMAT")
    sentry_dsn: SecretStr | None = Field(None, validation_alias="SENTRY_DSN")
    sentry_environment: str | None = Field(None, validation_alias="SENTRY_ENVIRONMENT")
    # Seconds between the sweep / follow-up runs while nothing is open (no open incident, no message in flight,
    # no receipt or escalation to wait for); with work they run every 2 s.
    idle_interval: float = Field(30.0, ge=2, le=600, validation_alias="FAILOVER_IDLE_INTERVAL")
    # Where every process writes its metrics (prometheus-client's multiprocess mode); default <data dir>/metrics.
    metrics_dir: Path | None = Field(None, validation_alias="PROMETHEUS_MULTIPROC_DIR")
    # A gunicorn config file of one's own, read after failover's defaults (failover/web/gunicorn_conf.py).
    gunicorn_config: str | None = Field(None, validation_alias="FAILOVER_GUNICORN_CONFIG")
    # The public status page (issue 14): seconds between republishing an unchanged snapshot, so a reader can
    # tell a quiet page from a dead publisher; sign-ups per address and per client per hour.
    status_heartbeat: float = Field(300.0, ge=10, le=86400, validation_alias="FAILOVER_STATUS_HEARTBEAT")
    status_signup_limit: int = Field(5, ge=1, le=1000, validation_alias="FAILOVER_STATUS_SIGNUP_LIMIT")

    graph_tenant_id: str | None = Field(None, validation_alias="FAILOVER_GRAPH_TENANT_ID")
    graph_client_id: str | None = Field(None, validation_alias="FAILOVER_GRAPH_CLIENT_ID")
    graph_client_secret: SecretStr | None = Field(None, validation_alias="FAILOVER_GRAPH_CLIENT_SECRET")
    graph_api_base: BaseUrl = Field(DEFAULT_GRAPH_API_BASE, validation_alias="FAILOVER_GRAPH_API_BASE")
    graph_authority_base: Annotated[str, AfterValidator(_strip_slash)] = Field(
        DEFAULT_GRAPH_AUTHORITY_BASE, validation_alias="FAILOVER_GRAPH_AUTHORITY_BASE"
    )

    # Readiness (``failover doctor``, the console's Readiness page) and canaries; see README "Before the outage".
    twilio_min_balance: float = Field(20.0, ge=0, validation_alias="FAILOVER_TWILIO_MIN_BALANCE")
    # The Graph client secret's end date (YYYY-MM-DD, from the app registration): warned about 30 days ahead.
    graph_secret_expires: dt.date | None = Field(None, validation_alias="FAILOVER_GRAPH_SECRET_EXPIRES")
    # Days an operator or admin account may go without a login or a drill before doctor lists it.
    breakglass_max_age: int = Field(90, ge=1, le=3650, validation_alias="FAILOVER_BREAKGLASS_MAX_AGE")
    # The tenant's own mail domains (comma-separated): personal addresses there die with Microsoft 365.
    tenant_domains: str = Field("", validation_alias="FAILOVER_TENANT_DOMAINS")
    # Name servers doctor asks (host or host:port, comma-separated); unset: the system's resolver.
    dns_nameservers: str = Field("", validation_alias="FAILOVER_DNS_NAMESERVERS")
    # Seconds the oldest due ledger row may wait before doctor calls the queue backed up.
    queue_max_age: float = Field(300.0, gt=0, validation_alias="FAILOVER_QUEUE_MAX_AGE")
    # Canaries: designated numbers and personal addresses (comma-separated) that get "failover canary, reply OK".
    canary_sms: str = Field("", validation_alias="FAILOVER_CANARY_SMS")
    canary_email: str = Field("", validation_alias="FAILOVER_CANARY_EMAIL")
    canary_interval: float = Field(86400.0, ge=0, validation_alias="FAILOVER_CANARY_INTERVAL")  # 0: never
    canary_timeout: float = Field(900.0, gt=0, validation_alias="FAILOVER_CANARY_TIMEOUT")  # receipt within

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'; use an IANA name such as Europe/Berlin") from None
        return value

    @field_validator("sendgrid_webhook_public_key")
    @classmethod
    def _verification_key(cls, value: SecretStr | None) -> SecretStr | None:
        """SendGrid's verification key is base64 DER (P-256); a pasting mistake should stop start-up."""
        if value is None or not value.get_secret_value().strip():
            return None
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        try:
            key = load_der_public_key(base64.b64decode(value.get_secret_value().strip(), validate=True))
        except (ValueError, binascii.Error):
            raise ValueError("not a base64 public key as SendGrid shows it") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("not an ECDSA P-256 key; copy the signed event webhook's verification key")
        return value

    @field_validator("totp_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from failover.secretbox import parse_keys

        parse_keys(value.get_secret_value())  # raises ValueError saying what is wrong, never the key
        return value

    @field_validator("vonage_signature_method", "vonage_api_base", mode="before")
    @classmethod
    def _unset_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        """None (a caller clearing every provider variable, as the benchmarks do) means the default."""
        return cls.model_fields[str(info.field_name)].default if value is None else value

    @model_validator(mode="after")
    def _complete_groups(self) -> Settings:
        """A provider is either fully configured or not at all."""
        twilio = {
            "TWILIO_ACCOUNT_SID": self.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": self.twilio_auth_token,
        }
        _all_or_none("Twilio", twilio)
        if self.twilio_account_sid and not (self.twilio_from or self.twilio_messaging_service_sid):
            raise ValueError("TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required when Twilio is configured")
        if self.vonage_api_key and not self.vonage_api_secret:
            raise ValueError("VONAGE_API_SECRET is required when VONAGE_API_KEY is set")
        if self.vonage_api_key and not self.vonage_from:
            raise ValueError("VONAGE_FROM is required when VONAGE_API_KEY is set")
        if (self.vonage_api_secret or self.vonage_from) and not self.vonage_api_key:
            raise ValueError("VONAGE_API_KEY is required when VONAGE_API_SECRET or VONAGE_FROM is set")
        if self.vonage_api_key and not self.vonage_api_base.startswith("https://"):
            raise ValueError("FAILOVER_VONAGE_API_BASE must start with https:// (the vonage SDK speaks https only)")
        try:
            self.sms_provider_order  # noqa: B018 - checked at start-up, not at the first send
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if self.sendgrid_api_key and not self.sendgrid_from:
            raise ValueError("SENDGRID_FROM is required when SENDGRID_API_KEY is set")
        _all_or_none(
            "Graph",
            {
                "FAILOVER_GRAPH_TENANT_ID": self.graph_tenant_id,
                "FAILOVER_GRAPH_CLIENT_ID": self.graph_client_id,
                "FAILOVER_GRAPH_CLIENT_SECRET": self.graph_client_secret,
            },
        )
        for name, value in (
            ("FAILOVER_LOGIN_RATE_LIMIT", self.login_rate_limit),
            ("FAILOVER_LOGIN_CLIENT_LIMIT", self.login_client_limit),
            ("FAILOVER_LOGIN_ACCOUNT_LIMIT", self.login_account_limit),
            ("FAILOVER_LOGIN_GLOBAL_LIMIT", self.login_global_limit),
        ):
            _check_rate_limit(name, value)
        if self.audit_checkpoint_email and not self.sendgrid_api_key:
            raise ValueError("FAILOVER_AUDIT_CHECKPOINT_EMAIL needs SendGrid (SENDGRID_API_KEY, SENDGRID_FROM)")
        if self.graph_tenant_id and not self.graph_authority_base.startswith("https://"):
            # msal refuses anything else; say so at start-up, not at the first poll.
            raise ValueError("FAILOVER_GRAPH_AUTHORITY_BASE must start with https://")
        return self

    # Derived values -------------------------------------------------------

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'failover.db').resolve()}"

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.db').resolve()}"

    @property
    def embedded_broker(self) -> bool:
        return self.celery_broker_url.startswith("sqla+")

    @property
    def shared_redis_url(self) -> str | None:
        """Where limits and locks shared between workers live: FAILOVER_REDIS_URL, else a Redis broker."""
        if self.redis_url:
            return self.redis_url
        broker = self.celery_broker_url
        return broker if broker.startswith(("redis://", "rediss://")) else None

    @property
    def rate_limit_storage_uri(self) -> str:
        """Login throttling is shared through the same Redis as provider limits, per process when embedded."""
        return self.shared_redis_url or "memory://"

    @property
    def twilio_enabled(self) -> bool:
        return bool(self.twilio_account_sid)

    @property
    def vonage_enabled(self) -> bool:
        return bool(self.vonage_api_key)

    @property
    def sms_provider_order(self) -> tuple[str, ...]:
        """FAILOVER_SMS_PROVIDERS checked against the providers that have credentials (ConfigError)."""
        from failover.domain import providers

        available = [name for name, on in (("twilio", self.twilio_enabled), ("vonage", self.vonage_enabled)) if on]
        if self.sms_providers:
            return providers.parse_order(self.sms_providers, available)
        return providers.default_order(available)

    @property
    def sms_pace(self) -> Pace:
        """What previews need to estimate how long the SMS take (domain.pacing)."""
        from failover.domain.pacing import Pace

        vonage = self.vonage_rate if self.vonage_enabled and "vonage" in self.sms_provider_order else None
        return Pace(self.twilio_sender_mps, self.twilio_max_concurrent, vonage or None)

    @property
    def sendgrid_enabled(self) -> bool:
        return bool(self.sendgrid_api_key)

    @property
    def graph_enabled(self) -> bool:
        return bool(self.graph_tenant_id)

    @property
    def canary_targets(self) -> dict[str, list[str]]:
        """The designated canary recipients per channel (sms, email)."""
        split = lambda text: [part.strip() for part in text.split(",") if part.strip()]  # noqa: E731
        return {"sms": split(self.canary_sms), "email": split(self.canary_email)}

    @property
    def tenant_domain_list(self) -> list[str]:
        return [part.strip().lower() for part in self.tenant_domains.split(",") if part.strip()]

    def flask_secret_key(self) -> str:
        """The configured key, else one generated once and kept in the data dir (0600)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return datafiles.secret(self.data_dir / "secret_key", lambda: secrets.token_hex(32))

    def audit_key_bytes(self) -> bytes:
        """FAILOVER_AUDIT_KEY; in the embedded mode (SQLite) one generated once into the data dir (0600)."""
        if self.audit_key is not None:
            return self.audit_key.get_secret_value().encode()
        if not self.sqlalchemy_url.startswith("sqlite"):
            raise ConfigError(
                "FAILOVER_AUDIT_KEY is required with a server database: every process on every host signs the "
                "audit chain with it (generate one: python3 -c 'import secrets; print(secrets.token_hex(32))')"
            )
        return datafiles.secret(self.data_dir / "audit_key", lambda: secrets.token_hex(32)).encode()

    @property
    def checkpoint_dirs(self) -> list[Path]:
        if self.audit_checkpoint_dirs is None:
            return [self.data_dir / "audit"]
        return [Path(part.strip()) for part in self.audit_checkpoint_dirs.split(",") if part.strip()]


def _check_rate_limit(name: str, value: str) -> None:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValueError(f"{name}: '{value}' is not a rate limit such as '5 per minute;30 per hour'") from None


def _all_or_none(provider: str, values: dict[str, Any]) -> None:
    present = [name for name, value in values.items() if value]
    if present and len(present) != len(values):
        missing = ", ".join(name for name in values if name not in present)
        raise ValueError(f"{provider} is partly configured: set {missing} too (or unset all)")


def load_env_file() -> Path | None:
    """Read ``.env`` (or ``FAILOVER_ENV_FILE``; empty turns it off) into the environment; real variables win.

    Only the ``failover`` command calls this, before it reads any setting: the
    file is a convenience for people starting the service by hand, the same
    file docker compose reads. Returns the file read, if any.
    """
    from dotenv import load_dotenv

    name = os.environ.get("FAILOVER_ENV_FILE", ".env")
    if not name:
        return None
    path = Path(name)
    if not path.is_file():
        return None
    load_dotenv(path, override=False)
    return path


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once. Raises ConfigError naming the bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"{name}: {message}" if error["loc"] else message)
        raise ConfigError("invalid settings: " + "; ".join(lines)) from None
