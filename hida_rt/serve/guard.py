"""Who may call the service and how much: the request line and headers checked before any body byte is read,
then the body read whole, under a deadline, before the request may take a queue slot.

One pure ASGI middleware (so it sees HTTP and WebSocket alike, on every
route, and can refuse before FastAPI reads a body): Host header (a service
bound to loopback answers only loopback names, against DNS rebinding),
Origin (no foreign web page may post to it or open its stream unless
--cors-origin names it), the API key (Bearer, compared in constant time),
the header count, the declared body size and type; then the body itself,
read in full before the request takes a queue slot, within a deadline and
at a minimum rate (a stalled upload is answered 408 and holds nothing); and
admission: at most max_queue inference requests at once, at most a
client_share of them from one client address (the same for live streams).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import (
    BadRequest,
    Forbidden,
    HeadersTooLarge,
    PayloadTooLarge,
    RequestTimeout,
    ServiceError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from .metrics import route_label
from .settings import BODY_GRACE_S, Settings, is_loopback_name

# Open even with an API key: health checks, and the static page that asks for the key.
PUBLIC_PATHS = frozenset({"/healthz", "/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/", "/docs-assets/")  # files of the page and of the API pages: no secrets
SKETCH_PATH, STREAM_PATH = "/v1/sketch", "/v1/stream"
# Browsers cannot set headers on a WebSocket: the page offers its key as this subprotocol (base64url).
WS_PROTOCOL, WS_KEY_PREFIX = "hida.v1", "bearer."


def ws_key_protocol(key: str) -> str:
    return WS_KEY_PREFIX + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _key_from_protocols(protocols) -> str | None:
    for p in protocols or ():
        if p.startswith(WS_KEY_PREFIX):
            data = p[len(WS_KEY_PREFIX):]
            try:
                return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return None
    return None


def takes_queue_slot(method: str, path: str) -> bool:
    """Requests that run the model: POST /v1/sketch and the Open Inference Protocol's POST .../infer."""
    return method == "POST" and (path == SKETCH_PATH or (path.startswith("/v2/") and path.endswith("/infer")))


