"""Fixtures for the sketch service tests: real `python -m hida_rt.serve` processes on loopback.

Every server binds 127.0.0.1 (or 127.0.0.2 for the API-key tests) on a
free port, serves a random checkpoint on the eager backend, and is stopped
(SIGTERM, then kill) when its fixture ends; every wait is bounded.
"""
from __future__ import annotations

import importlib.util
import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra (FastAPI) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (test dependency of the serve tests) is not installed")

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 300  # five processes importing torch and loading a 435 MB checkpoint side by side, on a busy 2-core machine
STOP_TIMEOUT_S = 40
# The session server: small limits, so that the tests can reach each of them with little traffic.
QUEUE_OPTIONS = ("--max-batch", "4", "--max-wait-ms", "20", "--max-queue", "8", "--client-share", "0.5")
MAIN_OPTIONS = (*QUEUE_OPTIONS, "--max-streams", "6", "--max-body-mb", "2", "--max-megapixels", "1",
                "--max-frame-mb", "1")
# The overload test's server: the session server's queue limits, bodies up to 8 MB, and the allocator settings
# docs/serve.md gives for steady memory. Under glibc's defaults RSS swings by +-150 MB from one identical burst
# to the next (freed activations land in whichever thread arena), and a server that served other tests first
# creeps as its heap fragments: either would hide a leak of refused bodies. Fresh, with these settings, RSS
# moves by a few MB a burst, and bodies (over the mmap threshold) leave nothing behind when freed.
OVERLOAD_OPTIONS = (*QUEUE_OPTIONS, "--max-body-mb", "8")
OVERLOAD_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": str(2**20)}
# The limits server (test_limits.py): tight connection, header, body and stream limits, reached in a second or two.
LIMIT_OPTIONS = ("--max-batch", "2", "--max-wait-ms", "5", "--max-queue", "4", "--client-share", "0.5",
                 "--max-streams", "2", "--max-connections", "24", "--max-connections-per-client", "8",
                 "--idle-timeout", "1", "--header-timeout", "2", "--body-timeout", "2", "--min-body-rate-kb", "64",
                 "--stream-idle-timeout", "2", "--max-header-kb", "16", "--max-headers", "40", "--log-level", "info")
API_KEY = "test-key-0123456789abcdef"
APP_ORIGIN = "http://app.example"
PARITY_STYLES = {"depth": "3", "face": "0.5,0,0.5"}
V2_MAX_BATCH = 8  # the keyed server's --max-batch: the Open Inference Protocol tests' max_batch_size
GRPC_LINE = re.compile(r"gRPC \(Open Inference Protocol\) on (\S+:\d+)")


