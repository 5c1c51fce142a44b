"""Independence from Microsoft, checked through DNS (dnspython) and TLS.

The backup mail must not travel through Microsoft: the sending domain's MX
and SPF must not point at Exchange Online. The public URL (console, webhooks,
status page) must not be served from Azure: no CNAME to a front door or App
Service, no Azure DNS name servers. Its certificate must be valid and not
expire within 14 days. The rules live in failover/domain/readiness.py.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import urlsplit

import dns.exception
import dns.name
import dns.resolver

from failover.domain import readiness as r
from failover.domain.readiness import Finding
from failover.domain.statuspage import DirectoryTarget, S3Target

AREA = "Independence"
CERT_WARN = dt.timedelta(days=14)


def resolver(nameservers: str = "", *, timeout: float = 3.0) -> dns.resolver.Resolver:
    """The system's resolver, or the name servers given as ``host[:port],…`` (FAILOVER_DNS_NAMESERVERS)."""
    servers = [part.strip() for part in nameservers.split(",") if part.strip()]
    if not servers:
        res = dns.resolver.Resolver()
    else:
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = []
        for server in servers:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            res.nameservers.append(host or server)
            if port:
                res.port = int(port)
    res.timeout = res.lifetime = timeout
    return res


def _answers(res: dns.resolver.Resolver, name: str, kind: str) -> list[str]:
    try:
        answer = res.resolve(name, kind)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    if kind == "TXT":
        return [b"".join(rdata.strings).decode(errors="replace") for rdata in answer]  # type: ignore[attr-defined]
    if kind == "MX":
        return [rdata.exchange.to_text(omit_final_dot=True) for rdata in answer]  # type: ignore[attr-defined]
    return [rdata.to_text().rstrip(".") for rdata in answer]


def mail_domain(res: dns.resolver.Resolver, domain: str) -> list[Finding]:
    """The sending domain's MX and SPF: not Exchange Online, or replies and bounces die with the outage."""
    findings = []
    what = f"the sending domain {domain} does not receive mail through Microsoft (MX)"
    try:
        mx = _answers(res, domain, "MX")
        txt = _answers(res, domain, "TXT")
    except dns.exception.DNSException as exc:
        return [
            r.fail(
                "independence.mx",
                AREA,
                what,
                f"DNS did not answer: {type(exc).__name__}",
                "check the name servers (FAILOVER_DNS_NAMESERVERS) and that the domain exists",
            )
        ]
    microsoft_mx = [host for host in mx if r.is_microsoft_mail_host(host)]
    if microsoft_mx:
        findings.append(
            r.fail(
                "independence.mx",
                AREA,
                what,
                f"MX points at Microsoft: {', '.join(microsoft_mx)}",
                "send backup mail from a domain (or subdomain) whose mail is not hosted in Microsoft 365, "
                "and set SENDGRID_FROM to it",
            )
        )
    else:
        findings.append(r.ok("independence.mx", AREA, what, f"MX: {', '.join(mx) or 'none'}"))
    what = f"the sending domain's SPF does not rely on Microsoft ({domain})"
    spf = [t for t in txt if t.lower().startswith("v=spf1")]
    includes = r.spf_microsoft_includes(spf)
    if includes:
        findings.append(
            r.fail(
                "independence.spf",
                AREA,
                what,
                f"SPF includes {', '.join(sorted(set(includes)))}: the domain is a Microsoft 365 mail domain",
                "use a sending domain of its own for the backup mail, authenticated in SendGrid",
            )
        )
    elif not spf:
        findings.append(
            r.warn(
                "independence.spf",
                AREA,
                what,
                "no SPF record",
                "publish one including SendGrid (include:sendgrid.net) so backup mail is not junked",
            )
        )
    else:
        findings.append(r.ok("independence.spf", AREA, what, spf[0][:120]))
    return findings


