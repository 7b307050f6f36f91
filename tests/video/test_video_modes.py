"""What each frame becomes: faces pasted back, the --no-face policies, whole-frame sketches."""
import numpy as np
import pytest
import torch
from testutils.synthetic_video import moving_face_frames

from hida_rt.video.io import Frame
from hida_rt.video.modes import WholeFrameMode, network_size


@pytest.fixture(scope="module")
def face_then_wall():
    pytest.importorskip("mediapipe", reason="the face extra (MediaPipe 0.10.21) is not installed")
    frames = list(moving_face_frames(4, 320, 240, face_until=2))
    return [Frame(i, f, i / 25) for i, f in enumerate(frames)]


def composite_all(policy, frames):
    from hida_rt.video.modes import FaceMode

    mode = FaceMode(no_face=policy)
    out = []
    for frame in frames:
        work = mode.prepare(frame)
        work.sketches = [np.zeros((256, 256), np.uint8) for _ in work.photos]  # a black "sketch"
        out.append((work, mode.composite(work)))
    mode.close()
    return out


def test_faces_are_prepared_as_network_inputs(face_then_wall):
    (work, image), *_ = composite_all("pass", face_then_wall[:1])
    assert len(work.photos) == 1
    assert work.photos[0].shape == (1, 3, 256, 256) and work.depths[0].shape == (1, 1, 256, 256)
    assert -1 <= float(work.photos[0].min()) and float(work.photos[0].max()) <= 1
    # The depth map spans [0, 1]; its 5x5 blur may round a flat 1.0 region to 1 - 6e-8 (the sum of its weights).
    assert float(work.depths[0].max()) == pytest.approx(1.0, abs=1e-6) and float(work.depths[0].min()) == 0.0
    assert (image == 0).all(axis=2).mean() > 0.15  # the black sketch now covers the face (its square)


@pytest.mark.parametrize("policy", ["pass", "blank", "last"])
def test_no_face_policies(face_then_wall, policy):
    results = composite_all(policy, face_then_wall)
    assert [len(w.photos) for w, _ in results] == [1, 1, 0, 0]
    for (work, image) in results[2:]:
        wall = work.frame.image
        if policy == "pass":
            assert np.array_equal(image, wall)
        elif policy == "blank":
            assert (image == 255).all()
        else:  # the last sketch, where the last face was
            black = (image < 3).all(axis=2)
            before = (results[1][1] < 3).all(axis=2)
            assert black.mean() > 0.15 and (black & before).sum() / (black | before).sum() > 0.95


def test_last_before_any_face_passes_the_frame(face_then_wall):
    wall_first = [Frame(0, face_then_wall[3].image, 0.0)] + face_then_wall[:1]
    (_, image), _ = composite_all("last", wall_first)
    assert np.array_equal(image, wall_first[0].image)


@pytest.mark.parametrize("frame, net, expected", [
    ((240, 320), None, (256, 256)), ((720, 1280), None, (768, 1280)), ((1080, 1920), None, (1024, 1792)),
    ((1080, 1920), 512, (512, 1024)), ((100, 40), None, (256, 256)),
])
def test_whole_frame_network_size(frame, net, expected):
    assert network_size(*frame, net) == expected
    assert all(s % 256 == 0 for s in network_size(*frame, net))


def test_whole_frame_mode_round_trip():
    mode = WholeFrameMode(240, 320)
    image = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    work = mode.prepare(Frame(0, image, 0.0))
    assert work.photos[0].shape == (1, 3, 256, 256) and torch.count_nonzero(work.depths[0]) == 0
    work.sketches = [np.tile(np.arange(256, dtype=np.uint8), (256, 1))]  # a left-to-right ramp
    out = mode.composite(work)
    assert out.shape == (240, 320, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()  # grey
    assert out[120, 5, 0] < 10 and out[120, 314, 0] > 245  # resized back, not cropped
