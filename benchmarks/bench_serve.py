"""The sketch service against the backend it serves: latency p50/p99 and throughput at concurrency 1, 4, 16.

    python -m pytest benchmarks/bench_serve.py --benchmark-only

A real `python -m hida_rt.serve` on 127.0.0.1 (a free port) serves a
random checkpoint; a bounded closed-loop load generator (c clients, each
sending its next request when its last is answered) POSTs the astronaut
sample with its depth map. The peer is the same backend called directly in
this process with the batch those c requests could form at best
(min(c, max batch)), inputs already tensors, doing the same number of
images: what an ideal batcher with free I/O would give. Each round runs the
peer, then the service, so load from others on a shared machine hits both
alike. Targets: at concurrency 1 the service adds <= 10% to the backend's
latency; at 16 it keeps >= 90% of the backend's batched throughput. The
live stream is timed too (one WebSocket client offering 15 fps; frame sent
-> sketch received; the page shows the same figure as "latency"). The Open
Inference Protocol is timed in the same rounds, with NVIDIA's asyncio
clients: v2 REST with binary tensors (tritonclient.http.aio) and v2 gRPC
(tritonclient.grpc.aio, --grpc-port), the same pair as network tensors
(no image decoding or encoding on the server); mean_batch counts all three.

Rows: group "serve 256x256 concurrency C"; median ms = p50 latency (per
request; per call for the peer), min ms = the fastest, img/s = throughput;
p99, request counts, the ratios to the targets (latency_vs_direct_pct,
throughput_of_direct_pct) and the load average are in each result's info.
Environment: HIDA_BENCH_SERVE_BACKEND (default eager), HIDA_BENCH_SERVE_ROUNDS
(default 3).
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import queue
import re
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from harness import Result

from hida_rt import images
from hida_rt.backends import create_backend
from hida_rt.styles import one_hot

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
BACKEND = os.environ.get("HIDA_BENCH_SERVE_BACKEND", "eager")
MAX_BATCH = 8
CONCURRENCY = (1, 4, 16)
LEVEL_BUDGET_S = 300  # a round stops issuing requests after this long
ROUNDS = int(os.environ.get("HIDA_BENCH_SERVE_ROUNDS", "3"))
# The Open Inference Protocol rows, timed in the same rounds as POST /v1/sketch.
V2_KINDS = {"rest": "v2 REST binary", "grpc": "v2 gRPC"}
# Requests per round at each concurrency (per client: this / concurrency).
REQUESTS = {1: 6, 4: 8, 16: 32}


SERVE_OPTIONS = ("--max-batch", str(MAX_BATCH), "--max-wait-ms", "5", "--max-queue", "64", "--client-share", "1",
                 "--log-level", "warning")
GRPC_LINE = re.compile(r"gRPC \(Open Inference Protocol\) on (\S+:\d+)")


def load_avg() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]


class Server:
    """python -m hida_rt.serve on 127.0.0.1:0, its URL, stopped with SIGTERM."""

    def __init__(self, weights, options=SERVE_OPTIONS, env=None):
        cmd = [sys.executable, "-m", "hida_rt.serve", "--weights", str(weights), "--backend", BACKEND,
               "--device", "cpu", "--port", "0", *options]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in self.proc.stdout], daemon=True).start()
        deadline, self.url = time.monotonic() + 300, None
        while self.url is None and time.monotonic() < deadline:
            try:
                m = re.search(r"listening on (http://\S+)/", lines.get(timeout=1))
                self.url = m.group(1) if m else None
            except queue.Empty:
                assert self.proc.poll() is None, "the server exited"
        self.grpc = None  # HOST:PORT with --grpc-port (announced before the model loads)
        while time.monotonic() < deadline:
            while not lines.empty():
                m = GRPC_LINE.search(lines.get())
                self.grpc = m.group(1) if m else self.grpc
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("the server did not become ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def backend(bench_weights):
    return create_backend(BACKEND, bench_weights, device="cpu", progress=False)


@pytest.fixture(scope="module")
def server(bench_weights):
    srv = Server(bench_weights, options=(*SERVE_OPTIONS, "--grpc-port", "0"))
    assert srv.grpc, "the server announced no gRPC address"
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def upload():
    return {"photo": (SAMPLES / "astronaut_photo.png").read_bytes(), "depth": (SAMPLES / "astronaut_depth.png").read_bytes()}


def batch_tensors(batch: int):
    photo = images.photo_to_tensor(images.read_image(SAMPLES / "astronaut_photo.png", "RGB"))
    depth = images.depth_to_tensor(images.read_image(SAMPLES / "astronaut_depth.png", "L"))
    return (photo.expand(batch, -1, -1, -1).contiguous(), depth.expand(batch, -1, -1, -1).contiguous(),
            one_hot(2).expand(batch, 3).contiguous())


async def closed_loop(url: str, files, clients: int, per_client: int):
    """c clients, each sending its next request when its last is answered: latencies, statuses, wall time."""
    latencies, statuses = [], []
    deadline = time.monotonic() + LEVEL_BUDGET_S
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0), limits=httpx.Limits(max_connections=clients)) as c:
        async def client():
            for _ in range(per_client):
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                r = await c.post(f"{url}/v1/sketch", files=files, params={"style": "2"})
                latencies.append(time.perf_counter() - t0)
                statuses.append(r.status_code)

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return latencies, statuses, wall


def v2_module(kind: str):
    """tritonclient's asyncio client module for the Open Inference Protocol over "rest" or "grpc"."""
    if kind == "rest":
        from tritonclient.http import aio
    else:
        from tritonclient.grpc import aio
    return aio


