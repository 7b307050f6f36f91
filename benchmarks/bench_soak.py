"""Soak: the sketch service under mixed valid load with slow and idle attackers alongside, for minutes.

    HIDA_BENCH_SOAK_S=600 python -m pytest benchmarks/bench_soak.py --benchmark-only \
        --bench-results benchmarks/results/serve-soak-<machine>-<date>.json

A real `python -m hida_rt.serve` with its default limits serves a random
checkpoint on 127.0.0.1. Eight well-behaved clients (127.0.0.1) run a
closed loop of mixed requests: photo + depth pairs of two sizes and
styles, and every fourth request a /healthz and a /metrics read. Beside
them, from their own loopback addresses, attackers run for the whole soak:

- idle sockets: one address keeps its whole connection share open, sending nothing (reopened when closed);
- slowloris: requests whose headers trickle in one line a second;
- stalled uploads: POST /v1/sketch with a 1 MB Content-Length, 100 bytes sent, then silence;
- oversized heads: a 2 MB header every 5 s;
- idle live streams: two WebSockets that answer pings but send no frame (needs the face extra).

Every 10 s the server's RSS is sampled, with the valid clients' throughput
and latency over that window. Rows: group "serve soak"; median ms = p50 of
the valid clients, img/s = their throughput; p99, refusals seen by valid
clients (must be none), attacker outcomes, the RSS timeline and the batch
sizes the server ran are in info. Environment: HIDA_BENCH_SOAK_S (default
600), HIDA_BENCH_SOAK_MALLOC_ARENA_MAX (passed to the server as
MALLOC_ARENA_MAX when set), HIDA_BENCH_SERVE_BACKEND (default eager).
"""
from __future__ import annotations

import asyncio
import os
import re
import statistics
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from bench_serve import BACKEND, SAMPLES, Server, load_avg, percentile  # noqa: E402
from harness import Result  # noqa: E402

SOAK_S = float(os.environ.get("HIDA_BENCH_SOAK_S", "600"))
ARENA_MAX = os.environ.get("HIDA_BENCH_SOAK_MALLOC_ARENA_MAX")
CONCURRENCY = 8
SAMPLE_S = 10.0
IDLE_ADDRESS, SLOW_ADDRESS, STALL_ADDRESS, BIG_ADDRESS, WS_ADDRESS = (f"127.0.0.{n}" for n in (101, 102, 103, 104, 105))


def rss_mb(pid: int) -> float:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def open_from(url: str, address: str):
    return await asyncio.open_connection("127.0.0.1", port_of(url), local_addr=(address, 0))


async def drain(reader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(65536), 120)
    except (ConnectionError, asyncio.TimeoutError):
        return b""


def status_of(data: bytes) -> str:
    return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "closed"


async def idle_sockets(url: str, end: float, outcomes: Counter, share: int):
    """Keep `share` + 4 connections open from one address, sending nothing; reopen each when it is closed."""
    async def one():
        while time.monotonic() < end:
            try:
                reader, writer = await open_from(url, IDLE_ADDRESS)
            except OSError:
                outcomes["idle connect failed"] += 1
                await asyncio.sleep(0.5)
                continue
            outcomes["idle " + status_of(await drain(reader))] += 1
            writer.close()
            await asyncio.sleep(0.1)
    await asyncio.gather(*(one() for _ in range(share + 4)))


async def slowloris(url: str, end: float, outcomes: Counter, n: int = 8):
    async def one():
        while time.monotonic() < end:
            reader, writer = await open_from(url, SLOW_ADDRESS)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            try:
                while time.monotonic() < end and not reader.at_eof():
                    writer.write(b"X-Slow: 1\r\n")
                    await writer.drain()
                    await asyncio.sleep(1.0)
                    if reader._buffer:  # noqa: SLF001 - the server answered: stop trickling
                        break
            except ConnectionError:
                pass
            outcomes["slowloris " + status_of(await drain(reader))] += 1
            writer.close()
    await asyncio.gather(*(one() for _ in range(n)))


