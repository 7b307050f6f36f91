"""python -m hida_rt.serve --ray on a local Ray instance, in a loopback-only namespace (testutils.ray_netns).

One scenario (tests/serve_ray/scenario.py), one Ray start: the --ray server with two replicas and the
in-process server get the same requests (answers must match: status, JSON error, sketch within 1 grey
level, same page); concurrent load reaches both replicas; then one replica process is SIGKILLed under
load and clients must go on getting sketches.
"""
from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from testutils.ray_netns import REPO, netns_unavailable_reason, run_python

pytest.importorskip("ray.serve", reason="the ray extra is not installed (pip install 'ray[serve,data]==2.60.0')")
pytest.importorskip("fastapi", reason="the serve extra (FastAPI) is not installed")
pytest.importorskip("httpx", reason="httpx (test dependency of the serve tests) is not installed")
_REASON = netns_unavailable_reason()
needs_netns = pytest.mark.skipif(_REASON is not None, reason=f"Ray tests need a loopback-only namespace: {_REASON}")

SCENARIO_TIMEOUT_S = 240
COMMON = ["--backend", "eager", "--device", "cpu", "--max-batch", "4", "--max-wait-ms", "20", "--log-level", "warning",
          "--body-timeout", "3"]
RAY = ["--ray", "--replicas", "2", "--cpus-per-replica", "0.5"]


def grey(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.int16)


@pytest.fixture(scope="module")
def scenario(spread_ckpt, sample_pair, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve_ray")
    photo, depth = (str(p) for p in sample_pair)
    broken = folder / "broken.png"
    broken.write_bytes(b"not an image at all")
    requests = [
        {"name": "healthz", "method": "GET", "path": "/healthz"},
        {"name": "page", "method": "GET", "path": "/"},
        {"name": "sketch", "method": "POST", "path": "/v1/sketch?style=3", "files": {"photo": photo, "depth": depth}},
        {"name": "sketch_mix", "method": "POST", "path": "/v1/sketch?style=0.5,0,0.5",
         "files": {"photo": photo, "depth": depth}},
        {"name": "bad_style", "method": "POST", "path": "/v1/sketch?style=7", "files": {"photo": photo, "depth": depth}},
        {"name": "bad_image", "method": "POST", "path": "/v1/sketch", "files": {"photo": str(broken), "depth": depth}},
        {"name": "no_photo", "method": "POST", "path": "/v1/sketch", "files": {"depth": depth}},
        {"name": "no_route", "method": "GET", "path": "/nope"},
        {"name": "wrong_method", "method": "GET", "path": "/v1/sketch"},
        {"name": "stream_without_upgrade", "method": "GET", "path": "/v1/stream"},
    ]
    frames = []
    if importlib.util.find_spec("mediapipe") and importlib.util.find_spec("websockets"):
        from testutils.synthetic_video import moving_face_frames
        f = next(iter(moving_face_frames(1, 320, 240)))
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=90)
        (folder / "frame.jpg").write_bytes(buf.getvalue())
        frames = [str(folder / "frame.jpg")]
    rng = np.random.default_rng(22)
    np.savez(folder / "v2_inputs.npz", photo=rng.random((2, 3, 256, 256), dtype=np.float32) * 2 - 1,
             depth=rng.random((2, 1, 256, 256), dtype=np.float32),
             style=np.array([[0, 0, 1], [0.5, 0.5, 0]], dtype=np.float32))
    spec = {"server_args": ["--weights", str(spread_ckpt), *COMMON],
            "ray_args": ["--weights", str(spread_ckpt), *COMMON, *RAY],
            "requests": requests, "load_files": {"photo": photo, "depth": depth}, "frames": frames,
            "v2": str(folder / "v2_inputs.npz"),
            "deadline_s": SCENARIO_TIMEOUT_S - 20}
    (folder / "spec.json").write_text(json.dumps(spec))
    proc = run_python([str(REPO / "tests" / "serve_ray" / "scenario.py"), str(folder / "spec.json"),
                       str(folder / "result.json")], timeout=SCENARIO_TIMEOUT_S)
    assert (folder / "result.json").is_file(), f"the scenario wrote no result:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads((folder / "result.json").read_text())
    assert "ray" in result, f"a server did not come up:\n{result['events']}\n{result['ray_log']}\n{result['local_log']}"
    return result


@needs_netns
def test_ray_answers_match_the_in_process_server(scenario):
    for local, ray in zip(scenario["local"], scenario["ray"], strict=True):
        name = local["name"]
        assert ray["status"] == local["status"], (name, ray, Path(ray["body"]).read_bytes()[:300])
        assert ray["content_type"] == local["content_type"], name
        assert ray["replica"], f"{name}: no {'X-Hida-Replica'} header"
        if local["content_type"] == "image/png":
            diff = np.abs(grey(ray["body"]) - grey(local["body"])).max()
            assert diff <= 1, f"{name}: the Ray sketch differs from the in-process one by {diff} grey levels"
        elif local["content_type"] == "application/json":
            mine, theirs = (json.loads(Path(x["body"]).read_text()) for x in (ray, local))
            assert mine == theirs, name   # the same one-line errors, the same /healthz
        else:
            assert Path(ray["body"]).read_bytes() == Path(local["body"]).read_bytes(), name
    statuses = {a["name"]: a["status"] for a in scenario["ray"]}
    assert statuses == {"healthz": 200, "page": 200, "sketch": 200, "sketch_mix": 200, "bad_style": 400,
                        "bad_image": 400, "no_photo": 400, "no_route": 404, "wrong_method": 405,
                        "stream_without_upgrade": 426}
    assert scenario["local_exit"] == 0


