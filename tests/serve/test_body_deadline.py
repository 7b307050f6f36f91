"""The body deadline and minimum rate of guard.Guard, in process: a scripted client trickles a body into the
ASGI middleware and the app behind it records whether it ran (and so took a queue slot)."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed")

from hida_rt.serve import guard  # noqa: E402
from hida_rt.serve.guard import Admission, Guard  # noqa: E402
from hida_rt.serve.settings import Settings  # noqa: E402


def run(settings: Settings, chunks, *, gap_s: float, length: int | None = None, complete: bool = True):
    """POST /v1/sketch with `chunks` sent gap_s apart (then, unless complete, a stall) -> (status, error or None, whether the app ran,
    the queue's total while the app ran, seconds taken)."""
    ran, seen_total = [], []
    requests = Admission(settings.max_queue, settings.per_client_requests, "sketch requests")

    async def app(scope, receive, send):
        message = await receive()
        ran.append(message["body"])
        seen_total.append(requests.total)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"multipart/form-data; boundary=x")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    else:
        headers.append((b"transfer-encoding", b"chunked"))
    scope = {"type": "http", "method": "POST", "path": "/v1/sketch", "headers": headers, "client": ("127.0.0.5", 1)}
    pending = list(chunks)
    sent = []

    async def receive():
        if not pending:
            await asyncio.sleep(3600)  # a client that stalls: nothing more ever comes
        await asyncio.sleep(gap_s)
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending) or not complete}

    async def send(message):
        sent.append(message)

    middleware = Guard(app, settings, requests, Admission(1, 1, "live streams"))
    t0 = time.monotonic()
    asyncio.run(asyncio.wait_for(middleware(scope, receive, send), 30))
    status = sent[0]["status"]
    error = json.loads(sent[1]["body"])["error"] if status != 200 else None
    return status, error, bool(ran), seen_total, time.monotonic() - t0


def test_a_body_that_arrives_in_time_reaches_the_app_whole_and_only_then_takes_its_slot():
    status, error, ran, totals, _ = run(Settings(), [b"a" * 1000, b"b" * 1000, b"c"], gap_s=0.01, length=2001)
    assert (status, error, ran, totals) == (200, None, True, [1])


def test_a_stalled_body_is_408_at_the_deadline_and_never_reaches_the_app(monkeypatch):
    monkeypatch.setattr(guard, "BODY_GRACE_S", 10.0)
    status, error, ran, _, took = run(Settings(body_timeout_s=0.5), [b"a" * 100], gap_s=0.01, length=10_000,
                                      complete=False)
    assert (status, ran) == (408, False)
    assert error == "the request body did not arrive within 0.5 s: 100 of 10,000 bytes in 0.5 s"
    assert 0.45 < took < 2


def test_a_body_slower_than_the_minimum_rate_is_408_after_the_grace(monkeypatch):
    monkeypatch.setattr(guard, "BODY_GRACE_S", 0.3)
    # 1 KiB every 0.1 s = 10 KiB/s, against a minimum of 64 KiB/s: cut off soon after the grace, not at 30 s.
    status, error, ran, _, took = run(Settings(min_body_rate=64 * 1024), [b"a" * 1024] * 100, gap_s=0.1)
    assert (status, ran) == (408, False)
    assert error.startswith("the request body did not arrive at 64 KiB/s or more: ")
    assert took < 2


def test_a_body_over_the_limit_without_a_length_is_413_before_the_app():
    status, error, ran, _, _ = run(Settings(max_body_bytes=1500), [b"a" * 1000] * 3, gap_s=0.0)
    assert (status, ran) == (413, False) and "over the limit of 1,500 bytes" in error


def test_a_client_that_leaves_mid_body_never_reaches_the_app():
    ran, sent = [], []

    async def app(scope, receive, send):
        ran.append(True)

    messages = [{"type": "http.request", "body": b"a" * 10, "more_body": True}, {"type": "http.disconnect"}]

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/sketch", "client": ("127.0.0.5", 1),
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"multipart/form-data; boundary=x"),
                         (b"content-length", b"100")]}
    s = Settings()
    requests = Admission(s.max_queue, s.per_client_requests, "sketch requests")
    asyncio.run(Guard(app, s, requests, Admission(1, 1, "live streams"))(scope, receive, send))
    assert not ran and requests.total == 0
    assert sent[0]["status"] == 400  # dropped by the server (nobody is there); counted in the metrics as such
