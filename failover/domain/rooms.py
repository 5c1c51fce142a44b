"""Chat rooms and signed webhooks a runbook can post to (``config/chat.yaml``), and how their secrets are found.

::

    rooms:
      - name: ops-mattermost                 # what runbooks (room:ops-mattermost), the console and the audit say
        url: "mmost://chat.example.com/${MATTERMOST_OPS_HOOK}"      # an Apprise URL; ${NAME} from the environment
      - name: ops-ntfy
        url: "ntfys://ntfy.example.com/${NTFY_OPS_TOPIC}"
      - name: incident-bot                   # not a chat room: a signed JSON POST (HMAC-SHA256 of the body)
        webhook: "https://bot.example.com/failover"
        secret_env: INCIDENT_BOT_SECRET

Secrets never sit in this file: every token, password or webhook key is a
``${NAME}`` placeholder filled from the environment when a post is made. A
URL with credentials written in it (``user:password@``, ``?token=...``) is
refused. The room's name is what the console and the audit log show - never
its URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from failover.domain import yamlfile
from failover.errors import ConfigError, Problem

PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
SECRET_QUERY = re.compile(r"(token|key|secret|pass|password|auth|apikey|webhook)", re.I)
ROOM_PREFIX = "room:"


class Room(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,47}$")
    url: str | None = None  # an Apprise URL
    webhook: str | None = None  # a signed JSON POST to this https URL
    secret_env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]*$")  # the webhook's HMAC key

    @model_validator(mode="after")
    def _one_kind(self) -> Room:
        if (self.url is None) == (self.webhook is None):
            raise ValueError("give exactly one of url: (an Apprise URL) or webhook: (a signed POST)")
        if self.webhook is not None:
            if not self.secret_env:
                raise ValueError("a webhook: room needs secret_env: (the variable holding its HMAC key)")
            if not self.webhook.startswith(("https://", "http://")):
                raise ValueError("webhook: must be an http(s):// URL")
        elif self.secret_env:
            raise ValueError("secret_env: is for webhook: rooms; put ${NAME} placeholders in url: instead")
        _no_inline_secrets(self.url or self.webhook or "")
        return self

    @property
    def kind(self) -> str:
        return "webhook" if self.webhook else "apprise"

    @property
    def variables(self) -> tuple[str, ...]:
        """The environment variables this room needs, in order of appearance."""
        found = PLACEHOLDER.findall(self.url or self.webhook or "")
        if self.secret_env:
            found.append(self.secret_env)
        return tuple(dict.fromkeys(found))


def _no_inline_secrets(url: str) -> None:
    if "://" not in url:
        raise ValueError("not a URL (expected scheme://...)")
    raw = urlsplit(url)
    if raw.password and not PLACEHOLDER.fullmatch(raw.password or ""):
        raise ValueError("a password is written in the URL: use a ${NAME} placeholder and set NAME in the environment")
    for key, value in parse_qsl(raw.query):
        if SECRET_QUERY.search(key) and value and not PLACEHOLDER.fullmatch(value):
            raise ValueError(f"'{key}' is written in the URL: use a ${{NAME}} placeholder instead")


@dataclass(frozen=True)
class Rooms:
    rooms: Mapping[str, Room] = field(default_factory=dict)

    def get(self, name: str) -> Room | None:
        return self.rooms.get(name)

    def names(self) -> list[str]:
        return sorted(self.rooms)


def room_name(ref: str) -> str | None:
    """``room:ops`` -> "ops"; anything else -> None."""
    return ref[len(ROOM_PREFIX) :] if ref.startswith(ROOM_PREFIX) else None


def resolve(template: str, env: Mapping[str, str]) -> str:
    """Fill ``${NAME}`` placeholders from ``env``; ConfigError names the first variable that is not set."""
    missing = [name for name in PLACEHOLDER.findall(template) if not env.get(name)]
    if missing:
        raise ConfigError(f"{missing[0]} is not set")
    return PLACEHOLDER.sub(lambda m: env[m.group(1)], template)


def missing_variables(rooms: Iterable[Room], env: Mapping[str, str]) -> dict[str, list[str]]:
    """Room name -> the variables it needs that the environment lacks."""
    out: dict[str, list[str]] = {}
    for room in rooms:
        lacking = [name for name in room.variables if not env.get(name)]
        if lacking:
            out[room.name] = lacking
    return out


def chat_file(config_dir: Path) -> Path:
    return config_dir / "chat.yaml"


def load(path: Path) -> tuple[Rooms, list[Problem]]:
    """``config/chat.yaml`` (absent: no rooms); problems as file:line."""
    shown = yamlfile.display_path(path)
    if not path.is_file():
        return Rooms(), []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Rooms(), [Problem(shown, 0, f"cannot read: {exc}")]
    doc = yamlfile.load(text, shown)
    problems = list(doc.problems)
    if doc.data is None:
        return Rooms(), problems
    if not isinstance(doc.data, dict) or set(doc.data) - {"rooms"}:
        return Rooms(), [*problems, Problem(shown, 1, "chat.yaml must be a mapping with one key, rooms:")]
    raw = doc.data.get("rooms") or []
    if not isinstance(raw, list):
        return Rooms(), [*problems, Problem(shown, doc.lines.of(("rooms",)), "rooms: must be a list")]
    rooms: dict[str, Room] = {}
    for index, item in enumerate(raw):
        try:
            room = Room.model_validate(item)
        except ValidationError as exc:
            for error in exc.errors():
                where = ("rooms", index, *error["loc"])
                field_name = ".".join(str(p) for p in error["loc"]) or "room"
                message = str(error["msg"]).removeprefix("Value error, ")
                problems.append(Problem(shown, doc.lines.of(where), f"rooms.{index}.{field_name}: {message}"))
            continue
        if room.name in rooms:
            line = doc.lines.of(("rooms", index, "name"))
            problems.append(Problem(shown, line, f"rooms.{index}.name: duplicate room '{room.name}'"))
            continue
        rooms[room.name] = room
    return Rooms(rooms), problems