def client_of(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class Admission:
    """At most `limit` holders at once, at most `per_client` of them from one client address."""

    def __init__(self, limit: int, per_client: int, what: str, on_change: Callable[[int], None] | None = None):
        self.limit, self.per_client, self.what = limit, per_client, what
        self.total = 0
        self._by_client: dict[str, int] = {}
        self._on_change = on_change

    def enter(self, client: str, retry_after: float = 1.0) -> None:
        if self.total >= self.limit:
            raise Unavailable(f"overloaded: {self.total} {self.what} in progress; try again later", retry_after)
        mine = self._by_client.get(client, 0)
        if mine >= self.per_client:
            raise Unavailable(f"this client already has {mine} {self.what} in progress, its share of "
                              f"{self.limit}; wait for them to finish", retry_after)
        self._by_client[client] = mine + 1
        self.total += 1
        if self._on_change:
            self._on_change(self.total)

    def leave(self, client: str) -> None:
        n = self._by_client.get(client, 0) - 1
        if n > 0:
            self._by_client[client] = n
        else:
            self._by_client.pop(client, None)
        self.total -= 1
        if self._on_change:
            self._on_change(self.total)


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings, requests: Admission, streams: Admission,
                 on_reject: Callable[[str], None] | None = None, retry_after: Callable[[], float] = lambda: 1.0):
        self.app = app
        self.settings = settings
        self.requests, self.streams = requests, streams
        self._on_reject = on_reject
        self._retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path, client = scope["path"], client_of(scope)
        admission = None
        try:
            headers = Headers(scope=scope)
            self._check_host(headers)
            self._check_origin(scope, headers)
            if self.settings.api_key and path not in PUBLIC_PATHS and not path.startswith(PUBLIC_PREFIXES):
                self._check_key(scope, headers)
            if len(scope.get("headers", ())) > self.settings.max_headers:
                raise HeadersTooLarge(f"{len(scope['headers'])} header fields, over the limit of "
                                      f"{self.settings.max_headers}")
            if kind == "http":
                self._check_body(scope, headers)
                if takes_queue_slot(scope["method"], path):
                    admission = self.requests
                if has_body(headers):
                    body = await self._read_body(receive, headers)
                    if body is None:  # nobody to read the answer; it is counted (metrics) as a 400
                        raise BadRequest("the client closed the connection before its body arrived")
                    receive = replay(body, receive)
            elif path == STREAM_PATH:
                admission = self.streams
            if admission is not None:
                admission.enter(client, self._retry_after())
        except ServiceError as e:
            if self._on_reject:
                self._on_reject(type(e).__name__)
            await deny(scope, receive, send, e)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            if admission is not None:
                admission.leave(client)

    async def _read_body(self, receive: Receive, headers: Headers) -> bytes | None:
        """The whole body, before the request may take a queue slot: within body_timeout_s of its headers,
        and (after BODY_GRACE_S) at min_body_rate bytes/s at least; None if the client disconnected.
        A slow or stalled upload is answered 408 and holds no slot while it trickles in."""
        s = self.settings
        limit, chunks, seen = s.max_body_bytes, [], 0
        start = time.monotonic()
        deadline = start + s.body_timeout_s
        declared = headers.get("content-length")
        while True:
            # The next bytes must come before the body falls behind the minimum rate, or the deadline.
            due = min(deadline, start + BODY_GRACE_S + seen / s.min_body_rate)
            try:
                async with asyncio.timeout(max(0.0, due - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                waited = time.monotonic() - start
                of = f" of {int(declared):,}" if declared and declared.isdigit() else ""
                why = (f"within {s.body_timeout_s:g} s" if due >= deadline else
                       f"at {s.min_body_rate // 1024:,} KiB/s or more")
                raise RequestTimeout(f"the request body did not arrive {why}: {seen:,}{of} bytes in {waited:.1f} s",
                                     headers={"Connection": "close"}) from None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                raise PayloadTooLarge(f"the request body is over the limit of {limit:,} bytes",
                                      headers={"Connection": "close"})
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check_host(self, headers: Headers) -> None:
        if self.settings.local_only and not is_loopback_name(headers.get("host", "")):
            raise BadRequest("this service is bound to loopback and answers only Host: 127.0.0.1, localhost or [::1]")

    def _check_origin(self, scope: Scope, headers: Headers) -> None:
        origin = headers.get("origin")
        if origin is None or (scope["type"] == "http" and scope["method"] in ("GET", "HEAD", "OPTIONS")):
            return  # not a browser, or a read (CORS decides whether the page may see it)
        allowed = self.settings.cors_origins
        if "*" in allowed or origin in allowed or urlsplit(origin).netloc == headers.get("host"):
            return
        raise Forbidden(f"requests from the web page at {origin} are not allowed (see --cors-origin)")

    def _check_key(self, scope: Scope, headers: Headers) -> None:
        auth = headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        key = given.strip() if scheme.lower() == "bearer" else None
        if key is None and scope["type"] == "websocket":
            key = _key_from_protocols(scope.get("subprotocols"))
        # compare_digest: the time taken does not tell how much of the key was right.
        if key is None or not hmac.compare_digest(key.encode(), self.settings.api_key.encode()):
            raise Unauthorized()

    def _check_body(self, scope: Scope, headers: Headers) -> None:
        length = headers.get("content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                raise BadRequest("Content-Length is not a number") from None
            if n > self.settings.max_body_bytes:
                raise PayloadTooLarge(f"the request body of {n:,} bytes is over the limit of "
                                      f"{self.settings.max_body_bytes:,}")
        if scope["path"] == SKETCH_PATH and scope["method"] == "POST":
            ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if ctype != "multipart/form-data":
                raise UnsupportedMediaType(f"POST {SKETCH_PATH} takes multipart/form-data (a file field 'photo', "
                                           f"optionally 'depth'), not {ctype or 'a body without Content-Type'}")


def has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and length.strip() not in ("", "0"))


def replay(body: bytes, receive: Receive) -> Receive:
    """receive for the app: the body already read, in one message, then the connection's own messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed():
        return pending.pop() if pending else await receive()

    return replayed


async def deny(scope: Scope, receive: Receive, send: Send, e: ServiceError) -> None:
    """Answer an error before the app ran: JSON for HTTP; for a WebSocket, an HTTP denial where the
    server supports one, else a close (policy violation, or try again later for 503)."""
    body = json.dumps({"error": str(e)}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in e.headers.items()]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": e.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    message = await receive()  # websocket.connect
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": e.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1013 if e.status == 503 else 1008, "reason": str(e)[:120]})


class MetricsMiddleware:
    """Count and time every HTTP answer by route template, method and status (errors from Guard too)."""

    def __init__(self, app: ASGIApp, metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        t0 = time.perf_counter()

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            labels = (route_label(scope["path"]), scope["method"], str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - t0)
