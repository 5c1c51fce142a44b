"""A tiny authoritative DNS server over UDP on 127.0.0.1, built with dnspython's own wire code.

Zones are a plain mapping ``{"name.": [("MX", "10 host."), ("TXT", '"v=spf1 ..."')]}``;
a query gets the records of its exact name and type (NOERROR and an empty
answer otherwise, which resolvers call NoAnswer; unknown names under no zone
get NXDOMAIN). Enough for doctor's MX, TXT, CNAME, SOA and NS look-ups.
"""

from __future__ import annotations

import socket
import threading

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset


class FakeDNS:
    def __init__(self, records: dict[str, list[tuple[str, str]]] | None = None) -> None:
        self.records: dict[str, list[tuple[str, str]]] = {}
        for name, entries in (records or {}).items():
            self.set(name, entries)
        self.queries: list[tuple[str, str]] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)  # closing a socket does not wake a blocked recvfrom: poll for stop()
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="FakeDNS", daemon=True)
        self._stopped = False

    @property
    def address(self) -> str:
        """For FAILOVER_DNS_NAMESERVERS."""
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, entries: list[tuple[str, str]]) -> None:
        self.records[_key(name)] = list(entries)

    def start(self) -> FakeDNS:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped = True
        if self._thread.is_alive():
            self._thread.join(5)
        self._socket.close()

    def __enter__(self) -> FakeDNS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stopped:
            try:
                data, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue
            self._socket.sendto(self._answer(query).to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        entries = self.records.get(name)
        if entries is None and not any(name.endswith("." + zone) or name == zone for zone in self._zones()):
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        values = [value for rtype, value in entries or [] if rtype == kind]
        if values:
            response.answer.append(dns.rrset.from_text_list(question.name, 300, "IN", kind, values))
        return response

    def _zones(self) -> list[str]:
        return [name for name, entries in self.records.items() if any(rtype == "SOA" for rtype, _ in entries)]


def _key(name: str) -> str:
    return name.lower().rstrip(".") + "."


def soa(zone: str) -> tuple[str, str]:
    return ("SOA", f"ns1.{_key(zone)} hostmaster.{_key(zone)} 1 7200 900 1209600 300")
