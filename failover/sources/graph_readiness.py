"""Graph readiness: a token through msal, the application permissions in it, the secret's end date.

An app-only token is a JWT whose ``roles`` claim lists the application
permissions an admin consented to; reading it (without verifying: we only
inspect our own token) says whether ``ServiceHealth.Read.All`` (and
``User.Read.All`` when people are synced from Entra ID) was granted.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from failover.domain import readiness as r
from failover.domain.readiness import Finding
from failover.sources.graph import GraphClient, GraphError, parse_time

AREA = "Graph"
SECRET_WARN = dt.timedelta(days=30)
PORTAL = "Entra admin center > App registrations"


def roles(token: str) -> list[str] | None:
    """The ``roles`` claim of a JWT access token; None if it is not a readable JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims: Any = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    value = claims.get("roles", []) if isinstance(claims, dict) else None
    return [str(role) for role in value] if isinstance(value, list) else None


def check(
    client: GraphClient | None,
    *,
    secret_expires: dt.date | None,
    now: dt.datetime,
    need_users: bool = False,
    secret_hint: str | None = None,
) -> list[Finding]:
    """``secret_hint`` is the secret's first three characters, which Graph shows as a credential's ``hint``."""
    what = "an app-only token is obtainable (msal)"
    if client is None:
        return [
            r.skipped(
                "graph.token",
                AREA,
                what,
                "Graph is not configured: outages are only detected by probes and signals",
                "set FAILOVER_GRAPH_TENANT_ID, _CLIENT_ID and _CLIENT_SECRET (README, Outage detection)",
            )
        ]
    try:
        token = client.token()
    except GraphError as exc:
        fix = (
            f"check the tenant, client id and secret in {PORTAL} (was the secret rotated or did it expire?)"
            if exc.failure.kind == "misconfigured"
            else "check outbound HTTPS to login.microsoftonline.com (or Entra ID itself is down)"
        )
        return [r.fail("graph.token", AREA, what, exc.failure.detail, fix), _secret(secret_expires, now)]
    findings = [r.ok("graph.token", AREA, what, "token issued")]
    granted = roles(token)
    needed = ["ServiceHealth.Read.All"] + (["User.Read.All"] if need_users else [])
    what = "application permissions granted: " + ", ".join(needed)
    if granted is None:
        findings.append(r.warn("graph.permissions", AREA, what, "the token is not a JWT", "check by hand"))
    else:
        missing = [role for role in needed if role not in granted]
        if missing:
            findings.append(
                r.fail(
                    "graph.permissions",
                    AREA,
                    what,
                    f"missing: {', '.join(missing)} (granted: {', '.join(granted) or 'none'})",
                    f"add them as application permissions in {PORTAL} > API permissions and grant admin consent",
                )
            )
        else:
            findings.append(r.ok("graph.permissions", AREA, what, "granted"))
    if secret_expires is None and granted and "Application.Read.All" in granted:
        return [*findings, _registered_secret(client, token, secret_hint, now)]
    findings.append(_secret(secret_expires, now))
    return findings


def _registered_secret(client: GraphClient, token: str, hint: str | None, now: dt.datetime) -> Finding:
    """The secret's end date from the app registration itself (needs Application.Read.All)."""
    url = f"{client.api_base}/v1.0/applications(appId='{client.client_id}')?$select=passwordCredentials"
    try:
        credentials = client.get_json(url, token, permission="Application.Read.All").get("passwordCredentials") or []
    except GraphError as exc:
        finding = _secret(None, now)
        return r.Finding(finding.check, AREA, finding.what, finding.result, exc.failure.detail, finding.fix)
    ends = [
        parse_time(c.get("endDateTime"))
        for c in credentials
        if isinstance(c, dict) and (hint is None or c.get("hint") in (None, hint))
    ]
    known = [end for end in ends if end is not None]
    # The one in use matches the hint; without a match, the one that lasts longest is the best guess.
    return _secret(max(known).date() if known else None, now, source="the app registration")


def _secret(expires: dt.date | None, now: dt.datetime, source: str = "FAILOVER_GRAPH_SECRET_EXPIRES") -> Finding:
    what = "the client secret does not expire within 30 days"
    if expires is None:
        return r.skipped(
            "graph.secret",
            AREA,
            what,
            "FAILOVER_GRAPH_SECRET_EXPIRES is not set",
            f"copy the secret's 'Expires' date from {PORTAL} > Certificates & secrets",
        )
    end = dt.datetime.combine(expires, dt.time(0, 0), dt.UTC)
    result, text = r.expiry(end, now=now, warn_within=SECRET_WARN)
    text += f" (from {source})"
    fix = f"create a new secret in {PORTAL}, set it and FAILOVER_GRAPH_SECRET_EXPIRES" if result != r.Result.OK else ""
    return r.Finding("graph.secret", AREA, what, result, text, fix)
