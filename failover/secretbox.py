"""Secrets kept in the database, sealed with a key that is not: today the console's TOTP secrets.

A TOTP secret is as good as the second factor itself, so a copy of the
database (a backup, a dump, a read-only SQL injection) must not yield it.
Secrets are sealed with Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``) under a key from the environment:

* ``FAILOVER_TOTP_KEY``: one or more Fernet keys, comma-separated
  (``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``).
  The first seals; all of them open. To rotate, put the new key first and
  keep the old one behind it, run ``failover init`` (it reseals every secret
  under the first key), then drop the old key.
* unset: a key derived from ``FAILOVER_SECRET_KEY`` (or the generated
  ``secret_key`` file in the data directory) with HKDF-SHA256. One secret
  less to manage, at a price: changing the secret key alone would make every
  TOTP secret unreadable (those people could not pass the second step until
  an admin runs ``failover user reset-totp``). So the derived key always
  opens too: set ``FAILOVER_TOTP_KEY`` and run ``failover init`` while the
  old secret key is still in place, and the secret key can change afterwards.

Secrets written before sealing existed are plain base32; they stay readable
and ``failover init`` seals them.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    from failover.settings import Settings

# Every Fernet token starts with its version byte 0x80, which base64 writes as "gA".
_SEALED_PREFIX = "gAAAAA"
_HKDF_INFO = b"failover: TOTP secrets at rest, v1"


class SecretUnreadable(Exception):
    """A sealed secret that none of the configured keys opens."""


def parse_keys(value: str) -> list[bytes]:
    """The comma-separated Fernet keys of FAILOVER_TOTP_KEY; ValueError names the bad one by position."""
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        raise ValueError("no key given")
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(f"key {position} is not a Fernet key (32 bytes, url-safe base64)")
    return [key.encode("ascii") for key in keys]


def derive_key(secret_key: str) -> bytes:
    """A Fernet key derived from the application's secret key (HKDF-SHA256, no salt, a fixed purpose)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


class SecretBox:
    """Seals and opens short secrets; the first key seals, every key opens."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        derived = derive_key(settings.flask_secret_key())
        if settings.totp_key is None:
            return cls([derived])
        return cls([*parse_keys(settings.totp_key.get_secret_value()), derived])

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(_SEALED_PREFIX)

    def seal(self, secret: str) -> str:
        return self._primary.encrypt(secret.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        """The secret; a value from before sealing (plain base32) is returned as it is."""
        if not self.is_sealed(stored):
            return stored
        try:
            return self._all.decrypt(stored.encode("ascii")).decode()
        except InvalidToken:
            raise SecretUnreadable("no configured key opens this secret") from None

    def reseal(self, stored: str) -> str | None:
        """The value to store instead (plain, or sealed under an older key), or None if it is fine as it is."""
        if not self.is_sealed(stored):
            return self.seal(stored)
        try:
            self._primary.decrypt(stored.encode("ascii"))
        except InvalidToken:
            return self.seal(self.open(stored))
        return None