async def v2_closed_loop(kind: str, server: Server, clients: int, per_client: int):
    """The same closed loop with NVIDIA's client (tritonclient.http.aio with binary tensors, or
    tritonclient.grpc.aio): the astronaut pair as network tensors, one row per request."""
    tc = v2_module(kind)
    photo, depth, style = batch_tensors(1)
    inputs = []
    for name, t in (("photo", photo), ("depth", depth), ("style", style)):
        inputs.append(tc.InferInput(name, list(t.shape), "FP32"))
        inputs[-1].set_data_from_numpy(t.numpy())  # REST: the binary tensor extension (tritonclient's default)
    if kind == "rest":
        client = tc.InferenceServerClient(server.url.removeprefix("http://"), conn_limit=clients, conn_timeout=300.0)
        outputs = [tc.InferRequestedOutput("sketch", binary_data=True)]
    else:
        client = tc.InferenceServerClient(server.grpc)
        outputs = [tc.InferRequestedOutput("sketch")]
    latencies = []
    deadline = time.monotonic() + LEVEL_BUDGET_S

    async def one_client():
        for _ in range(per_client):
            if time.monotonic() > deadline:
                return
            t0 = time.perf_counter()
            result = await client.infer("hida", inputs, outputs=outputs)
            assert result.as_numpy("sketch").shape == (1, 1, 256, 256)
            latencies.append(time.perf_counter() - t0)

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        wall = time.perf_counter() - t0
    finally:
        await client.close()
    return latencies, wall