@needs_netns
def test_a_stalled_upload_holds_no_replica_slot_under_ray(scenario):
    """The body deadline runs in the replica (the app's Guard), behind Ray's proxy: 408 JSON at --body-timeout."""
    stalled = scenario["stalled_upload"]
    head, _, body = stalled["response"].partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 408 "), stalled
    assert "application/json" in head.lower() and "the request body did not arrive within 3 s" in body, stalled
    assert 2.5 < stalled["seconds"] < 20, stalled


@needs_netns
def test_the_open_inference_protocol_answers_the_same_under_ray(scenario):
    """tritonclient.http against both servers: the same health, metadata, config, errors; sketches within
    1e-4 (FP32 eager both sides; Ray Serve may batch the rows differently)."""
    local, ray = scenario["local_v2"], scenario["ray_v2"]
    assert "failed" not in ray, ray
    for key in ("live", "ready", "metadata", "config", "errors"):
        assert ray[key] == local[key], key
    assert local["live"] and local["ready"] and local["metadata"]["inputs"][0]["shape"] == [-1, 3, 256, 256]
    assert local["errors"]["unknown_model"][0] == "404" and local["errors"]["wrong_shape"][0] == "400"
    for kind, rows in (("binary", 2), ("json", 1)):
        mine, theirs = np.load(ray[kind]["sketch"]), np.load(local[kind]["sketch"])
        assert mine.shape == theirs.shape == (rows, 1, 256, 256)
        assert np.abs(mine - theirs).max() <= 1e-4, kind
        assert ray[kind]["id"] == f"ray-{kind == 'binary'}" and local[kind]["id"] == f"local-{kind == 'binary'}"


@needs_netns
def test_the_live_stream_works_under_ray(scenario):
    if "stream" not in scenario:
        pytest.skip("the live stream needs the face extra (MediaPipe) and websockets")
    s = scenario["stream"]
    assert "error" not in s and "text" not in s, s
    assert s["hello"]["backend"] == "eager" and s["id"] == 1 and s["meta"]["faces"] == 1 and s["jpeg_bytes"] > 0


@needs_netns
def test_both_replicas_answer_under_concurrent_load(scenario):
    spread = scenario["spread"]
    assert all(r["status"] == 200 and r["png"] for r in spread), [r for r in spread if r["status"] != 200][:3]
    assert len({r["replica"] for r in spread}) == 2, scenario["events"]


@needs_netns
def test_clients_get_answers_when_a_replica_is_killed(scenario):
    """A request in flight on the killed replica may fail (Ray cannot replay it); every request that
    started once the replacement replica answered must succeed, and nearly all overall."""
    killed, records = scenario["killed"], scenario["kill"]
    assert "t" in killed, f"no replica was killed: {scenario['events']}"
    assert "new_t" in killed, f"no replacement replica answered: {scenario['events']}\n{scenario['ray_log']}"
    during = [r for r in records if r["t"] <= killed["new_t"]]
    after = [r for r in records if r["t"] > killed["new_t"]]
    ok = [r for r in records if r["status"] == 200 and r["png"]]
    failed = [r for r in records if not (r["status"] == 200 and r["png"])]
    assert len(after) >= 4 and all(r["status"] == 200 and r["png"] for r in after), [r for r in after if r["status"] != 200]
    # Only requests that were in progress when the replica died may fail: at most the 4 clients' one each.
    assert len(failed) <= 4, failed
    assert len(ok) >= 0.8 * len(records), (len(ok), len(records), failed)
    assert any(r["t"] < killed["t"] < r["done"] for r in during), "no request was in progress at the kill"


@needs_netns
def test_the_ray_server_stops_cleanly_on_sigterm(scenario):
    assert scenario["ray_exit"] == 0, scenario["ray_log"]


def test_without_ray_nothing_of_ray_is_imported(spread_ckpt, tmp_path):
    """The normal serve path (CLI parsing, app, service, a failing start) leaves Ray unimported."""
    code = f"""
import sys
from hida_rt.cli import run_cli
from hida_rt.serve.__main__ import main, build_parser
from hida_rt.serve.app import create_app
from hida_rt.serve.core import SketchService
from hida_rt.serve.settings import Settings
build_parser().parse_args(["--weights", "w"])
create_app(SketchService(lambda: None, Settings()))
assert run_cli(main, ["--weights", {str(tmp_path / 'missing.pth')!r}], prog="hida_rt.serve") != 0
assert run_cli(main, ["--weights", {str(spread_ckpt)!r}, "--replicas", "2"], prog="hida_rt.serve") == 2
bad = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
print("RAY", bad)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "RAY []" in proc.stdout, proc.stdout
    assert "--replicas applies only with --ray" in proc.stderr
