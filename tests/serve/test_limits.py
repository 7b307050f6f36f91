"""Hostile clients on loopback: idle sockets, huge or trickled headers, stalled uploads, idle streams.

Each attack runs against the limits server (conftest.LIMIT_OPTIONS: at most 8 connections per address, 24 in
all, idle 1 s, head 2 s, body 2 s, stream idle 2 s, queue 4) from its own 127.0.0.x address, while a client
on another address gets /healthz within a second and a sketch. Every refusal is one JSON line.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import select
import socket
import time

import httpx
import pytest

from .conftest import LIMIT_OPTIONS

ONE_SECOND = httpx.Timeout(1.0)
SKETCH_TIMEOUT = httpx.Timeout(60.0)
PER_CLIENT = int(LIMIT_OPTIONS[LIMIT_OPTIONS.index("--max-connections-per-client") + 1])
TOTAL = int(LIMIT_OPTIONS[LIMIT_OPTIONS.index("--max-connections") + 1])


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def raw(server, address: str) -> socket.socket:
    """A TCP connection to the server from a loopback source address (a client of its own)."""
    s = socket.create_connection(("127.0.0.1", port_of(server)), timeout=10, source_address=(address, 0))
    s.settimeout(10)
    return s


def read_response(s: socket.socket) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one HTTP/1.1 response read until the server closes (or it is complete)."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:])
            headers = {k.lower(): v for k, v in headers.items()}
            if len(body) >= int(headers.get("content-length", 1 << 30)):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), data[:200]
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def json_error(status: int, headers: dict, body: bytes) -> str:
    assert headers["content-type"] == "application/json", (status, headers, body)
    obj = json.loads(body)
    assert list(obj) == ["error"] and "\n" not in obj["error"] and b"\n" not in body
    return obj["error"]


def closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


class Bystander:
    """A well-behaved client on its own address: /healthz within a second, and a sketch."""

    def __init__(self, server, address: str, files: dict):
        self.client = httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address=address))
        self.files = files

    def check(self) -> None:
        t0 = time.monotonic()
        r = self.client.get("/healthz", timeout=ONE_SECOND)
        assert r.status_code == 200 and time.monotonic() - t0 < 1.0, r.text
        r = self.client.post("/v1/sketch", files=self.files, timeout=SKETCH_TIMEOUT)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text

    def close(self):
        self.client.close()


@pytest.fixture
def bystander(limited, sample_pair):
    files = {"photo": sample_pair[0].read_bytes(), "depth": sample_pair[1].read_bytes()}
    b = Bystander(limited, "127.0.0.9", files)
    yield b
    b.close()


def test_idle_sockets_from_one_address_cannot_lock_out_another(limited, bystander):
    rss0 = limited.rss_mb()
    held = []
    try:
        for _ in range(3 * PER_CLIENT):  # three times this address's cap, none of them sending a byte
            held.append(raw(limited, "127.0.0.3"))
        time.sleep(0.2)
        # Answered at once: those over the cap (the admitted ones wait, idle, until --idle-timeout, 1 s).
        refused, _, _ = select.select(held, [], [], 0)
        assert len(refused) == 2 * PER_CLIENT, "one address got more connections than its cap"
        for s in refused:
            status, headers, body = read_response(s)
            assert status == 503 and headers["retry-after"] == "1"
            assert "its limit of 8" in json_error(status, headers, body)
        bystander.check()
        time.sleep(1.5)
        idle = [s for s in held if s not in refused]
        assert len(idle) == PER_CLIENT and all(closed_by_server(s) for s in idle)
    finally:
        for s in held:
            s.close()
    # The total cap: three full addresses reach it; the next connection anywhere is told so, in JSON.
    full = [raw(limited, f"127.0.0.{10 + i // PER_CLIENT}") for i in range(TOTAL)]
    try:
        time.sleep(0.2)
        extra = raw(limited, "127.0.0.20")
        status, headers, body = read_response(extra)
        assert status == 503 and "connections open, the limit" in json_error(status, headers, body)
        extra.close()
    finally:
        for s in full:
            s.close()
    time.sleep(0.2)
    bystander.check()
    assert limited.rss_mb() - rss0 < 100


def test_huge_headers_are_refused_431_in_json_without_growing_memory(limited, bystander):
    rss0 = limited.rss_mb()

    def big_header(i):
        s = raw(limited, f"127.0.0.{30 + i}")
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (2 * 2**20) + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole header was sent: the answer is still there to read
        try:
            return read_response(s)
        finally:
            s.close()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(big_header, range(4)))
        bystander.check()
    for status, headers, body in answers:
        assert status == 431 and "over the limit of 16,384 bytes" in json_error(status, headers, body)
    # Too many small header fields: the same status, from the app's side.
    many = {f"x-h{i}": "1" for i in range(60)}
    r = httpx.get(f"{limited.url}/healthz", headers=many, timeout=ONE_SECOND)
    assert r.status_code == 431 and "over the limit of 40" in r.json()["error"]
    # What the HTTP parser refuses is JSON too.
    s = raw(limited, "127.0.0.35")
    s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    status, headers, body = read_response(s)
    s.close()
    assert status == 400 and json_error(status, headers, body).startswith("invalid HTTP request")
    assert limited.rss_mb() - rss0 < 50  # the server never holds a header past 16 KiB


def test_a_trickled_request_head_is_cut_off_at_the_header_timeout(limited, bystander):
    s = raw(limited, "127.0.0.40")
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 5:  # one header line every 0.3 s keeps resetting any idle timer
            s.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.3)
            if time.monotonic() - t0 > 0.6:
                bystander.check()
                break
        while time.monotonic() - t0 < 5:
            s.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.3)
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, headers, body = read_response(s)
    s.close()
    assert status == 408 and "did not arrive within 2 s" in json_error(status, headers, body)
    assert time.monotonic() - t0 < 4


def in_flight(server) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=ONE_SECOND).text
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith("hida_http_in_flight_requests ")))


def test_stalled_uploads_hold_no_queue_slot_and_are_answered_408_at_the_deadline(limited, bystander):
    # Under the old rules 2 addresses x 2 stalled uploads filled the 4-slot queue: everyone else got 503.
    stalled = []
    for address in ("127.0.0.50", "127.0.0.51"):
        for _ in range(3):
            s = raw(limited, address)
            s.sendall(b"POST /v1/sketch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                      b"boundary=xyz\r\nContent-Length: 1000000\r\n\r\n" + b"-" * 100)
            stalled.append(s)
    t0 = time.monotonic()
    time.sleep(0.3)
    assert in_flight(limited) == 0  # waiting for their bodies, not in the queue
    bystander.check()
    for s in stalled:
        status, headers, body = read_response(s)
        assert status == 408 and headers["connection"] == "close", (status, body)
        assert "did not arrive within 2 s: 100 of 1,000,000 bytes" in json_error(status, headers, body)
        assert closed_by_server(s)
        s.close()
    assert time.monotonic() - t0 < 4


def test_idle_streams_are_closed_and_free_their_slots(limited):
    pytest.importorskip("mediapipe", reason="the live stream needs the face extra (MediaPipe 0.10.21)")
    websockets = pytest.importorskip("websockets")
    from websockets.asyncio.client import connect

    url = limited.url.replace("http://", "ws://") + "/v1/stream?api_key=query-secret-0123456789"

    async def idle_stream(address, opened: asyncio.Event):
        # The client answers pings (the websockets library does) but sends nothing.
        async with connect(url, open_timeout=30, ping_interval=0.5, local_addr=(address, 0)) as ws:
            hello = json.loads(await ws.recv())
            assert "hello" in hello
            opened.set()
            t0 = time.monotonic()
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message == {"error": "no frame for 2 s: the stream is closed"}
            with pytest.raises(websockets.ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1001
            return time.monotonic() - t0

    async def main():
        # --max-streams 2: two idle streams fill it ...
        opened = [asyncio.Event() for _ in range(2)]
        first = [asyncio.create_task(idle_stream(f"127.0.0.{60 + i}", opened[i])) for i in range(2)]
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 30)  # both hold their slots
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(url, open_timeout=30, local_addr=("127.0.0.62", 0)):
                pass
        assert refused.value.response.status_code == 503
        assert b"overloaded" in refused.value.response.body
        waited = await asyncio.gather(*first)
        assert all(w < 4 for w in waited), waited
        # ... and once they are closed, a new stream gets a slot.
        async with connect(url, open_timeout=30, local_addr=("127.0.0.62", 0)) as ws:
            assert "hello" in json.loads(await ws.recv())

    asyncio.run(main())
    # uvicorn logs each handshake at info: the path without its query string (where keys get put).
    time.sleep(0.2)
    assert "WebSocket /v1/stream?[query hidden]" in limited.output
    assert "query-secret" not in limited.output