class ServerProcess:
    """`python -m hida_rt.serve ...` as a child process, its announced URL, its output kept for asserts."""

    def __init__(self, args, env=None):
        self.args = [sys.executable, "-m", "hida_rt.serve", *map(str, args)]
        self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self.lines: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The address the server announced (waits for it)."""
        if self._url is None:
            self._url = self._wait_for_url()
        return self._url

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            m = re.search(r"listening on (http://\S+/)", line)
            if m:
                return m.group(1).rstrip("/")
        self.kill()
        raise AssertionError(f"the server did not announce its address:\n{self.output}")

    def wait_ready(self, headers=None) -> dict:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited with {self.proc.returncode}:\n{self.output}"
            try:
                r = httpx.get(f"{self.url}/healthz", headers=headers, timeout=5)
                if r.status_code == 200:
                    return r.json()
                assert r.status_code == 503, r.text
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"the server was not ready in {START_TIMEOUT_S} s:\n{self.output}")

    def grpc_address(self) -> str:
        """HOST:PORT of the server's gRPC service (--grpc-port), from its announcement (waits for it)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = GRPC_LINE.search(line)
                if m:
                    return m.group(1)
            assert self.proc.poll() is None, f"the server exited with {self.proc.returncode}:\n{self.output}"
            time.sleep(0.1)
        raise AssertionError(f"the server announced no gRPC address:\n{self.output}")

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> int:
        """SIGTERM, then wait (kill if it hangs); the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"the server ignored SIGTERM for {STOP_TIMEOUT_S} s:\n{self.output}") from None
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start_server(weights, *options, host="127.0.0.1", env=None) -> ServerProcess:
    return ServerProcess(["--weights", weights, "--backend", "eager", "--device", "cpu", "--host", host,
                          "--port", "0", "--log-level", "warning", *options], env=env)


def start_cli(args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hida_rt.sketch", *map(str, args), "-q"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="session")
def launched(spread_ckpt, exported_onnx, sample_pair, tmp_path_factory):
    """Everything slow to start, started at once (they load the same checkpoint; side by side they finish
    sooner): the shared server, the API-key server on 127.0.0.2, a spare for the SIGTERM test, and
    `python -m hida_rt.sketch` runs whose outputs the parity tests compare with the service's."""
    from hida_rt.images import read_image
    from testutils.synthetic_video import background, place, sample_photo

    folder = tmp_path_factory.mktemp("parity")
    grace = sample_pair[0].parent
    (folder / "tall_photo.png").write_bytes(png_bytes(read_image(grace / "grace_hopper_photo.png", "RGB").resize((320, 400))))
    (folder / "tall_depth.png").write_bytes(png_bytes(read_image(grace / "grace_hopper_depth.png", "L").resize((320, 400))))
    wild = background(360, 480)
    place(wild, sample_photo("astronaut"), 200, 250, 180, 6)
    (folder / "wild.png").write_bytes(png_bytes(wild))
    pairs = [sample_pair, (folder / "tall_photo.png", folder / "tall_depth.png")]
    common = ["--weights", spread_ckpt, "--backend", "eager", "--device", "cpu"]
    started = {
        "main": start_server(spread_ckpt, *MAIN_OPTIONS),
        "overload": start_server(spread_ckpt, *OVERLOAD_OPTIONS, env=OVERLOAD_ENV),
        "keyed": start_server(spread_ckpt, "--cors-origin", APP_ORIGIN, "--grpc-port", "0", "--max-batch",
                              str(V2_MAX_BATCH), host="127.0.0.2", env={"HIDA_API_KEY": API_KEY}),
        "spare": start_server(spread_ckpt, "--max-batch", "2", "--max-wait-ms", "1", "--grpc-port", "0"),
        # The Triton repository hida_rt writes for the same weights (from the session's export of them):
        # what the v2 metadata must equal.
        "triton_export": subprocess.Popen(
            [sys.executable, "-m", "hida_rt.export.triton_repo", str(exported_onnx), str(folder / "triton"),
             "--max-batch", str(V2_MAX_BATCH)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        "limits": start_server(spread_ckpt, *LIMIT_OPTIONS),
        "cli_depth": start_cli([*[p for p, _ in pairs], "--depth", *[d for _, d in pairs], *common,
                                "--style", PARITY_STYLES["depth"], "-o", folder / "cli"]),
        "pairs": pairs,
        "wild": folder / "wild.png",
        "folder": folder,
        "parity_styles": PARITY_STYLES,
    }
    started["keyed"].api_key, started["keyed"].cors_origin = API_KEY, APP_ORIGIN
    if importlib.util.find_spec("mediapipe"):
        started["cli_face"] = start_cli([folder / "wild.png", *common, "--style", PARITY_STYLES["face"],
                                         "-o", folder / "cli" / "wild_face.png"])
    try:
        yield started
    finally:
        for v in started.values():
            if isinstance(v, ServerProcess):
                try:
                    v.stop()
                finally:
                    v.kill()
            elif isinstance(v, subprocess.Popen) and v.poll() is None:
                v.kill()
                v.wait(10)


@pytest.fixture(scope="session")
def server(launched):
    """The shared server (MAIN_OPTIONS limits), ready."""
    launched["main"].wait_ready()
    return launched["main"]


@pytest.fixture(scope="session")
def overload_server(launched):
    """A server of the overload test's own (OVERLOAD_OPTIONS, OVERLOAD_ENV), ready."""
    launched["overload"].wait_ready()
    return launched["overload"]


@pytest.fixture(scope="session")
def keyed(launched):
    """A server on 127.0.0.2 (still loopback, but "another host"): API_KEY required, CORS for APP_ORIGIN."""
    launched["keyed"].wait_ready()
    return launched["keyed"]


@pytest.fixture(scope="session")
def limited(launched):
    """A server with tight connection, header, body and stream limits (LIMIT_OPTIONS), logging at info."""
    launched["limits"].wait_ready()
    return launched["limits"]


@pytest.fixture
def spare(launched):
    """A server of its own, for a test that stops it."""
    launched["spare"].wait_ready()
    return launched["spare"]


@pytest.fixture(scope="session")
def triton_config(launched):
    """DIR/hida/config.pbtxt that `python -m hida_rt.export.triton_repo` wrote for the session export of the weights."""
    proc = launched["triton_export"]
    out, _ = proc.communicate(timeout=START_TIMEOUT_S * 2)
    assert proc.returncode == 0, out
    return launched["folder"] / "triton" / "hida" / "config.pbtxt"


@pytest.fixture(scope="session")
def cli_outputs(launched):
    """Wait for a CLI run: cli_outputs('depth' | 'face') -> the folder it wrote into."""
    def wait(which: str) -> Path:
        proc = launched.get(f"cli_{which}")
        if proc is None:
            pytest.skip("the face extra (MediaPipe 0.10.21) is not installed")
        out, _ = proc.communicate(timeout=START_TIMEOUT_S * 2)
        assert proc.returncode == 0, out
        return launched["folder"] / "cli"
    return wait


@pytest.fixture(scope="session")
def stream_jpegs():
    """JPEG frames (320x240) of the astronaut sample drifting over a plain wall, as a webcam would send."""
    from testutils.synthetic_video import moving_face_frames

    frames = list(moving_face_frames(12, 320, 240))
    out = []
    for f in frames:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=90)
        out.append((f, buf.getvalue()))
    return out


def png_bytes(image: np.ndarray | Image.Image) -> bytes:
    im = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write_y4m(path: Path, frames, fps: int = 15) -> Path:
    """RGB frames -> a YUV4MPEG2 clip Chromium's fake camera plays (4:2:0, even size, F tag, full-range BT.601)."""
    frames = list(frames)
    h, w = frames[0].shape[:2]
    assert h % 2 == 0 and w % 2 == 0
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            x = rgb.astype(np.float32)
            r, g, b = x[..., 0], x[..., 1], x[..., 2]
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
            v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
            sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            f.write(b"FRAME\n")
            f.writelines(np.clip(plane.round(), 0, 255).astype(np.uint8).tobytes() for plane in (y, sub(u), sub(v)))
    return path


@pytest.fixture(scope="session")
def to_png():
    """to_png(array or PIL image) -> PNG bytes."""
    return png_bytes


@pytest.fixture(scope="session")
def y4m():
    """y4m(path, frames, fps=15) -> path of a fake-camera clip."""
    return write_y4m