def batch_histogram(url) -> tuple[float, float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    count = float(re.search(r"^hida_batch_size_count (\S+)", text, re.MULTILINE).group(1))
    total = float(re.search(r"^hida_batch_size_sum (\S+)", text, re.MULTILINE).group(1))
    return count, total


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_service_vs_backend(benchmark, bench_harness, server, backend, upload, concurrency):
    """Rounds alternate the two peers doing the same work, so a shared machine's load hits both alike."""
    batch = min(concurrency, MAX_BATCH)
    per_client = max(1, REQUESTS.get(concurrency, 2 * concurrency) // concurrency)
    n_requests = per_client * concurrency
    calls = math.ceil(n_requests / batch)
    photo, depth, style = batch_tensors(batch)
    direct_s, direct_wall, svc_lat, svc_wall, statuses, worker_s = [], [], [], [], [], []
    v2_lat, v2_wall = {k: [] for k in V2_KINDS}, {k: [] for k in V2_KINDS}
    # torch runs differently when called from a thread other than the main one, as the batcher's
    # worker does; at concurrency 1 the direct call is timed that way too, to tell the two apart.
    worker = ThreadPoolExecutor(1) if concurrency == 1 else None

    def timed_call():
        t0 = time.perf_counter()
        backend.run(photo, depth, style)
        return time.perf_counter() - t0

    def one_round():
        t_round = time.perf_counter()
        for _ in range(calls):
            direct_s.append(timed_call())
        direct_wall.append(time.perf_counter() - t_round)
        if worker is not None:
            worker_s.extend(worker.submit(timed_call).result() for _ in range(calls))
        lat, st, wall = asyncio.run(closed_loop(server.url, upload, concurrency, per_client))
        svc_lat.extend(lat), statuses.extend(st), svc_wall.append(wall)
        for kind in V2_KINDS:
            lat, wall = asyncio.run(v2_closed_loop(kind, server, concurrency, per_client))
            v2_lat[kind].extend(lat), v2_wall[kind].append(wall)

    one_round()  # warm-up, not counted
    for xs in (direct_s, direct_wall, svc_lat, svc_wall, statuses, worker_s, *v2_lat.values(), *v2_wall.values()):
        xs.clear()
    load_before = load_avg()
    calls0, inputs0 = batch_histogram(server.url)
    benchmark.group = group = f"serve 256x256 concurrency {concurrency}"
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    assert statuses and set(statuses) == {200}, statuses  # a benchmark of refusals would mean nothing
    calls1, inputs1 = batch_histogram(server.url)
    direct_tp = calls * batch * len(direct_wall) / sum(direct_wall)
    svc_tp = len(svc_lat) / sum(svc_wall)
    p50, p99 = statistics.median(svc_lat) * 1e3, percentile(svc_lat, 99) * 1e3
    direct_ms = statistics.median(direct_s) * 1e3
    common = dict(concurrency=concurrency, backend=BACKEND, rounds=ROUNDS, load_avg_1m_before=load_before,
                  load_avg_1m_after=load_avg())
    direct = Result(group=group, peer=f"backend direct ({BACKEND}, batch {batch})", median_ms=direct_ms,
                    min_ms=min(direct_s) * 1e3, rounds=ROUNDS, calls_per_round=calls, items_per_s=direct_tp,
                    info=dict(batch=batch, calls=len(direct_s), p99_ms=round(percentile(direct_s, 99) * 1e3, 1),
                              **common))
    info = dict(requests=len(svc_lat), p50_ms=round(p50, 1), p99_ms=round(p99, 1),
                mean_batch=round((inputs1 - inputs0) / max(calls1 - calls0, 1), 2),
                latency_vs_direct_pct=round(100 * (p50 / direct_ms - 1), 1),
                throughput_of_direct_pct=round(100 * svc_tp / direct_tp, 1), **common)
    service = Result(group=group, peer=f"service HTTP ({BACKEND}, {concurrency} clients)", median_ms=p50,
                     min_ms=min(svc_lat) * 1e3, rounds=ROUNDS, calls_per_round=n_requests, items_per_s=svc_tp,
                     info=info)
    results = [direct, service]
    for kind in V2_KINDS:
        lat = v2_lat[kind]
        k_p50, k_tp = statistics.median(lat) * 1e3, len(lat) / sum(v2_wall[kind])
        k_info = dict(requests=len(lat), p50_ms=round(k_p50, 1), p99_ms=round(percentile(lat, 99) * 1e3, 1),
                      latency_vs_direct_pct=round(100 * (k_p50 / direct_ms - 1), 1),
                      throughput_of_direct_pct=round(100 * k_tp / direct_tp, 1), **common)
        if worker is not None:
            k_info["latency_vs_direct_in_worker_thread_pct"] = round(
                100 * (k_p50 / (statistics.median(worker_s) * 1e3) - 1), 1)
        results.append(Result(group=group, peer=f"service {V2_KINDS[kind]} ({BACKEND}, {concurrency} clients)",
                              median_ms=k_p50, min_ms=min(lat) * 1e3, rounds=ROUNDS, calls_per_round=n_requests,
                              items_per_s=k_tp, info=k_info))
        info[f"{kind}_latency_vs_direct_pct"] = k_info["latency_vs_direct_pct"]
    if worker is not None:
        worker.shutdown()
        worker_ms = statistics.median(worker_s) * 1e3
        info["latency_vs_direct_in_worker_thread_pct"] = round(100 * (p50 / worker_ms - 1), 1)
        results.insert(1, Result(group=group, peer=f"backend direct ({BACKEND}, batch 1, from a worker thread)",
                                 median_ms=worker_ms, min_ms=min(worker_s) * 1e3, rounds=ROUNDS, calls_per_round=calls,
                                 items_per_s=1e3 / worker_ms, info=dict(batch=1, calls=len(worker_s), **common)))
    bench_harness.results += results
    benchmark.extra_info.update(info)


def test_stream_latency(benchmark, bench_harness, server):
    pytest.importorskip("mediapipe", reason="the live stream needs the face extra")
    pytest.importorskip("websockets")
    import io

    from PIL import Image
    from testutils.synthetic_video import moving_face_frames
    from websockets.asyncio.client import connect

    jpegs = []
    for f in moving_face_frames(20, 640, 480):
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=80)
        jpegs.append(buf.getvalue())
    seconds, fps = 20.0, 15.0
    out = {}

    async def stream():
        async with connect(server.url.replace("http://", "ws://") + "/v1/stream", open_timeout=60, max_size=2**24) as ws:
            await asyncio.wait_for(ws.recv(), 60)  # hello
            sent, replies = {}, []

            async def offer():
                i = 0
                t_end = time.perf_counter() + seconds
                while time.perf_counter() < t_end:
                    sent[i] = time.perf_counter()
                    await ws.send(struct.pack(">I", i) + jpegs[i % len(jpegs)])
                    i += 1
                    await asyncio.sleep(1 / fps)
                return i

            sender = asyncio.create_task(offer())
            t0 = time.perf_counter()
            while not sender.done() or (replies and replies[-1][0] < len(sent) - 1 and time.perf_counter() - t0 < seconds + 30):
                try:
                    msg = await asyncio.wait_for(ws.recv(), 30)
                except asyncio.TimeoutError:
                    break
                if isinstance(msg, bytes):
                    fid, n = struct.unpack_from(">II", msg)
                    meta = json.loads(msg[8:8 + n])
                    replies.append((fid, time.perf_counter() - sent[fid], meta))
            out.update(offered=await sender, replies=replies, wall=time.perf_counter() - t0)

    benchmark.group = "serve live stream 640x480"
    benchmark.pedantic(lambda: asyncio.run(stream()), rounds=1, iterations=1)
    replies = out["replies"][2:]  # the first frames build the face graphs
    assert replies, "no sketched frame came back"
    lat = [r[1] for r in replies]
    info = dict(offered=out["offered"], sketched=len(out["replies"]), offered_fps=fps,
                p50_ms=round(statistics.median(lat) * 1e3, 1), p99_ms=round(percentile(lat, 99) * 1e3, 1),
                server_p50_ms=round(statistics.median(r[2]["timings"]["server"] for r in replies), 1),
                dropped=out["replies"][-1][2]["dropped"], load_avg_1m=load_avg())
    res = Result(group=benchmark.group, peer=f"WS client, offered {fps:.0f} fps ({BACKEND})",
                 median_ms=statistics.median(lat) * 1e3, min_ms=min(lat) * 1e3, rounds=1, calls_per_round=len(lat),
                 items_per_s=len(out["replies"]) / out["wall"], info=info)
    bench_harness.results.append(res)
    benchmark.extra_info.update(info)
