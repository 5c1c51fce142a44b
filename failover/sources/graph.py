"""Microsoft Graph service health: an app-only token from msal, then the issues and health overviews.

``GraphClient.snapshot()`` returns a :class:`~failover.domain.detection.signals.GraphSnapshot`
or raises :class:`GraphError` carrying a :class:`~failover.domain.detection.signals.GraphFailure`
that says whether the failure is outage evidence (``unreachable``) or ours
(``misconfigured``, ``throttled``). It never returns "all healthy" for a
poll that did not happen: during identity outages this API goes dark
exactly when it is needed.

Wire facts (PROVIDERS.md): lists page through the whole ``@odata.nextLink``
URL; 429 and 503 carry ``Retry-After`` seconds; enum values arrive camelCase
live and PascalCase in Microsoft's examples; unknown fields are ignored.
This module is the only one that knows Graph's JSON.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import msal
import msal.exceptions
import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from failover.domain.detection.signals import (
    GraphFailure,
    GraphSnapshot,
    Issue,
    canonical_classification,
    canonical_status,
)
from failover.settings import DEFAULT_GRAPH_AUTHORITY_BASE

log = logging.getLogger(__name__)

ISSUES_PATH = "/v1.0/admin/serviceAnnouncement/issues"
OVERVIEWS_PATH = "/v1.0/admin/serviceAnnouncement/healthOverviews"
DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
# National clouds have their own Graph host, and tokens are issued for that host.
NATIONAL_GRAPH_HOSTS = frozenset({"graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"})
MAX_PAGES = 50  # 5,000 issues: far beyond Graph's window; a loop guard, not a limit anyone meets
MAX_ATTEMPTS = 3
POST_CHARS = 2000
# msal answers errors as dicts; these codes mean our registration is wrong, not that Entra is down.
CONFIG_ERRORS = frozenset(
    {
        "invalid_client",
        "unauthorized_client",
        "invalid_scope",
        "invalid_request",
        "invalid_grant",
        "unsupported_grant_type",
        "invalid_resource",
    }
)


class GraphError(Exception):
    def __init__(self, failure: GraphFailure) -> None:
        super().__init__(f"{failure.kind}: {failure.detail}")
        self.failure = failure


def graph_error(kind: str, detail: str, retry_after: float | None = None) -> GraphError:
    return GraphError(GraphFailure(kind, detail[:500], retry_after))


class GraphClient:
    """One per process: msal keeps the token in its in-memory cache between polls."""

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        api_base: str,
        authority_base: str = DEFAULT_GRAPH_AUTHORITY_BASE,
        timeout: float = 15.0,
        max_retry_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.authority = f"{authority_base.rstrip('/')}/{tenant_id}"
        self.custom_authority = authority_base.rstrip("/") != DEFAULT_GRAPH_AUTHORITY_BASE
        self.client_id = client_id
        self._secret = client_secret
        self.timeout = timeout
        self.max_retry_wait = max_retry_wait
        self.sleep = sleep
        host = urlsplit(self.api_base).hostname or ""
        self.scope = f"{self.api_base}/.default" if host in NATIONAL_GRAPH_HOSTS else DEFAULT_SCOPE
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()
        if self._app is not None:
            self._app.http_client.close()

    # -- token -----------------------------------------------------------------

    def _application(self) -> msal.ConfidentialClientApplication:
        # Built lazily: the constructor already fetches the OpenID configuration, which may fail.
        if self._app is None:
            kwargs: dict[str, Any] = {}
            if self.custom_authority:
                kwargs["instance_discovery"] = False  # or msal asks login.microsoftonline.com first
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id,
                    client_credential=self._secret,
                    authority=self.authority,
                    timeout=self.timeout,
                    **kwargs,
                )
            except ValueError as exc:  # msal: OIDC discovery answered 4xx (no such tenant), or a bad authority
                raise graph_error("misconfigured", f"authority {self.authority}: {exc}") from None
            except (requests.RequestException, RuntimeError) as exc:
                raise graph_error("unreachable", f"OpenID configuration: {_describe(exc)}") from None
        return self._app

    def token(self) -> str:
        with self._lock:
            app = self._application()
            try:
                result = app.acquire_token_for_client(scopes=[self.scope])
            except requests.RequestException as exc:
                raise graph_error("unreachable", f"token endpoint: {_describe(exc)}") from None
            except msal.exceptions.MsalServiceError as exc:  # msal raises for a 5xx token answer
                raise graph_error("unreachable", f"token endpoint: {exc}") from None
            except ValueError as exc:  # a non-JSON answer from the token endpoint
                raise graph_error("unreachable", f"token endpoint: unreadable answer ({exc})") from None
        if result and "access_token" in result:
            return str(result["access_token"])
        code = str((result or {}).get("error") or "no_token")
        description = str((result or {}).get("error_description") or "").splitlines()[0:1]
        detail = f"token endpoint: {code}" + (f": {description[0]}" if description else "")
        raise graph_error("misconfigured" if code in CONFIG_ERRORS else "unreachable", detail)

    # -- service health ----------------------------------------------------------

    def snapshot(self) -> GraphSnapshot:
        """Every issue and health overview, all pages, or a GraphError."""
        token = self.token()
        counter = [0]
        issues: list[Issue] = []
        skipped = 0
        for item in self._pages(ISSUES_PATH, token, counter):
            parsed = parse_issue(item)
            if parsed is None:
                skipped += 1
            else:
                issues.append(parsed)
        overviews: dict[str, str] = {}
        for item in self._pages(OVERVIEWS_PATH, token, counter):
            service, status = item.get("service"), item.get("status")
            if isinstance(service, str) and isinstance(status, str):
                overviews[service] = canonical_status(status)
        if skipped:
            log.warning("Graph returned %d issue(s) without id, service or status; ignored", skipped)
        return GraphSnapshot(tuple(issues), overviews, counter[0])

    def _pages(self, path: str, token: str, counter: list[int]) -> Iterator[dict[str, Any]]:
        url: str | None = self.api_base + path
        for _ in range(MAX_PAGES):
            if url is None:
                return
            payload = self.get_json(url, token)
            counter[0] += 1
            items = payload.get("value")
            if not isinstance(items, list):
                raise graph_error("unreachable", f"{path}: answer has no 'value' list")
            yield from (item for item in items if isinstance(item, dict))
            next_link = payload.get("@odata.nextLink")
            url = self.same_origin(next_link) if isinstance(next_link, str) else None
        raise graph_error("unreachable", f"{path}: more than {MAX_PAGES} pages; stopped following @odata.nextLink")

    def same_origin(self, link: str) -> str:
        # The bearer token goes only where it was meant to go.
        ours, theirs = urlsplit(self.api_base), urlsplit(link)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            raise graph_error("misconfigured", f"@odata.nextLink points to another host ({theirs.netloc})")
        return link

    def get_json(
        self,
        url: str,
        token: str,
        *,
        permission: str = "ServiceHealth.Read.All",
        gone: Callable[[str], Exception] | None = None,
        attempts: int = MAX_ATTEMPTS,
        sleep: Callable[[float], None] | None = None,
    ) -> dict[str, Any]:
        """GET one Graph page as a JSON object, waiting out 429/503/504 as Graph's Retry-After asks.

        Raises GraphError (throttled, unreachable, misconfigured naming ``permission``), or ``gone(message)``
        on HTTP 410 when given (a delta link Graph no longer accepts).
        """
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        shown = urlsplit(url).path
        for attempt in range(1, attempts + 1):
            try:
                with self._http.get(url, headers=headers, timeout=self.timeout) as response:
                    status, body, retry_after = response.status_code, response.content, response.headers
            except requests.RequestException as exc:
                raise graph_error("unreachable", f"GET {shown}: {_describe(exc)}") from None
            if status == 200:
                try:
                    payload = json.loads(body)
                except ValueError:
                    raise graph_error("unreachable", f"GET {shown}: answer is not JSON") from None
                if not isinstance(payload, dict):
                    raise graph_error("unreachable", f"GET {shown}: answer is not a JSON object")
                return payload
            message = _error_message(body)
            if status == 410 and gone is not None:
                raise gone(f"GET {shown}: HTTP 410 {message}".strip())
            if status in (429, 503, 504):
                wait = _retry_after(retry_after.get("Retry-After"))
                if attempt < attempts and wait <= self.max_retry_wait:
                    log.info("Graph answered %d to GET %s; retrying in %.0fs as asked", status, shown, wait)
                    (sleep or self.sleep)(wait)
                    continue
                kind = "throttled" if status == 429 else "unreachable"
                raise graph_error(kind, f"GET {shown}: HTTP {status} {message}".strip(), wait)
            if status in (401, 403):
                raise graph_error(
                    "misconfigured",
                    f"GET {shown}: HTTP {status} {message} (is {permission} granted with admin consent?)",
                )
            raise graph_error("unreachable", f"GET {shown}: HTTP {status} {message}".strip())
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises


class _IssueWire(BaseModel):
    """The fields of a serviceHealthIssue we keep; everything else is ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1)
    service: str = Field(min_length=1)
    status: str = Field(min_length=1)
    title: str = ""
    classification: str = "advisory"
    feature: str | None = None
    impact_description: str | None = Field(None, alias="impactDescription")
    is_resolved: bool = Field(False, alias="isResolved")
    start: str | None = Field(None, alias="startDateTime")
    end: str | None = Field(None, alias="endDateTime")
    last_modified: str | None = Field(None, alias="lastModifiedDateTime")
    posts: list[dict[str, Any]] | None = None


