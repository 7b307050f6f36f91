"""Connection-level limits, on uvicorn's own h11 and WebSocket protocols.

uvicorn with its pure-Python h11 parser already bounds the request head
(h11_max_incomplete_event_size) and closes idle keep-alive connections
(timeout_keep_alive). What it lacks is added here, in thin subclasses of its
protocol classes (no socket code of our own):

- a cap on open connections in all and per client address, checked as the
  connection is accepted (uvicorn's limit_concurrency is one global count,
  so one address could fill it);
- the idle timeout armed from the moment a connection is accepted (uvicorn
  arms it only after a first response, so a socket that never sends stays);
- a deadline for the request line and headers (a client trickling a header
  one byte at a time keeps resetting the idle timer);
- its own protocol-level errors (oversized or malformed head, the refusals
  above) answered as one JSON line with their status, like every other error.

Limits on bodies, streams and admission are ASGI-level (guard.py, stream.py).
"""
from __future__ import annotations

import asyncio
import http
import json
from dataclasses import dataclass, field

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .settings import Settings


def json_response(status: int, message: str, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response that closes the connection: {"error": message}, as the app answers."""
    body = json.dumps({"error": message}).encode()
    phrase = http.HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {phrase}", "content-type: application/json", f"content-length: {len(body)}",
             "connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class ConnectionCounter:
    """Open connections, in all and per client address; a connection is keyed by its transport so that it
    is counted once across the upgrade from HTTP to WebSocket."""

    limit: int
    per_client: int
    total: int = 0
    by_client: dict[str, int] = field(default_factory=dict)
    _open: dict[int, str] = field(default_factory=dict)
    refused: int = 0

    def admit(self, key: int, client: str) -> str | None:
        """None if admitted, else why not (one line)."""
        if self.total >= self.limit:
            self.refused += 1
            return f"overloaded: {self.total} connections open, the limit; try again later"
        mine = self.by_client.get(client, 0)
        if mine >= self.per_client:
            self.refused += 1
            return (f"this client already has {mine} connections open, its limit of {self.per_client}; "
                    "reuse them (keep-alive) or close some")
        self._open[key] = client
        self.by_client[client] = mine + 1
        self.total += 1
        return None

    def release(self, key: int) -> None:
        client = self._open.pop(key, None)
        if client is None:
            return
        self.total -= 1
        n = self.by_client[client] - 1
        if n:
            self.by_client[client] = n
        else:
            del self.by_client[client]


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the limits above. Built per server by protocol_classes()."""

    counter: ConnectionCounter
    settings: Settings

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._error: h11.RemoteProtocolError | None = None
        self._refused = False
        client = self.client[0] if self.client else "unknown"
        reason = self.counter.admit(id(transport), client)
        if reason is not None:
            self._refused = True
            transport.write(json_response(503, reason, {"retry-after": "1"}))
            transport.close()
            return
        self._record_errors()
        # Idle from the start, not only after a first response (data_received cancels it, as uvicorn does).
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
        self._arm_head_timer()

    def _record_errors(self) -> None:
        """Keep the parser's error (uvicorn's handler sees none of it) and stop the head deadline once a
        request line and its headers are in."""
        next_event = self.conn.next_event

        def recording():
            try:
                event = next_event()
            except h11.RemoteProtocolError as e:
                self._error = e
                raise
            if isinstance(event, h11.Request):
                self._cancel_head_timer()
            return event

        self.conn.next_event = recording

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.settings.header_timeout_s, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return  # a request is in, or the connection is going
        if self.conn.trailing_data[0]:  # part of a request head came: say why it is cut off
            self.transport.write(json_response(
                408, f"the request line and headers did not arrive within {self.settings.header_timeout_s:g} s"))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """The parser refused the request: JSON, with the status h11 suggests (431 for an oversized head)."""
        status = getattr(self._error, "error_status_hint", 400) or 400
        if status == 431:
            message = f"the request line and headers are over the limit of {self.settings.max_header_bytes:,} bytes"
        else:
            # h11's reason without the bytes it quotes (a client's input is not echoed back).
            detail = str(self._error).split(":", 1)[0] if self._error is not None else ""
            message = f"invalid HTTP request{' (' + detail + ')' if detail else ''}"
        self._cancel_head_timer()
        if not self.transport.is_closing():
            self.transport.write(json_response(status, message))
            self.transport.close()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._arm_head_timer()  # the next request's head gets the same deadline (a pipelined one stops it)
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if not self._refused:
            self.counter.release(id(self.transport))
        super().connection_lost(exc)


class LimitedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol; the connection it takes over stays counted until it closes."""

    counter: ConnectionCounter

    def connection_lost(self, exc: Exception | None) -> None:
        self.counter.release(id(self.transport))
        super().connection_lost(exc)


def protocol_classes(settings: Settings) -> tuple[type, type, ConnectionCounter]:
    """(http protocol class, ws protocol class, their shared counter) for one server."""
    counter = ConnectionCounter(settings.max_connections, settings.client_connection_limit)
    http_class = type("LimitedH11Protocol", (LimitedH11Protocol,), {"counter": counter, "settings": settings})
    ws_class = type("LimitedWebSocketProtocol", (LimitedWebSocketProtocol,), {"counter": counter})
    return http_class, ws_class, counter
