"""Independent probes: does Microsoft's mail edge answer SMTP, does a web endpoint answer HTTP?

Each probe returns a :class:`ProbeResult` (healthy or not, a one-line
summary, the replies as evidence) and never raises for what the far end
does: refusals, timeouts, 4xx and TLS failures are results, not errors.

The SMTP probe connects, reads the banner, EHLOs, optionally sends MAIL FROM
and RCPT TO, then RSET and QUIT. It never sends DATA, so nothing is ever
delivered. Every reply must be 2xx; "451 4.3.2 Temporary server error" and
other 4xx/5xx replies fail the probe with the reply kept as evidence.
"""

from __future__ import annotations

import smtplib
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from failover.domain.detection.config import Probe
from failover.privacy import scrub

REPLY_CHARS = 300
USER_AGENT = "failover-probe/1 (+https://github.com/failover)"


@dataclass(frozen=True)
class ProbeResult:
    healthy: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def run(probe: Probe) -> ProbeResult:
    timeout = probe.timeout.total_seconds()
    if probe.kind == "smtp":
        assert probe.host is not None  # the schema requires it
        return smtp_probe(
            host=probe.host,
            port=probe.port,
            timeout=timeout,
            ehlo=probe.ehlo,
            mail_from=probe.mail_from,
            rcpt_to=probe.rcpt_to,
        )
    assert probe.url is not None
    return http_probe(url=probe.url, expect_status=probe.expect_status, timeout=timeout, method=probe.method)


def smtp_probe(
    *,
    host: str,
    port: int = 25,
    timeout: float = 20.0,
    ehlo: str | None = None,
    mail_from: str | None = None,
    rcpt_to: str | None = None,
) -> ProbeResult:
    started = time.monotonic()
    replies: list[dict[str, Any]] = []
    client = smtplib.SMTP(timeout=timeout, local_hostname=ehlo or "failover-probe.invalid")
    stage = "connect"
    failure: str | None = None

    def result(healthy: bool, summary: str) -> ProbeResult:
        details = {"target": f"{host}:{port}", "replies": replies, "ms": round((time.monotonic() - started) * 1000)}
        return ProbeResult(healthy, summary, details)

    def expect(step: str, code: int, message: bytes | str) -> str | None:
        raw = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        text = scrub(raw.replace("\n", " "), REPLY_CHARS)
        replies.append({"step": step, "code": code, "text": text})
        return None if 200 <= code < 300 else f"{step}: {code} {text}".strip()

    try:
        code, message = client.connect(host, port)
        stage = "banner"
        failure = expect("banner", code, message)
        steps: list[tuple[str, Any]] = [("EHLO", lambda: client.ehlo())]
        if mail_from:
            steps.append(("MAIL FROM", lambda: client.mail(mail_from)))
            if rcpt_to:
                steps.append(("RCPT TO", lambda: client.rcpt(rcpt_to)))
        for step, send in steps:
            if failure:
                break
            stage = step
            failure = expect(step, *send())
        stage = "RSET"
        expect("RSET", *client.rset())
        stage = "QUIT"
        expect("QUIT", *client.quit())
        if failure:
            return result(False, failure)
        return result(True, f"{host}:{port} answered {replies[0]['code']} and accepted the dialogue")
    except TimeoutError:
        return result(False, f"{stage}: no answer within {timeout:g}s")
    except ConnectionRefusedError:
        return result(False, f"{stage}: connection refused by {host}:{port}")
    except smtplib.SMTPServerDisconnected as exc:
        # smtplib reports a read timeout as a disconnection too.
        if failure:
            return result(False, failure)
        if "timed out" in str(exc):
            return result(False, f"{stage}: no answer within {timeout:g}s")
        return result(False, f"{stage}: the server closed the connection")
    except smtplib.SMTPResponseException as exc:
        expect(stage, exc.smtp_code, exc.smtp_error)
        return result(False, f"{stage}: {exc.smtp_code} {replies[-1]['text']}")
    except (OSError, smtplib.SMTPException) as exc:  # DNS failures, unreachable networks, TLS
        return result(False, f"{stage}: {type(exc).__name__}: {scrub(str(exc), REPLY_CHARS)}")
    finally:
        client.close()


def http_probe(
    *, url: str, expect_status: tuple[int, ...] = (200,), timeout: float = 15.0, method: str = "GET"
) -> ProbeResult:
    started = time.monotonic()

    def result(healthy: bool, summary: str, **extra: Any) -> ProbeResult:
        return ProbeResult(healthy, summary, {"url": url, "ms": round((time.monotonic() - started) * 1000), **extra})

    try:
        with (
            requests.Session() as session,
            session.request(
                method,
                url,
                timeout=timeout,
                allow_redirects=False,  # a 302 to the login page is OWA being alive
                stream=True,  # the status is enough; never download a body
                headers={"User-Agent": USER_AGENT},
            ) as response,
        ):
            status = response.status_code
    except requests.Timeout:
        return result(False, f"no answer within {timeout:g}s")
    except requests.exceptions.SSLError as exc:
        return result(False, f"TLS error: {str(exc)[:REPLY_CHARS]}")
    except requests.ConnectionError as exc:
        return result(False, f"connection failed: {str(exc)[:REPLY_CHARS]}")
    except requests.RequestException as exc:
        return result(False, f"{type(exc).__name__}: {str(exc)[:REPLY_CHARS]}")
    expected = ", ".join(str(code) for code in expect_status)
    if status in expect_status:
        return result(True, f"HTTP {status}", status=status)
    return result(False, f"HTTP {status} (expected {expected})", status=status)
