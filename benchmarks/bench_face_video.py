"""Faces in the wild on CPU: the video stages, the host path before and after, at 720p and 1080p.

    python -m pytest benchmarks/bench_face_video.py --benchmark-only

Clips are made at benchmark time from a real photo (scikit-image's coffee
with Grace Hopper's head, tests/testutils/real_photos.py) filmed by a moving
camera (pan, zoom, a little roll), H.264.

- Per stage (this checkout): decode, front end (tracking; also pinned to one
  core), backend (per face, batch 4; eager unless HIDA_BENCH_BACKEND names
  another), composite, encode, and end to end with that backend.
- Host path, side by side: the pipeline with the network replaced by a
  pass-through (benchmarks/host_pipeline.py, a benchmark instrument), end to
  end (decode -> front end -> composite -> H.264), run by two worker
  processes: one on this checkout, one on a pristine copy of the commit
  before this host path was reworked (HIDA_BENCH_BASELINE, default
  f89abae), their rounds interleaved so that both see the same machine. "img/s"
  is frames per second. The front end alone (tracking, per frame), the
  search of a still group photo, and the landmark stability on a clip of a
  still photo are compared the same way (stability and faces found go to the
  results' info).
"""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
pytest.importorskip("mediapipe", reason="the face extra (MediaPipe 0.10.21) is not installed")
pytest.importorskip("skimage.data", reason="scikit-image (the real photos the clips are made of) is not installed")

from harness import Result  # noqa: E402
from testutils.real_photos import filmed, group_photo, paste_head, portraits, scene  # noqa: E402
from testutils.synthetic_video import write_clip  # noqa: E402

from hida_rt import images  # noqa: E402
from hida_rt.face import FaceFrontEnd, Smoothing, paste_back  # noqa: E402
from hida_rt.video.io import FileReader, H264Writer, default_preset  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLIPS = {"720p": (1280, 720), "1080p": (1920, 1080)}
FRAMES = 8
BATCH = 4
BACKEND = os.environ.get("HIDA_BENCH_BACKEND", "eager")
BASELINE = os.environ.get("HIDA_BENCH_BASELINE", "f89abae")
HOST_FRAMES = int(os.environ.get("HIDA_BENCH_HOST_FRAMES", "60"))
HOST_ROUNDS = int(os.environ.get("HIDA_BENCH_HOST_ROUNDS", "5"))


def filmed_photo(n: int, width: int, height: int, **motion) -> list[np.ndarray]:
    photo = scene("coffee", 1600, 900)
    paste_head(photo, portraits()["hopper"], 300, 800, 430)
    return filmed(photo, n, width, height, **motion)[0]