def public_host(res: dns.resolver.Resolver, url: str, *, check: str = "independence.public_url") -> Finding:
    """FAILOVER_PUBLIC_URL (or a publish target) is not served from Azure: its CNAME chain and name servers."""
    host = urlsplit(url).hostname or ""
    what = f"{url} is not served from Microsoft (CNAME, name servers)"
    if not host or _is_ip(host) or host == "localhost":
        return r.skipped(check, AREA, what, f"{host or url} is not a DNS name", "set FAILOVER_PUBLIC_URL")
    chain: list[str] = []
    nameservers: list[str] = []
    try:
        name = host
        for _ in range(8):  # a CNAME chain, each hop
            targets = _answers(res, name, "CNAME")
            if not targets:
                break
            name = targets[0]
            chain.append(name)
        zone = dns.resolver.zone_for_name(host, resolver=res)
        nameservers = _answers(res, zone.to_text(omit_final_dot=True), "NS")
    except dns.exception.DNSException as exc:
        return r.fail(
            check, AREA, what, f"DNS did not answer: {type(exc).__name__}", "check the name and the name servers"
        )
    azure = r.microsoft_web_hosts([*chain, *nameservers])
    if azure:
        return r.fail(
            check,
            AREA,
            what,
            f"served through Microsoft: {', '.join(azure)}",
            "host the failover service and its DNS outside Microsoft (not Azure Front Door, App Service or Azure DNS)",
        )
    detail = f"CNAME {' -> '.join(chain)}; " if chain else ""
    return r.ok(check, AREA, what, detail + f"name servers: {', '.join(nameservers) or 'none found'}")


def publish_targets(res: dns.resolver.Resolver, targets: Sequence[S3Target | DirectoryTarget]) -> list[Finding]:
    """Each status-page publish target (config/status.yaml) is off this host and not served from Microsoft.

    A directory is whatever serves it (our own disk, a share another web server reads); an S3 target on
    Amazon is independent; an S3-compatible endpoint gets the public URL's DNS check on its host."""
    check = "independence.publish_target"
    if not targets:
        return [
            r.warn(
                check,
                AREA,
                "the status page is published somewhere besides this host",
                "no publish target: the status page lives only on this host",
                "add a publish target (S3, or a directory another web server serves) to config/status.yaml",
            )
        ]
    found: list[Finding] = []
    for number, target in enumerate(targets, start=1):
        cid = check if len(targets) == 1 else f"{check}.{number}"
        what = f"the status page's publish target {target.label} is not served from Microsoft"
        if isinstance(target, DirectoryTarget):
            found.append(r.ok(cid, AREA, what, f"a directory ({target.path}): as independent as what serves it"))
        elif not target.endpoint_url:
            found.append(r.ok(cid, AREA, what, f"Amazon S3 bucket {target.bucket}"))
        else:
            finding = public_host(res, target.endpoint_url, check=cid)
            fix = "give the S3 target an endpoint_url with a DNS name" if finding.result == r.Result.SKIPPED else None
            found.append(replace(finding, what=f"{what} ({finding.what})", fix=fix or finding.fix))
    return found


def certificate(url: str, *, now: dt.datetime, timeout: float = 10.0) -> Finding:
    """The public URL's TLS certificate: valid for its name and not expiring within 14 days."""
    parts = urlsplit(url)
    what = f"the TLS certificate of {parts.netloc} is valid for 14 days or more"
    check = "independence.certificate"
    if parts.scheme != "https" or not parts.hostname:
        return r.skipped(
            check,
            AREA,
            what,
            f"{url} is not https",
            "serve FAILOVER_PUBLIC_URL over https (Twilio and SendGrid post contact data to it)",
        )
    context = ssl.create_default_context(cafile=os.environ.get("REQUESTS_CA_BUNDLE") or None)
    try:
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
                cert = tls.getpeercert()
    except ssl.SSLCertVerificationError as exc:
        return r.fail(
            check, AREA, what, f"not valid: {exc.verify_message}", "renew or replace the certificate (ACME, your CA)"
        )
    except (OSError, ssl.SSLError) as exc:
        return r.fail(check, AREA, what, f"could not connect: {type(exc).__name__}", "is the service reachable?")
    not_after = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), dt.UTC)
    result, text = r.expiry(not_after, now=now, warn_within=CERT_WARN)
    fix = "renew the certificate (or check that automatic renewal runs)" if result != r.Result.OK else ""
    return r.Finding(check, AREA, what, result, text, fix)


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