async def stalled_uploads(url: str, end: float, outcomes: Counter, n: int = 8):
    async def one():
        while time.monotonic() < end:
            reader, writer = await open_from(url, STALL_ADDRESS)
            writer.write(b"POST /v1/sketch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                         b"boundary=xyz\r\nContent-Length: 1000000\r\n\r\n" + b"-" * 100)
            outcomes["stalled upload " + status_of(await drain(reader))] += 1
            writer.close()
    await asyncio.gather(*(one() for _ in range(n)))


async def big_heads(url: str, end: float, outcomes: Counter):
    while time.monotonic() < end:
        reader, writer = await open_from(url, BIG_ADDRESS)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (2 * 2**20) + b"\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            pass
        outcomes["2 MB header " + status_of(await drain(reader))] += 1
        writer.close()
        await asyncio.sleep(5.0)


async def idle_streams(url: str, end: float, outcomes: Counter):
    try:
        import mediapipe  # noqa: F401
        from websockets.asyncio.client import connect
    except ImportError:
        return

    async def one():
        while time.monotonic() < end:
            try:
                async with connect(url.replace("http://", "ws://") + "/v1/stream", open_timeout=60,
                                   local_addr=(WS_ADDRESS, 0), ping_interval=5) as ws:
                    outcomes["idle stream opened"] += 1
                    while time.monotonic() < end:
                        await asyncio.wait_for(ws.recv(), max(0.1, end - time.monotonic()))
            except asyncio.TimeoutError:
                return
            except Exception as e:  # closed by the server (idle), or refused
                outcomes[f"idle stream {type(e).__name__}"] += 1
                await asyncio.sleep(0.5)
    await asyncio.gather(*(one() for _ in range(2)))


async def valid_clients(url: str, end: float, uploads, log: list, statuses: Counter):
    """CONCURRENCY closed-loop clients; log gets (finish time, latency) per sketch."""
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(120.0),
                                 limits=httpx.Limits(max_connections=CONCURRENCY)) as c:
        async def client(k: int):
            i = k
            while time.monotonic() < end:
                files, style = uploads[i % len(uploads)]
                t0 = time.perf_counter()
                r = await c.post("/v1/sketch", files=files, params={"style": style})
                log.append((time.monotonic(), time.perf_counter() - t0))
                statuses[str(r.status_code)] += 1
                if i % 4 == 0:
                    statuses["healthz " + str((await c.get("/healthz")).status_code)] += 1
                    statuses["metrics " + str((await c.get("/metrics")).status_code)] += 1
                i += 1
        await asyncio.gather(*(client(k) for k in range(CONCURRENCY)))


def uploads():
    from PIL import Image

    from hida_rt.serve.core import encode_png

    photo = Image.open(SAMPLES / "astronaut_photo.png").convert("RGB")
    depth = Image.open(SAMPLES / "astronaut_depth.png").convert("L")
    pairs = []
    for size, style in (((256, 256), "2"), ((384, 320), "0.5,0,0.5"), ((256, 256), "3")):
        pairs.append(({"photo": encode_png(photo.resize(size)), "depth": encode_png(depth.resize(size))}, style))
    return pairs


