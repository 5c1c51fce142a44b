"""Fake Microsoft identity platform and Graph service health, over local TLS, in the real wire formats.

``FakeEntra`` serves ``/{tenant}/v2.0/.well-known/openid-configuration`` and
the client-credentials token endpoint ``/{tenant}/oauth2/v2.0/token`` (form
POST, ``{"token_type", "expires_in", "access_token"}`` or an AADSTS error
body). ``FakeGraph`` serves ``/v1.0/admin/serviceAnnouncement/issues`` and
``/healthOverviews`` with bearer checks, 100-item pages linked by the full
``@odata.nextLink`` URL, scripted 429/503 answers with ``Retry-After``, and
issues in the recorded shape (undocumented fields included).
"""

from __future__ import annotations

import base64
import collections
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.server import FakeServer, Request, Response

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "66666666-7777-8888-9999-000000000000"
CLIENT_SECRET = "fake~client~secret"
SCOPE = "https://graph.microsoft.com/.default"
ISSUES = "/v1.0/admin/serviceAnnouncement/issues"
OVERVIEWS = "/v1.0/admin/serviceAnnouncement/healthOverviews"


def aad_error(status: int, code: str, description: str, number: int) -> Response:
    return Response.json(
        status,
        {
            "error": code,
            "error_description": f"AADSTS{number}: {description}\r\nTrace ID: {secrets.token_hex(8)}",
            "error_codes": [number],
            "timestamp": "2026-03-02 09:00:00Z",
            "trace_id": secrets.token_hex(16),
            "correlation_id": secrets.token_hex(16),
        },
    )