@contextlib.contextmanager
def one_core():
    """Pin this process (all its threads, MediaPipe's included) to one CPU."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity control on this platform")
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@pytest.fixture(scope="module", params=list(CLIPS))
def clip(request, tmp_path_factory):
    w, h = CLIPS[request.param]
    path = write_clip(tmp_path_factory.mktemp("bench") / f"{request.param}.mp4", filmed_photo(FRAMES, w, h))
    return f"video {request.param} ({w}x{h})", path


@pytest.fixture(scope="module")
def frames(clip):
    reader = FileReader(clip[1])
    out = list(reader.frames())
    reader.close()
    return out


@pytest.fixture(scope="module")
def faces(frames):
    with FaceFrontEnd(smoothing=Smoothing()) as fe:
        found = [fe.process(f.image, f.time) for f in frames]
    assert all(len(f) == 1 for f in found), "the benchmark clip's face was not found in every frame"
    return [f[0] for f in found]


@pytest.fixture(scope="module")
def backend(bench_weights):
    from hida_rt.backends import create_backend

    return create_backend(BACKEND, bench_weights, device="cpu")


def test_decode(bench, clip):
    def decode():
        reader = FileReader(clip[1])
        assert sum(1 for _ in reader.frames()) == FRAMES
        reader.close()

    bench(decode, group=clip[0], peer="decode", calls=FRAMES)


@pytest.mark.parametrize("cores", ["all cores", "1 core"])
def test_front_end(bench, clip, frames, cores):
    with FaceFrontEnd(smoothing=Smoothing()) as fe:
        def track():
            fe.reset()  # each call tracks the clip from its first frame, detection included
            assert sum(len(fe.process(f.image, f.time)) for f in frames) == FRAMES

        with one_core() if cores == "1 core" else contextlib.nullcontext():
            bench(track, group=clip[0], peer=f"front end ({cores})", calls=FRAMES)


def test_backend(bench, clip, faces, backend):
    photo = torch.cat([images.photo_to_tensor(f.photo) for f in faces[:BATCH]])
    depth = torch.cat([images.depth_to_tensor(f.depth) for f in faces[:BATCH]])
    style = torch.tensor([[1.0, 0.0, 0.0]]).expand(BATCH, 3)
    bench(lambda: backend.run(photo, depth, style), group=clip[0], peer=f"backend ({backend.name}, per face at batch {BATCH})",
          calls=BATCH)


def test_composite(bench, clip, frames, faces):
    sketch = faces[0].depth  # any 256x256 grey image: pasting costs the same

    def composite():
        for frame, face in zip(frames, faces):
            paste_back(frame.image, sketch, face)

    bench(composite, group=clip[0], peer="composite", calls=FRAMES)


def test_encode(bench, clip, frames, tmp_path):
    h, w = frames[0].image.shape[:2]
    preset = default_preset()

    def encode():
        writer = H264Writer(tmp_path / "enc.mp4", w, h, 25, preset=preset)
        for f in frames:
            writer.write(f.image, f.time)
        writer.close()

    bench(encode, group=clip[0], peer=f"encode (x264 {preset})", calls=FRAMES)


def test_end_to_end(bench, clip, backend, tmp_path):
    from hida_rt.video.modes import FaceMode
    from hida_rt.video.pipeline import Pipeline

    mode = FaceMode(smoothing=Smoothing(), draw_in_place=True)
    style = torch.tensor([1.0, 0.0, 0.0])
    stages = {}

    def pipeline():
        mode.reset()
        reader = FileReader(clip[1])
        writer = H264Writer(tmp_path / "out.mp4", reader.width, reader.height, reader.fps, audio_from=clip[1],
                            preset=default_preset())
        result = Pipeline(reader.frames(), mode, lambda p, d: backend.run(p, d, style.expand(len(p), 3)),
                          writer.write, batch_size=BATCH).run()
        writer.close()
        reader.close()
        assert result.frames == FRAMES
        stages.update({f"busy_ms_{k.replace(' ', '_')}": round(v, 2) for k, v in result.stage_ms.items()})

    result = bench(pipeline, group=clip[0], peer=f"end to end ({backend.name}, batch {BATCH})", calls=FRAMES)
    mode.close()
    if result is not None:  # the stages' own view of the last run, kept with the figure
        result.info.update(stages)


# -- the host path, this checkout against the baseline, side by side ----------------------------

class HostWorker:
    """benchmarks/host_pipeline.py in a process of its own, on the hida_rt found at `root`."""

    def __init__(self, root: Path, log: Path):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(REPO / "tests")]))
        self._log = open(log, "w")
        self._proc = subprocess.Popen([sys.executable, str(HERE / "host_pipeline.py")], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log, text=True, env=env, cwd=REPO)
        self.root = self._answer()["ready"]

    def _answer(self) -> dict:
        for line in self._proc.stdout:
            line = line.strip()
            if line.startswith("{"):  # anything else is a library's chatter
                answer = json.loads(line)
                if "error" in answer:
                    raise RuntimeError(f"benchmark worker on {self.__dict__.get('root')}: {answer['error']}")
                return answer
        raise RuntimeError(f"benchmark worker exited; see {self._log.name}")

    def __call__(self, cmd: str, **args) -> dict:
        self._proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self._proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait(timeout=60)
        self._log.close()


@pytest.fixture(scope="module")
def baseline_root(tmp_path_factory) -> Path:
    """hida_rt as it was at BASELINE (git archive), or skip."""
    root = tmp_path_factory.mktemp("baseline")
    try:
        tar = subprocess.run(["git", "archive", "--format=tar", BASELINE, "hida_rt"], cwd=REPO,
                             capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"baseline commit {BASELINE} is not available from git ({type(e).__name__})")
    import io

    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(root, filter="data")
    return root


@pytest.fixture(scope="module")
def workers(baseline_root, tmp_path_factory):
    logs = tmp_path_factory.mktemp("worker-logs")
    pair = {"before": HostWorker(baseline_root, logs / "before.log"), "after": HostWorker(REPO, logs / "after.log")}
    assert pair["before"].root != pair["after"].root
    yield pair
    for w in pair.values():
        w.close()


@pytest.fixture(scope="module", params=list(CLIPS))
def host_clip(request, tmp_path_factory):
    w, h = CLIPS[request.param]
    folder = tmp_path_factory.mktemp(f"host-{request.param}")
    moving = write_clip(folder / "moving.mp4", filmed_photo(HOST_FRAMES, w, h))
    # A still photo as a webcam sees it: the same frame with fresh sensor noise each time.
    still = filmed_photo(1, w, h)[0]
    rng = np.random.default_rng(0)
    noisy = [np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8) for _ in range(40)]
    still_clip = write_clip(folder / "still.mp4", noisy, audio=None)
    group_path = folder / "group.png"
    from PIL import Image

    Image.fromarray(group_photo(w, h)[0]).save(group_path)
    return request.param, f"{w}x{h}", moving, still_clip, group_path


def _interleaved(bench_harness, group: str, runs: dict, rounds: int, value, **info) -> tuple[dict, dict]:
    """Call each of `runs` (name -> () -> answer) in turn, `rounds` times; record per name the
    median of value(answer) (ms per item) as one Result row. Returns (answers, rows) by name."""
    answers = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            answers[name].append(run())
    rows = {}
    for name, got in answers.items():
        ms = [value(a) for a in got]
        med = statistics.median(ms)
        rows[name] = Result(group=group, peer=name, median_ms=med, min_ms=min(ms), rounds=rounds, calls_per_round=1,
                            items_per_s=1e3 / med, info=dict(info, **_summary(got)))
        bench_harness.results.append(rows[name])
    return answers, rows


def _summary(answers: list[dict]) -> dict:
    last = answers[-1]
    out = {k: v for k, v in last.items() if k in ("preset", "frames", "with_input", "faces")}
    if "stage_ms" in last:
        out.update({f"busy_ms_{k.replace(' ', '_')}": round(v, 2) for k, v in last["stage_ms"].items()})
    if "fps" in last:
        out["fps_rounds"] = [round(a["fps"], 1) for a in answers]
    return out


def test_host_pipeline_before_and_after(bench_harness, workers, host_clip, benchmark):
    name, size, moving, _, _ = host_clip
    before, after = workers["before"], workers["after"]
    runs = {
        f"before ({BASELINE}, x264 veryfast)": lambda: before("pipeline", clip=str(moving)),
        f"after (x264 {default_preset()}, the default here)": lambda: after("pipeline", clip=str(moving)),
        "after, x264 veryfast": lambda: after("pipeline", clip=str(moving), preset="veryfast"),
    }
    for run in runs.values():
        run()  # warm: graphs built, caches filled
    answers, _ = _interleaved(bench_harness, f"host path, pass-through network, {name} ({size})", runs, HOST_ROUNDS,
                              lambda a: 1e3 * a["wall"] / a["frames"], load_avg=round(os.getloadavg()[0], 2))
    for got in answers.values():
        assert all(a["frames"] == HOST_FRAMES and a["with_input"] == HOST_FRAMES for a in got), got[-1]
    benchmark.extra_info.update({k: [round(a["fps"], 1) for a in v] for k, v in answers.items()})
    benchmark(lambda: None)  # pytest-benchmark needs one call; the figures are the interleaved rounds above


def test_front_end_before_and_after(bench_harness, workers, host_clip, benchmark):
    name, size, moving, still_clip, group_path = host_clip
    before, after = workers["before"], workers["after"]
    track = {"before: front end, tracking": lambda: before("front_end", clip=str(moving)),
             "after: front end, tracking": lambda: after("front_end", clip=str(moving))}
    _, track_rows = _interleaved(bench_harness, f"front end per frame, {name} ({size})", track, 3,
                                 lambda a: a["ms_per_frame"])
    search = {"before: still search, max 8 faces": lambda: before("still", image=str(group_path), max_faces=8),
              "after: still search, max 8 faces": lambda: after("still", image=str(group_path), max_faces=8)}
    found, search_rows = _interleaved(bench_harness, f"group photo of 7 faces, {name} ({size})", search, 3,
                                      lambda a: a["ms"])
    assert found["after: still search, max 8 faces"][-1]["faces"] == 7
    for peer, row in search_rows.items():
        row.info["faces_found_of_7"] = found[peer][-1]["faces"]
    # Landmark stability on a still face: the mean frame-to-frame motion of the smoothed mesh.
    stability = {"before": before("stability", clip=str(still_clip)), "after": after("stability", clip=str(still_clip))}
    for peer, row in track_rows.items():
        got = stability["before" if peer.startswith("before") else "after"]
        row.info.update(still_photo_landmark_motion_px_per_frame=round(got["mean_px"], 3),
                        still_photo_landmark_motion_p95_px=round(got["p95_px"], 3))
    benchmark.extra_info.update({f"stability_{k}": v for k, v in stability.items()})
    benchmark(lambda: None)
