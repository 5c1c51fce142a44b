"""Microsoft Graph users (``/users/delta``), app-only through the watcher's msal client: people for the directory.

Wire facts (PROVIDERS.md, Graph delta query docs): the first call
``GET /v1.0/users/delta?$select=...`` returns pages linked by
``@odata.nextLink`` and, on the last page, an ``@odata.deltaLink``; calling
that link later returns only users changed since, a removed or deleted user
as ``{"id": ..., "@removed": {"reason": "changed"|"deleted"}}``. Changed users
carry only the properties that changed, so the sync keeps the last full view
per Graph object id and lays each change over it. An expired delta token
answers 410 Gone (``syncStateNotFound``/``resyncRequired``): start again with
a full sync. 429/503 carry ``Retry-After``. Null and missing fields are
normal. This module is the only one that knows the users' JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from failover.domain.contacts import normalise_phone
from failover.domain.people import Mapping_, Record
from failover.sources.graph import GraphClient, GraphError, graph_error

log = logging.getLogger(__name__)

DELTA_PATH = "/v1.0/users/delta"
SELECT = (
    "id,userPrincipalName,displayName,mail,mobilePhone,businessPhones,department,officeLocation,"
    "jobTitle,accountEnabled,usageLocation,preferredLanguage"
)
MAX_PAGES = 10_000  # 1,000,000 users at Graph's page size: a loop guard
MAX_ATTEMPTS = 4
MAX_ID = 64


class DeltaExpired(Exception):
    """Graph no longer knows the delta token (410): a full sync is needed."""


@dataclass
class Delta:
    """One run of the delta query: Graph object id -> raw user (changed/new), removed ids, the next deltaLink."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    delta_link: str | None = None
    pages: int = 0
    full: bool = True


class GraphUsers:
    """Fetches users with the token of a :class:`GraphClient` (msal, app-only, ``User.Read.All``)."""

    def __init__(self, client: GraphClient, *, select_extra: tuple[str, ...] = (), sleep: Callable[[float], None]):
        self.client = client
        self.select = ",".join(dict.fromkeys([*SELECT.split(","), *select_extra]))
        self.sleep = sleep

    def fetch(self, delta_link: str | None) -> Delta:
        """All pages from ``delta_link`` (changes only) or from scratch; DeltaExpired or GraphError on failure."""
        token = self.client.token()
        result = Delta(full=delta_link is None)
        url: str | None = (
            self.client.same_origin(delta_link)
            if delta_link
            else f"{self.client.api_base}{DELTA_PATH}?$select={self.select}"
        )
        for _ in range(MAX_PAGES):
            if url is None:
                return result
            payload = self._get(url, token)
            result.pages += 1
            items = payload.get("value")
            if not isinstance(items, list):
                raise graph_error("unreachable", "users/delta: answer has no 'value' list")
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                    continue
                if "@removed" in item:
                    result.removed.add(item["id"])
                    result.users.pop(item["id"], None)
                else:
                    result.users[item["id"]] = item
                    result.removed.discard(item["id"])
            next_link, delta = payload.get("@odata.nextLink"), payload.get("@odata.deltaLink")
            if isinstance(delta, str):
                result.delta_link = self.client.same_origin(delta)
                return result
            url = self.client.same_origin(next_link) if isinstance(next_link, str) else None
        raise graph_error("unreachable", f"users/delta: more than {MAX_PAGES} pages")

    def _get(self, url: str, token: str) -> dict[str, Any]:
        return self.client.get_json(
            url, token, permission="User.Read.All", gone=DeltaExpired, attempts=MAX_ATTEMPTS, sleep=self.sleep
        )


def _first(user: dict[str, Any], names: list[str]) -> Any:
    for name in names:
        value = user.get(name)
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, str) and v.strip()), None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _extension(user: dict[str, Any], name: str | None) -> str | None:
    """A field by its Graph name, dotted for nested values (``onPremisesExtensionAttributes.extensionAttribute1``)."""
    if not name:
        return None
    value: Any = user
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _phone(raw: str | None, region: str) -> str | None:
    if raw is None:
        return None
    import phonenumbers

    try:
        parsed = phonenumbers.parse(raw, region)
        if phonenumbers.is_valid_number(parsed):
            return normalise_phone(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    except (phonenumbers.NumberParseException, ValueError):
        pass
    return None


def to_record(user: dict[str, Any], mapping: Mapping_, *, default_region: str = "US") -> Record | None:
    """A Graph user as a directory record; None when disabled or without an id. Odd phones are left out."""
    if user.get("accountEnabled") is False:
        return None
    person_id = _extension(user, mapping.id)
    if person_id is None:
        return None
    if len(person_id) > MAX_ID:  # the delivery ledger keys people by at most 64 characters
        log.warning("a Graph user's %s is longer than %d characters: left out of the roster", mapping.id, MAX_ID)
        return None
    language = _first(user, mapping.language)
    region = user.get("usageLocation") if isinstance(user.get("usageLocation"), str) else default_region
    return Record(
        id=person_id.casefold(),
        name=_extension(user, mapping.name) or person_id,
        phone=_phone(_first(user, mapping.phone), region or default_region),
        email=_extension(user, mapping.email),
        department=_extension(user, mapping.department),
        office_location=_extension(user, mapping.office_location),
        job_title=_extension(user, mapping.job_title),
        language=language.split("-")[0].casefold() if language else None,
    )


def raw_fields(mapping: Mapping_) -> tuple[str, ...]:
    """Extra ``$select`` names the mapping needs (e.g. an extension attribute for the personal address)."""
    names = [mapping.id, mapping.name, mapping.email, mapping.department, mapping.office_location, mapping.job_title]
    names += [*mapping.phone, *mapping.language]
    return tuple(dict.fromkeys(n.split(".")[0] for n in names if n))


def merge_users(known: dict[str, dict[str, Any]], delta: Delta) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Lay a delta over the last full view (object id -> user): yields (object id, user or None when removed)."""
    for object_id in delta.removed:
        yield object_id, None
    for object_id, changed in delta.users.items():
        yield object_id, {**known.get(object_id, {}), **changed}


__all__ = ["Delta", "DeltaExpired", "GraphError", "GraphUsers", "merge_users", "raw_fields", "to_record"]
