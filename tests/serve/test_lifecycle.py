"""SIGTERM: stop accepting, finish what is in flight, exit 0."""
from __future__ import annotations

import concurrent.futures
import signal
import socket
import time

import httpx

TIMEOUT = httpx.Timeout(60.0)


def in_flight(url) -> float:
    text = httpx.get(f"{url}/metrics", timeout=TIMEOUT).text
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith("hida_http_in_flight_requests ")))


def grpc_sketch_shape(address: str) -> tuple[int, ...]:
    """One Open Inference Protocol request over gRPC (tritonclient), the sketch's shape."""
    import numpy as np
    import tritonclient.grpc as grpcclient

    arrays = {"photo": np.zeros((1, 3, 256, 256), np.float32), "depth": np.zeros((1, 1, 256, 256), np.float32),
              "style": np.full((1, 3), 1 / 3, np.float32)}
    inputs = []
    for name, a in arrays.items():
        inputs.append(grpcclient.InferInput(name, list(a.shape), "FP32"))
        inputs[-1].set_data_from_numpy(a)
    with grpcclient.InferenceServerClient(address) as client:
        return client.infer("hida", inputs, client_timeout=60).as_numpy("sketch").shape


def test_sigterm_finishes_in_flight_requests_then_exits_0(spare, sample_pair):
    srv = spare  # --max-batch 2 --max-wait-ms 1 --grpc-port 0
    try:
        files = {"photo": sample_pair[0].read_bytes(), "depth": sample_pair[1].read_bytes()}
        grpc_address = srv.grpc_address()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = [pool.submit(httpx.post, f"{srv.url}/v1/sketch", files=files, timeout=TIMEOUT) for _ in range(3)]
            grpc_answer = pool.submit(grpc_sketch_shape, grpc_address)  # gRPC shares the queue and the shutdown
            deadline = time.monotonic() + 30
            while in_flight(srv.url) < 4:  # all four admitted (two batches of the backend: ~0.5 s or more)
                assert time.monotonic() < deadline, srv.output
                time.sleep(0.01)
            srv.proc.send_signal(signal.SIGTERM)
            results = [a.result(timeout=60) for a in answers]
            assert grpc_answer.result(timeout=60) == (1, 1, 256, 256)
        assert [r.status_code for r in results] == [200, 200, 200]
        assert all(r.headers["content-type"] == "image/png" for r in results)
        assert srv.proc.wait(40) == 0, srv.output
        assert "Traceback" not in srv.output
        try:
            httpx.get(f"{srv.url}/healthz", timeout=5)
            raise AssertionError("the server still answers after exiting")
        except httpx.TransportError:
            pass
        host, port = grpc_address.rsplit(":", 1)
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
            raise AssertionError("the gRPC port still accepts connections after the server exited")
        except ConnectionRefusedError:
            pass
    finally:
        srv.kill()


def test_a_checkpoint_that_fails_to_load_ends_the_server_with_one_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"this is not a checkpoint")
    done = subprocess.run([sys.executable, "-m", "hida_rt.serve", "--weights", str(bad), "--backend", "eager",
                           "--device", "cpu", "--port", "0", "--log-level", "warning"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("hida_rt.serve: listening on http://127.0.0.1:")
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("hida_rt.serve: error: "), done.stderr
    assert "Traceback" not in done.stderr
