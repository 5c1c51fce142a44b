"""A tiny asyncio HTTP/1.1 server for provider fakes, run on a background thread.

Keep-alive, one socket write per response, optional TLS, a configurable
latency that does not block other requests, a cap on concurrent requests,
and a record of every request with its arrival and answer times. It is small
on purpose: the fakes must never be the bottleneck of a benchmark.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    received_at: float = 0.0  # time.time()

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


Handler = Callable[[Request], Response | Awaitable[Response]]


@dataclass
class Exchange:
    request: Request
    status: int
    answered_at: float


class FakeServer:
    """Subclass and register routes with ``self.route(method, prefix, handler)``."""

    def __init__(
        self, *, latency: float = 0.0, max_concurrent: int | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.latency = latency
        self.max_concurrent = max_concurrent
        self.ssl_context = ssl_context
        self.exchanges: list[Exchange] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0
        self._routes: list[tuple[str, str, Handler]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    # -- set-up --------------------------------------------------------------

    def route(self, method: str, prefix: str, handler: Handler) -> None:
        self._routes.append((method, prefix, handler))

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context, backlog=1024)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._shutdown())
            self._loop.close()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection (a provider outage)."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            # abort, not close: a TLS close waits for a close_notify exchange the stopping loop never finishes.
            writer.transport.abort()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        await asyncio.sleep(0)
        await self._server.wait_closed()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests(self, method: str | None = None, prefix: str = "") -> list[Request]:
        with self.lock:
            return [
                e.request
                for e in self.exchanges
                if (method is None or e.request.method == method) and e.request.path.startswith(prefix)
            ]

    def reset(self) -> None:
        with self.lock:
            self.exchanges.clear()
            self.peak_in_flight = 0

    # -- serving -------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                response = await self._dispatch(request)
                writer.write(_encode(response))  # one write per response
                await writer.drain()
                if request.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _dispatch(self, request: Request) -> Response:
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            over = self.max_concurrent is not None and self.in_flight > self.max_concurrent
        try:
            refused = self.too_many(request) if over else self.admit(request)
            if refused is not None:
                response = refused
            else:
                if self.latency:
                    await asyncio.sleep(self.latency)
                response = await self._handle(request)
        finally:
            with self.lock:
                self.in_flight -= 1
        with self.lock:
            self.exchanges.append(Exchange(request, response.status, time.time()))
        return response

    async def _handle(self, request: Request) -> Response:
        for method, prefix, handler in self._routes:
            if request.method == method and request.path.startswith(prefix):
                result = handler(request)
                if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                    result = await result
                return result  # type: ignore[return-value]
        return Response.json(404, {"message": f"no route for {request.method} {request.path}"})

    def too_many(self, request: Request) -> Response:
        return Response.json(429, {"message": "Too Many Requests"}, {"Retry-After": "1"})

    def admit(self, request: Request) -> Response | None:
        """Checks made when a request arrives, before the latency: None lets it through."""
        return None


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    parts = urlsplit(target)
    return Request(method, parts.path, parse_qs(parts.query, keep_blank_values=True), headers, body, time.time())


def _encode(response: Response) -> bytes:
    reason = HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else "Status"
    headers = {"Content-Length": str(len(response.body)), "Connection": "keep-alive", **response.headers}
    head = f"HTTP/1.1 {response.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + response.body
