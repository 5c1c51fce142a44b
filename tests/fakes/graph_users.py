"""Fake Graph ``/v1.0/users/delta`` over TLS, in the wire format Microsoft documents.

A first call (``?$select=...``) pages through every user (``@odata.nextLink``
with a ``$skiptoken``) and ends with ``@odata.deltaLink`` (``$deltatoken``).
Calling that link returns only what changed since: changed users with their
id and the properties that changed, removed ones as
``{"id", "@removed": {"reason": "changed"|"deleted"}}``. ``expire_tokens()``
makes every older delta token answer 410 ``syncStateNotFound``; ``hang``
makes the endpoint never answer (a timeout); the inherited ``throttle_next``
scripts 429/503 answers with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from tests.fakes.microsoft import FakeEntra, FakeGraph
from tests.fakes.server import Request, Response

DELTA = "/v1.0/users/delta"


def user(n: int, **fields: Any) -> dict[str, Any]:
    """A user as Graph returns it for our $select (null fields included, as live answers have them)."""
    data: dict[str, Any] = {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "userPrincipalName": f"user{n:05d}@contoso.example",
        "displayName": f"User {n}",
        "mail": f"user{n:05d}@contoso.example",
        "mobilePhone": f"+1 202 555 {1000 + n % 9000:04d}" if n % 9000 < 8999 else None,
        "businessPhones": [],
        "department": "IT" if n % 5 == 0 else "Sales",
        "officeLocation": "Berlin HQ" if n % 3 == 0 else "Paris",
        "jobTitle": "Engineer" if n % 2 else "Account Manager",
        "accountEnabled": True,
        "usageLocation": "US",
        "preferredLanguage": "de-DE" if n % 3 == 0 else None,
    }
    data.update(fields)
    return data


class FakeGraphUsers(FakeGraph):
    def __init__(self, entra: FakeEntra, *, page_size: int = 100, **kw: Any) -> None:
        super().__init__(entra, page_size=page_size, **kw)
        self.users: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.changes: list[tuple[int, str, dict[str, Any] | None]] = []
        self.expired_before = 0  # delta tokens below this answer 410
        self.hang = False
        self._runs: dict[str, list[dict[str, Any]]] = {}
        self._run_ids = itertools.count(1)
        self.route("GET", DELTA, self._delta)

    # -- scripting the directory --------------------------------------------------

    def add(self, *users: dict[str, Any]) -> None:
        with self._state:
            for item in users:
                self.version += 1
                self.users[item["id"]] = dict(item)
                self.changes.append((self.version, item["id"], dict(item)))

    def change(self, object_id: str, **fields: Any) -> None:
        with self._state:
            self.version += 1
            self.users[object_id].update(fields)
            self.changes.append((self.version, object_id, {"id": object_id, **fields}))

    def delete(self, object_id: str) -> None:
        with self._state:
            self.version += 1
            del self.users[object_id]
            self.changes.append((self.version, object_id, None))

    def expire_tokens(self) -> None:
        with self._state:
            self.expired_before = self.version + 1

    def delta_calls(self) -> list[Request]:
        return self.requests("GET", DELTA)

    # -- the endpoint ----------------------------------------------------------------

    async def _delta(self, request: Request) -> Response:
        if self.hang:
            await asyncio.sleep(30)
        denied = self._authorised(request) or self._scripted()
        if denied is not None:
            return denied
        query = {k: v[-1] for k, v in request.query.items()}
        with self._state:
            if "$skiptoken" in query:
                run_id, _, offset = query["$skiptoken"].partition("-")
                items, start, version = self._runs[run_id], int(offset), int(run_id.split(".")[1])
            elif "$deltatoken" in query:
                since = int(query["$deltatoken"])
                if since < self.expired_before:
                    return Response.json(
                        410,
                        {
                            "error": {
                                "code": "syncStateNotFound",
                                "message": "The sync state is not found.",
                                "innerError": {},
                            }
                        },
                    )
                items, start, version = self._since(since), 0, self.version
            else:
                items, start, version = [dict(u) for u in self.users.values()], 0, self.version
            if start == 0:
                run_id = f"{next(self._run_ids)}.{version}"
                self._runs[run_id] = items
            page = items[start : start + self.page_size]
        payload: dict[str, Any] = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": page}
        if start + self.page_size < len(items):
            payload["@odata.nextLink"] = f"{self.url}{DELTA}?$skiptoken={run_id}-{start + self.page_size}"
        else:
            payload["@odata.deltaLink"] = f"{self.url}{DELTA}?$deltatoken={version}"
        return Response.json(200, payload)

    def _since(self, version: int) -> list[dict[str, Any]]:
        merged: dict[str, dict[str, Any] | None] = {}
        for at, object_id, fields in self.changes:
            if at <= version:
                continue
            if fields is None:
                merged[object_id] = None
            else:
                merged[object_id] = {**(merged.get(object_id) or {}), **fields}
        return [
            {"id": oid, "@removed": {"reason": "deleted"}} if fields is None else fields
            for oid, fields in merged.items()
        ]
