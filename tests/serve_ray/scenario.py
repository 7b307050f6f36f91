"""Run inside a loopback-only namespace (testutils.ray_netns): one `--ray` server and one in-process server,
the same requests to both, load on the Ray one, one of its replicas SIGKILLed under load.

    python tests/serve_ray/scenario.py SPEC.json RESULT.json

SPEC: {"server_args": [...], "ray_args": [...], "requests": [{"name", "method", "path", "files": {field: path}}],
       "load_files": {...}, "frames": [jpeg paths] (optional), "v2": inputs .npz (optional), "deadline_s": N}
RESULT: what each server answered (bodies under RESULT's folder), per-request records of the load phases,
and the exit status of each server. The test asserts; this script only measures.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

spec = json.loads(Path(sys.argv[1]).read_text())
result_path = Path(sys.argv[2])
folder = result_path.parent
DEADLINE = time.monotonic() + spec["deadline_s"]
RAY_PORT, LOCAL_PORT = 8000, 8001
result: dict = {"events": []}


def note(what: str) -> None:
    result["events"].append(f"{time.monotonic() - T0:7.2f}s {what}")
    print(result["events"][-1], flush=True)


def left() -> float:
    return max(1.0, DEADLINE - time.monotonic())


def start(args: list[str], port: int, name: str) -> subprocess.Popen:
    log = open(folder / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "hida_rt.serve", *args, "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def wait_ready(proc: subprocess.Popen, port: int, name: str) -> bool:
    while time.monotonic() < DEADLINE:
        if proc.poll() is not None:
            note(f"{name} exited with {proc.returncode} before it was ready")
            return False
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                note(f"{name} ready")
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    return False


def post(client: httpx.Client, port: int, req: dict) -> httpx.Response:
    files = {k: (Path(v).name, Path(v).read_bytes()) for k, v in req.get("files", {}).items()}
    return client.request(req["method"], f"http://127.0.0.1:{port}{req['path']}", files=files or None,
                          timeout=min(60, left()))


def answers(port: int, name: str) -> list[dict]:
    out = []
    with httpx.Client() as client:
        for i, req in enumerate(spec["requests"]):
            r = post(client, port, req)
            body = folder / f"{name}_{i}.bin"
            body.write_bytes(r.content)
            out.append({"name": req["name"], "status": r.status_code, "content_type": r.headers.get("content-type"),
                        "body": str(body), "replica": r.headers.get("x-hida-replica"),
                        "retry_after": r.headers.get("retry-after")})
    return out


def load(port: int, clients: int, until, on_tick=None) -> list[dict]:
    """`clients` threads each posting load_files in a loop until until() is true; one record per request."""
    records: list[dict] = []
    lock = threading.Lock()
    req = {"method": "POST", "path": "/v1/sketch", "files": spec["load_files"]}

    def client_loop():
        with httpx.Client() as client:
            while not until() and time.monotonic() < DEADLINE:
                t = time.monotonic() - T0
                try:
                    r = post(client, port, req)
                    rec = {"t": t, "status": r.status_code, "replica": r.headers.get("x-hida-replica"),
                           "png": r.content[:8] == b"\x89PNG\r\n\x1a\n"}
                    if r.status_code != 200:
                        rec["error"] = r.text[:200]
                except httpx.HTTPError as e:
                    rec = {"t": t, "status": None, "replica": None, "png": False, "error": repr(e)[:200]}
                rec["done"] = time.monotonic() - T0
                with lock:
                    records.append(rec)
                if on_tick is not None:
                    on_tick(records)

    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client_loop) for _ in range(clients)]:
            f.result()
    return records


def stalled_upload(port: int) -> dict:
    """Headers and 100 bytes of a 1 MB body, then silence: what comes back (raw) and after how long."""
    import socket

    t0 = time.monotonic()
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=min(30.0, left())) as s:
        s.sendall(b"POST /v1/sketch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=xyz"
                  b"\r\nContent-Length: 1000000\r\n\r\n" + b"-" * 100)
        while b"}" not in data:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionError):
                break
            if not chunk:
                break
            data += chunk
    return {"response": data.decode("latin-1")[:600], "seconds": time.monotonic() - t0}


def replica_pids() -> list[int]:
    """PIDs of this namespace's Ray Serve replica processes of the hida_rt app (by their process title)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if re.search(r"ServeReplica:hida_rt:SketchDeployment", cmd):
                pids.append(int(d.name))
    return pids


async def one_stream_frame(port: int, jpeg: bytes) -> dict:
    import struct

    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}/v1/stream", subprotocols=["hida.v1"], open_timeout=30) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
        await ws.send(struct.pack(">I", 1) + jpeg)
        msg = await asyncio.wait_for(ws.recv(), 60)
        if not isinstance(msg, bytes):
            return {"hello": hello, "text": msg}
        frame_id, n = struct.unpack_from(">II", msg)
        return {"hello": hello, "id": frame_id, "meta": json.loads(msg[8:8 + n]), "jpeg_bytes": len(msg) - 8 - n}