class FakeEntra(FakeServer):
    def __init__(self, tenant: str = TENANT, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET, **kw: Any):
        super().__init__(**kw)
        self.tenant, self.client_id, self.secret = tenant, client_id, secret
        self.tokens: set[str] = set()
        # Application permissions with admin consent: the app-only token's ``roles`` claim, as Entra issues it.
        self.roles: list[str] = ["ServiceHealth.Read.All"]
        self.down = False  # an identity outage: 503 temporarily_unavailable
        self.route("GET", f"/{tenant}/v2.0/.well-known/openid-configuration", self._openid)
        self.route("POST", f"/{tenant}/oauth2/v2.0/token", self._token)

    def _openid(self, request: Request) -> Response:
        base = f"{self.url}/{self.tenant}"
        return Response.json(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "jwks_uri": f"{self.url}/{self.tenant}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            },
        )

    def _token(self, request: Request) -> Response:
        if self.down:
            return aad_error(503, "temporarily_unavailable", "The service is temporarily unavailable.", 50196)
        form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return aad_error(400, "unsupported_grant_type", "The provided grant type is not supported.", 70003)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.secret:
            return aad_error(401, "invalid_client", "Invalid client secret provided.", 7000215)
        if form.get("scope") != SCOPE:
            return aad_error(
                400, "invalid_scope", f"The provided value for scope {form.get('scope')} is not valid.", 1002012
            )
        token = self._jwt()
        with self.lock:
            self.tokens.add(token)
        return Response.json(
            200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        )

    def _jwt(self) -> str:
        """A JWT shaped like Entra's app-only access tokens (header.claims.signature; the signature is noise)."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": "fake-key"}
        claims = {
            "aud": "https://graph.microsoft.com",
            "iss": f"https://sts.windows.net/{self.tenant}/",
            "iat": now,
            "nbf": now,
            "exp": now + 3599,
            "appid": self.client_id,
            "idtyp": "app",
            "oid": "99999999-8888-7777-6666-555555555555",
            "roles": list(self.roles),
            "tid": self.tenant,
            "ver": "1.0",
            "xms_tcdt": 1600000000,
        }

        def part(value: object) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

        return f"{part(header)}.{part(claims)}.{secrets.token_urlsafe(32)}"

    def token_requests(self) -> int:
        return len(self.requests("POST", f"/{self.tenant}/oauth2/v2.0/token"))


def issue(
    issue_id: str = "EX226574",
    *,
    service: str = "Exchange Online",
    status: str = "serviceInterruption",
    classification: str = "incident",
    title: str = "Some users may be unable to send or receive email",
    impact: str = "Users may be unable to send or receive email through Exchange Online.",
    resolved: bool = False,
    posts: int = 2,
) -> dict[str, Any]:
    """A serviceHealthIssue in the shape live responses have (extra, undocumented fields included)."""
    return {
        "startDateTime": "2026-03-02T08:41:00Z",
        "endDateTime": "2026-03-02T11:02:00Z" if resolved else None,
        "lastModifiedDateTime": "2026-03-02T09:12:31.7366667Z",
        "title": title,
        "id": issue_id,
        "impactDescription": impact,
        "classification": classification,
        "origin": "microsoft",
        "status": status,
        "service": service,
        "feature": "E-Mail and calendar access",
        "featureGroup": "E-Mail and calendar access",
        "isResolved": resolved,
        "highImpact": None,
        "details": [{"name": "NotifyInApp", "value": "True"}],
        "posts": [
            {
                "createdDateTime": f"2026-03-02T0{8 + n}:{10 + n}:00Z",
                "postType": "regular",
                "description": {
                    "contentType": "html",
                    "content": f"<p><b>Title:</b> {title}</p><p>Current status: update {n + 1}. "
                    "We&#39;re reviewing mailbox server logs.</p>",
                },
            }
            for n in range(posts)
        ],
    }


class FakeGraph(FakeServer):
    def __init__(self, entra: FakeEntra, *, page_size: int = 100, **kw: Any) -> None:
        super().__init__(**kw)
        self.entra = entra
        self.page_size = page_size
        self._state = threading.Lock()
        self.issues: list[dict[str, Any]] = []
        self.overviews: dict[str, str] = {
            "Exchange Online": "serviceOperational",
            "Microsoft Teams": "serviceOperational",
            "Microsoft 365 suite": "serviceOperational",
        }
        self.script: collections.deque[Response] = collections.deque()
        self.route("GET", ISSUES, self._issues)
        self.route("GET", OVERVIEWS, self._overviews)
        # The app registration's secrets (GET /v1.0/applications(appId='...'), needs Application.Read.All).
        self.password_credentials: list[dict[str, Any]] = []
        self.route("GET", "/v1.0/applications(appId=", self._application)

    def set_issues(self, *issues: dict[str, Any]) -> None:
        with self._state:
            self.issues = list(issues)

    def set_overview(self, service: str, status: str) -> None:
        with self._state:
            self.overviews[service] = status

    def throttle_next(self, times: int = 1, retry_after: int = 1, status: int = 429) -> None:
        code = "TooManyRequests" if status == 429 else "ServiceUnavailable"
        for _ in range(times):
            self.script.append(
                Response.json(
                    status,
                    {"error": {"code": code, "message": "Too many requests.", "innerError": {"date": "2026-03-02"}}},
                    {"Retry-After": str(retry_after)},
                )
            )

    def add_secret(self, hint: str, end: str) -> None:
        """A client secret of the app registration, as passwordCredentials lists it (never the secret)."""
        self.password_credentials.append(
            {
                "customKeyIdentifier": None,
                "displayName": "failover",
                "endDateTime": end,
                "hint": hint,
                "keyId": secrets.token_hex(16),
                "secretText": None,
                "startDateTime": "2025-01-05T10:00:00Z",
            }
        )

    def _application(self, request: Request) -> Response:
        refused = self._authorised(request)
        if refused is not None:
            return refused
        token = request.headers["authorization"].removeprefix("Bearer ")
        if "Application.Read.All" not in self.entra.roles:
            return Response.json(
                403,
                {
                    "error": {
                        "code": "Authorization_RequestDenied",
                        "message": "Insufficient privileges to complete the operation.",
                        "innerError": {"date": "2026-12-03T09:00:00", "request-id": token[-8:]},
                    }
                },
            )
        return Response.json(
            200,
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications(passwordCredentials)/$entity",
                "passwordCredentials": list(self.password_credentials),
            },
        )

    def polls(self) -> int:
        return len([r for r in self.requests("GET", ISSUES) if "$skiptoken" not in r.query])

    def _authorised(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.entra.tokens:
            return Response.json(
                401,
                {
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": "Access token is empty.",
                        "innerError": {},
                    }
                },
            )
        return None

    def _scripted(self) -> Response | None:
        with self._state:
            return self.script.popleft() if self.script else None

    def _issues(self, request: Request) -> Response:
        denied = self._authorised(request) or self._scripted()
        if denied is not None:
            return denied
        offset = int((request.query.get("$skiptoken") or ["0"])[0])
        with self._state:
            items = self.issues[offset : offset + self.page_size]
            more = offset + self.page_size < len(self.issues)
        payload: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#admin/serviceAnnouncement/issues",
            "value": items,
        }
        if more:
            payload["@odata.nextLink"] = f"{self.url}{ISSUES}?$skiptoken={offset + self.page_size}"
        return Response.json(200, payload)

    def _overviews(self, request: Request) -> Response:
        denied = self._authorised(request) or self._scripted()
        if denied is not None:
            return denied
        with self._state:
            value = [
                {"service": service, "status": status, "id": service.split()[0]}
                for service, status in self.overviews.items()
            ]
        return Response.json(
            200,
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#admin/serviceAnnouncement/healthOverviews",
                "value": value,
            },
        )