def parse_issue(item: dict[str, Any]) -> Issue | None:
    """A Graph serviceHealthIssue as an Issue; None when it lacks what we need to judge it."""
    try:
        wire = _IssueWire.model_validate({k: v for k, v in item.items() if v is not None})
    except ValidationError:
        return None
    post_at, post = _latest_post(wire.posts or [])
    return Issue(
        id=wire.id,
        service=wire.service,
        title=wire.title,
        status=canonical_status(wire.status),
        classification=canonical_classification(wire.classification or "advisory"),
        is_resolved=wire.is_resolved,
        impact=wire.impact_description,
        feature=wire.feature,
        latest_post=post,
        latest_post_at=post_at,
        started_at=parse_time(wire.start),
        ended_at=parse_time(wire.end),
        last_modified_at=parse_time(wire.last_modified),
    )


def _latest_post(posts: list[dict[str, Any]]) -> tuple[dt.datetime | None, str | None]:
    dated = [(parse_time(p.get("createdDateTime")), p) for p in posts if isinstance(p, dict)]
    dated = [(when, p) for when, p in dated if when is not None]
    if not dated:
        return None, None
    when, post = max(dated, key=lambda pair: pair[0] or dt.datetime.min.replace(tzinfo=dt.UTC))
    description = post.get("description") or {}
    content = description.get("content") if isinstance(description, dict) else None
    if not isinstance(content, str):
        return when, None
    is_html = str(description.get("contentType", "html")).casefold() == "html"
    text = html_to_text(content) if is_html else content.strip()
    return when, text[:POST_CHARS]


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: object) -> dt.datetime | None:
    """Graph's ISO times ('2024-05-01T10:00:00Z', seven fraction digits at times) as aware UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class _Text(HTMLParser):
    BLOCKS = frozenset({"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(content: str) -> str:
    parser = _Text()
    parser.feed(content)
    parser.close()
    lines = (" ".join(line.split()) for line in html.unescape("".join(parser.parts)).splitlines())
    return "\n".join(line for line in lines if line)


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, min(float(value or 0), 3600.0)) if value else 5.0
    except ValueError:
        return 5.0


def _error_message(body: bytes) -> str:
    try:
        error = json.loads(body).get("error") or {}
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")[:300]
    except (ValueError, AttributeError):
        return ""


def _describe(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error (is the CA trusted? see REQUESTS_CA_BUNDLE)"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__
