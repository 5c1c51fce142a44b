"""What the console's accounts need beyond the database: the box that seals TOTP secrets at rest."""

from __future__ import annotations

from functools import cached_property

from failover.secretbox import SecretBox
from failover.settings import Settings


class Accounts:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def totp_box(self) -> SecretBox:
        """Seals the console's TOTP secrets at rest (FAILOVER_TOTP_KEY, else derived from the secret key)."""
        return SecretBox.from_settings(self.settings)
