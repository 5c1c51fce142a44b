"""config/settings.example.env lists every setting the Settings model reads, and nothing it does not."""

from __future__ import annotations

import re
from pathlib import Path

from failover.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "settings.example.env"
NOT_A_FIELD = {"FAILOVER_ENV_FILE"}  # read before Settings exists: which file to load the others from


def test_the_example_env_file_lists_exactly_the_settings() -> None:
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", EXAMPLE.read_text(), re.M))
    aliases = {field.validation_alias for field in Settings.model_fields.values()}
    assert all(isinstance(alias, str) for alias in aliases)  # one environment name per setting
    assert aliases - listed == set(), "settings missing from config/settings.example.env"
    assert listed - aliases - NOT_A_FIELD == set(), "names in config/settings.example.env that nothing reads"
