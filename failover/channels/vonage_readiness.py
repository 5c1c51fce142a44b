"""Vonage readiness, through the official SDK: the credentials work and the account has credit.

One read-only call: ``GET /account/get-balance`` (Basic auth with key:secret),
which answers ``{"value": 10.28, "autoReload": false}`` (EUR) or 401 for
credentials Vonage does not know.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import AuthenticationError, HttpRequestError

from failover.domain import readiness as r
from failover.domain.readiness import Finding

AREA = "Vonage"
DASHBOARD = "https://dashboard.nexmo.com"


def check(*, api_key: str, api_secret: str, api_base: str, timeout: float = 10.0) -> list[Finding]:
    what = "the Vonage credentials are valid (account balance)"
    options = HttpClientOptions(rest_host=urlsplit(api_base).netloc, timeout=max(1, round(timeout)), max_retries=0)
    client = Vonage(Auth(api_key=api_key, api_secret=api_secret), options)
    try:
        balance = client.account.get_balance()
    except AuthenticationError:
        return [
            r.fail(
                "vonage.credentials",
                AREA,
                what,
                "Vonage refused the key and secret (401)",
                f"the secret may have been rotated: copy VONAGE_API_KEY and VONAGE_API_SECRET from {DASHBOARD}",
            )
        ]
    except HttpRequestError as exc:
        status = getattr(exc.response, "status_code", "?")
        return [r.fail("vonage.credentials", AREA, what, f"Vonage answered HTTP {status}", "try again; see the log")]
    except requests.RequestException as exc:
        return [
            r.fail(
                "vonage.credentials",
                AREA,
                what,
                f"cannot reach Vonage: {type(exc).__name__}",
                "check outbound HTTPS and FAILOVER_VONAGE_API_BASE",
            )
        ]
    found = [r.ok("vonage.credentials", AREA, what, f"key {api_key[:4]}… accepted")]
    detail = f"{balance.value:.2f} EUR" + (", auto-reload on" if balance.auto_reload else "")
    if balance.value <= 0:
        found.append(r.fail("vonage.balance", AREA, "the Vonage account has credit", detail, f"top up at {DASHBOARD}"))
    else:
        found.append(r.ok("vonage.balance", AREA, "the Vonage account has credit", detail))
    return found