def v2_answers(port: int, name: str) -> dict:
    """The Open Inference Protocol over REST with tritonclient.http: health, metadata, config, a batch of
    binary tensors, one row of JSON tensors, two errors; sketches saved as .npy beside RESULT."""
    import numpy as np
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    arrays = dict(np.load(spec["v2"]))
    client = httpclient.InferenceServerClient(f"127.0.0.1:{port}", network_timeout=min(120, left()))

    def tensors(data: dict, binary: bool) -> list:
        out = []
        for key, a in data.items():
            out.append(httpclient.InferInput(key, list(a.shape), "FP32"))
            out[-1].set_data_from_numpy(a, binary_data=binary)
        return out

    got: dict = {"live": client.is_server_live(), "ready": client.is_model_ready("hida"),
                 "metadata": client.get_model_metadata("hida"), "config": client.get_model_config("hida")}
    for binary, data in ((True, arrays), (False, {k: v[:1] for k, v in arrays.items()})):
        r = client.infer("hida", tensors(data, binary), request_id=f"{name}-{binary}",
                         outputs=[httpclient.InferRequestedOutput("sketch", binary_data=binary)])
        path = folder / f"{name}_v2_{'binary' if binary else 'json'}.npy"
        np.save(path, r.as_numpy("sketch"))
        got["binary" if binary else "json"] = {"id": r.get_response()["id"], "sketch": str(path)}
    errors = {"unknown_model": lambda: client.infer("nope", tensors(arrays, True)),
              "wrong_shape": lambda: client.infer("hida", tensors({**arrays, "style": arrays["style"][:, :2]}, True))}
    got["errors"] = {}
    for key, call in errors.items():
        try:
            call()
            got["errors"][key] = None
        except InferenceServerException as e:
            got["errors"][key] = [e.status(), e.message()]
    client.close()
    return got


def stop(proc: subprocess.Popen, name: str) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(min(60, left()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            note(f"{name} ignored SIGTERM")
            return None
    return proc.returncode


T0 = time.monotonic()
ray_proc = start(spec["ray_args"], RAY_PORT, "ray")
local_proc = start(spec["server_args"], LOCAL_PORT, "local")
try:
    if wait_ready(local_proc, LOCAL_PORT, "local") and wait_ready(ray_proc, RAY_PORT, "ray"):
        result["local"] = answers(LOCAL_PORT, "local")
        if spec.get("v2"):
            result["local_v2"] = v2_answers(LOCAL_PORT, "local")
        result["local_exit"] = stop(local_proc, "local")  # the Ray phases get the CPUs
        result["ray"] = answers(RAY_PORT, "ray")
        if spec.get("v2"):
            try:
                result["ray_v2"] = v2_answers(RAY_PORT, "ray")
            except Exception as e:  # recorded; the test decides
                result["ray_v2"] = {"failed": repr(e)[:300]}
            note("v2 probed")
        result["stalled_upload"] = stalled_upload(RAY_PORT)
        note("stalled upload probed")
        if spec.get("frames"):
            try:
                result["stream"] = asyncio.run(one_stream_frame(RAY_PORT, Path(spec["frames"][0]).read_bytes()))
            except Exception as e:  # recorded; the test decides
                result["stream"] = {"error": repr(e)[:300]}
            note("stream probed")
        # Phase 1: concurrent load until both replicas have answered (bounded).
        seen: set = set()
        result["spread"] = load(RAY_PORT, 4, lambda: len(seen) >= 2,
                                on_tick=lambda recs: seen.update(r["replica"] for r in recs if r["replica"]))
        note(f"spread phase: {len(result['spread'])} requests, replicas {sorted(seen)}")
        # Phase 2: load; one replica SIGKILLed once some answers came; on until a new replica answered
        # and 10 more answers after it.
        pids = replica_pids()
        result["replica_pids_before"] = pids
        killed: dict = {}
        before = set(seen)

        def tick(recs):
            ok = [r for r in recs if r["status"] == 200]
            if not killed and len(ok) >= 4 and pids:
                os.kill(pids[0], signal.SIGKILL)
                killed["t"] = time.monotonic() - T0
                note(f"SIGKILLed replica process {pids[0]}")
            if killed and "new_t" not in killed:
                new = [r for r in ok if r["replica"] not in before]
                if new:
                    killed["new_t"] = new[0]["done"]
                    note(f"new replica {new[0]['replica']} answered")

        def done():  # 8 s of load after the replacement replica's first answer
            return "new_t" in killed and time.monotonic() - T0 > killed["new_t"] + 8

        result["kill"] = load(RAY_PORT, 4, done, on_tick=tick)
        result["killed"] = killed
        result["replica_pids_after"] = replica_pids()
        note(f"kill phase: {len(result['kill'])} requests")
finally:
    result["ray_exit"] = stop(ray_proc, "ray")
    note(f"ray server stopped: {result['ray_exit']}")
    result.setdefault("local_exit", stop(local_proc, "local"))
    result["ray_log"] = (folder / "ray.log").read_text()[-4000:]
    result["local_log"] = (folder / "local.log").read_text()[-2000:]
    result_path.write_text(json.dumps(result, indent=1))
