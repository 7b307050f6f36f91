"""Faces in the wild on CPU: time per frame of each video stage, and end-to-end FPS, at 720p and 1080p.

    python -m pytest benchmarks/bench_face_video.py --benchmark-only

Clips are synthetic (the astronaut sample drifting, turning and zooming
over a wall, H.264, 8 frames), made at benchmark time. Each stage runs over
all frames of the clip per call, so "median ms" is per frame and "img/s" is
frames per second; the backend's figure is per face, at batch 4; "end to
end" is the threaded pipeline with a loaded model (decode -> front end ->
backend -> composite -> H.264). The front end is also timed pinned to one
CPU core, the budget it is designed for (<= 15 ms per frame). The backend
is eager unless HIDA_BENCH_BACKEND names another.
"""
from __future__ import annotations

import contextlib
import os

import pytest
import torch

pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
pytest.importorskip("mediapipe", reason="the face extra (MediaPipe 0.10.21) is not installed")

from testutils.synthetic_video import moving_face_frames, write_clip  # noqa: E402

from hida_rt import images  # noqa: E402
from hida_rt.face import FaceFrontEnd, Smoothing, paste_back  # noqa: E402
from hida_rt.video_io import FileReader, H264Writer  # noqa: E402

CLIPS = {"720p": (1280, 720), "1080p": (1920, 1080)}
FRAMES = 8
BATCH = 4
BACKEND = os.environ.get("HIDA_BENCH_BACKEND", "eager")


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
    path = write_clip(tmp_path_factory.mktemp("bench") / f"{request.param}.mp4", moving_face_frames(FRAMES, w, h))
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

    def encode():
        writer = H264Writer(tmp_path / "enc.mp4", w, h, 25)
        for f in frames:
            writer.write(f.image, f.time)
        writer.close()

    bench(encode, group=clip[0], peer="encode (x264 veryfast)", calls=FRAMES)


def test_end_to_end(bench, clip, backend, tmp_path):
    from hida_rt.video_modes import FaceMode
    from hida_rt.video_pipeline import Pipeline

    mode = FaceMode(smoothing=Smoothing())
    style = torch.tensor([1.0, 0.0, 0.0])
    stages = {}

    def pipeline():
        mode._front_end.reset()
        reader = FileReader(clip[1])
        writer = H264Writer(tmp_path / "out.mp4", reader.width, reader.height, reader.fps, audio_from=clip[1])
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
