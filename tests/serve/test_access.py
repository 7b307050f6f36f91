"""Who may call: open on loopback; any other bind needs the API key (tested on 127.0.0.2, still loopback)."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys

import httpx
import pytest

from hida_rt.serve.guard import ws_key_protocol

WRONG_KEY = "wrong-key-0123456789abcdef"
TIMEOUT = httpx.Timeout(60.0)


def test_binding_beyond_loopback_without_a_key_is_refused(spread_ckpt):
    done = subprocess.run([sys.executable, "-m", "hida_rt.serve", "--weights", str(spread_ckpt), "--host", "127.0.0.2",
                           "--port", "0"], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "hida_rt.serve: error: --host 127.0.0.2 makes the service reachable from other machines: give an API key "
        "(--api-key or HIDA_API_KEY), or bind 127.0.0.1"]


def bearer(key):
    return {"authorization": f"Bearer {key}"}


def test_every_route_but_healthz_and_the_page_needs_the_key(keyed, sample_pair):
    assert keyed.url.startswith("http://127.0.0.2:")
    url = keyed.url
    health = httpx.get(f"{url}/healthz", timeout=TIMEOUT)
    assert health.status_code == 200 and health.json()["api_key_required"] is True
    page = httpx.get(f"{url}/", timeout=TIMEOUT)  # static; it asks for the key
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    files = {"photo": sample_pair[0].read_bytes(), "depth": sample_pair[1].read_bytes()}
    for method, path, kw in (("GET", "/metrics", {}), ("GET", "/openapi.json", {}), ("GET", "/docs", {}),
                             ("POST", "/v1/sketch", {"files": files})):
        for headers in ({}, bearer(WRONG_KEY), {"authorization": f"Basic {keyed.api_key}"},
                        {"authorization": keyed.api_key}):
            r = httpx.request(method, f"{url}{path}", headers=headers, timeout=TIMEOUT, **kw)
            assert r.status_code == 401, (path, headers, r.text)
            assert r.headers["www-authenticate"] == "Bearer" and "API key" in r.json()["error"]
        r = httpx.request(method, f"{url}{path}", headers=bearer(keyed.api_key), timeout=TIMEOUT, **kw)
        assert r.status_code == 200, (path, r.text)
    assert r.headers["content-type"] == "image/png"


def test_the_stream_needs_the_key_too(keyed):
    websockets = pytest.importorskip("websockets")
    from websockets.asyncio.client import connect

    ws_url = keyed.url.replace("http://", "ws://") + "/v1/stream"

    async def attempt(**kw):
        async with connect(ws_url, open_timeout=30, **kw) as ws:
            return await asyncio.wait_for(ws.recv(), 30)

    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        asyncio.run(attempt())
    assert refused.value.response.status_code == 401
    with pytest.raises(websockets.exceptions.InvalidStatus):
        asyncio.run(attempt(subprotocols=["hida.v1", ws_key_protocol(WRONG_KEY)]))
    # A browser cannot set headers on a WebSocket: the page offers the key as a subprotocol.
    expected = "hello" if importlib.util.find_spec("mediapipe") else "error"  # the error: no face extra
    for kw in ({"subprotocols": ["hida.v1", ws_key_protocol(keyed.api_key)]}, {"additional_headers": bearer(keyed.api_key)}):
        assert expected in json.loads(asyncio.run(attempt(**kw)))


def test_cors_only_for_the_named_origin(keyed, server):
    def preflight(url, origin):
        return httpx.options(f"{url}/v1/sketch", timeout=TIMEOUT, headers={
            "origin": origin, "access-control-request-method": "POST",
            "access-control-request-headers": "authorization"})

    ok = preflight(keyed.url, keyed.cors_origin)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == keyed.cors_origin
    assert "access-control-allow-origin" not in preflight(keyed.url, "http://evil.example").headers
    # The loopback server names no origin: no CORS at all.
    for origin in (keyed.cors_origin, "http://evil.example"):
        r = preflight(server.url, origin)
        assert "access-control-allow-origin" not in r.headers
        r = httpx.get(f"{server.url}/healthz", headers={"origin": origin}, timeout=TIMEOUT)
        assert "access-control-allow-origin" not in r.headers