def test_soak(benchmark, bench_harness, bench_weights):
    env = {"MALLOC_ARENA_MAX": ARENA_MAX} if ARENA_MAX else {}
    server = Server(bench_weights, options=("--log-level", "warning"), env=env)  # the default limits
    from hida_rt.serve.settings import Settings

    share = Settings().client_connection_limit
    samples, log, statuses, attacks = [], [], Counter(), Counter()
    load_before = load_avg()

    async def sampler(start: float, end: float):
        while time.monotonic() < end:
            await asyncio.sleep(SAMPLE_S)
            now = time.monotonic()
            window = [lat for t, lat in log if t > now - SAMPLE_S]
            samples.append(dict(t_s=round(now - start, 1), rss_mb=round(rss_mb(server.proc.pid), 1),
                                sketches=len(log), img_per_s=round(len(window) / SAMPLE_S, 2),
                                p50_ms=round(statistics.median(window) * 1e3, 1) if window else None,
                                load_1m=load_avg()))

    async def soak():
        start = time.monotonic()
        end = start + SOAK_S
        samples.append(dict(t_s=0.0, rss_mb=round(rss_mb(server.proc.pid), 1), sketches=0, load_1m=load_avg()))
        await asyncio.gather(valid_clients(server.url, end, uploads(), log, statuses), sampler(start, end),
                             idle_sockets(server.url, end, attacks, share), slowloris(server.url, end, attacks),
                             stalled_uploads(server.url, end, attacks), big_heads(server.url, end, attacks),
                             idle_streams(server.url, end, attacks))

    try:
        benchmark.group = "serve soak"
        benchmark.pedantic(lambda: asyncio.run(soak()), rounds=1, iterations=1)
        batches = batch_sizes(server.url)
    finally:
        server.stop()
    lat = [x for _, x in log]
    assert lat and set(k for k in statuses if k.isdigit()) == {"200"}, statuses
    first, last = samples[1] if len(samples) > 1 else samples[0], samples[-1]
    half = [s["rss_mb"] for s in samples if s["t_s"] >= SOAK_S / 2]
    info = dict(seconds=SOAK_S, concurrency=CONCURRENCY, backend=BACKEND, malloc_arena_max=ARENA_MAX,
                sketches=len(lat), p50_ms=round(statistics.median(lat) * 1e3, 1),
                p99_ms=round(percentile(lat, 99) * 1e3, 1), valid_statuses=dict(statuses), attacks=dict(attacks),
                rss_start_mb=samples[0]["rss_mb"], rss_after_10s_mb=first["rss_mb"], rss_end_mb=last["rss_mb"],
                rss_second_half_min_mb=min(half) if half else None, rss_second_half_max_mb=max(half) if half else None,
                batch_sizes=batches, rss_timeline=samples, load_avg_1m_before=load_before, load_avg_1m_after=load_avg())
    res = Result(group="serve soak", peer=f"8 valid clients + attackers ({BACKEND}, {SOAK_S:g} s"
                 f"{', MALLOC_ARENA_MAX=' + ARENA_MAX if ARENA_MAX else ''})",
                 median_ms=info["p50_ms"], min_ms=min(lat) * 1e3, rounds=1, calls_per_round=len(lat),
                 items_per_s=len(lat) / SOAK_S, info=info)
    bench_harness.results.append(res)
    benchmark.extra_info.update({k: v for k, v in info.items() if k != "rss_timeline"})


def batch_sizes(url: str) -> dict[str, float]:
    """The server's batch-size histogram (cumulative buckets, from /metrics)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'^hida_batch_size_bucket\{le="([^"]+)"\} (\S+)',
                                                                text, re.MULTILINE)}



# Where the soak's RSS goes: the backend alone over every batch size, twice, under three allocator settings.
ALLOCATORS = {"glibc default": {}, "MALLOC_ARENA_MAX=2": {"MALLOC_ARENA_MAX": "2"},
              "MALLOC_MMAP_THRESHOLD_=4 MiB": {"MALLOC_MMAP_THRESHOLD_": str(4 * 2**20)}}


@pytest.mark.parametrize("allocator", list(ALLOCATORS))
def test_rss_by_batch_size(benchmark, bench_harness, bench_weights, allocator):
    import json
    import subprocess
    import sys

    out = {}

    def probe():
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, str(Path(__file__).with_name("rss_by_batch.py")), str(bench_weights),
                               "--backend", BACKEND], capture_output=True, text=True, timeout=900,
                              env={**os.environ, **ALLOCATORS[allocator]})
        assert done.returncode == 0, done.stderr
        out.update(json.loads(done.stdout.strip().splitlines()[-1]), seconds=time.perf_counter() - t0)

    benchmark.group = "serve soak: RSS by batch size"
    benchmark.pedantic(probe, rounds=1, iterations=1)
    pass1, pass2 = out["pass1"], out["pass2"]
    info = dict(allocator=allocator, backend=BACKEND, loaded_mb=out["loaded_mb"], pass1_mb=pass1, pass2_mb=pass2,
                plateau_mb=max(pass1.values()), pass2_growth_mb=round(max(pass2.values()) - max(pass1.values()), 1),
                load_avg_1m=load_avg())
    bench_harness.results.append(Result(group=benchmark.group, peer=f"{BACKEND}, {allocator}",
                                        median_ms=out["seconds"] * 1e3, min_ms=out["seconds"] * 1e3, rounds=1,
                                        calls_per_round=16,
                                        info=info))
    benchmark.extra_info.update(info)
