"""Video mode: faces are tracked between frames (detectors idle) and their alignment smoothed."""
import numpy as np
import pytest
from testutils.synthetic_video import background, moving_face_frames, place

from hida_rt.face.landmarks import eye_centres


@pytest.fixture
def video_front_end(mediapipe):
    from hida_rt.face import FaceFrontEnd, Smoothing

    with FaceFrontEnd(max_faces=1, smoothing=Smoothing()) as fe:
        yield fe


def count_detections(fe, monkeypatch) -> list[int]:
    calls = [0]
    detect = fe._locator.detect

    def counting(frame):
        calls[0] += 1
        return detect(frame)

    monkeypatch.setattr(fe._locator, "detect", counting)
    return calls


def test_a_moving_face_is_tracked_without_re_detection(video_front_end, monkeypatch):
    calls = count_detections(video_front_end, monkeypatch)
    found = [len(video_front_end.process(f, i / 25)) for i, f in enumerate(moving_face_frames(10, 320, 240))]
    assert found == [1] * 10
    assert calls[0] == 1  # only the first frame needed the detectors


def test_a_lost_face_is_found_again(video_front_end, monkeypatch):
    calls = count_detections(video_front_end, monkeypatch)
    frames = list(moving_face_frames(9, 320, 240, face_from=0, face_until=3)) + list(moving_face_frames(3, 320, 240))
    found = [len(video_front_end.process(f, i / 25)) for i, f in enumerate(frames)]
    assert found == [1, 1, 1] + [0] * 6 + [1, 1, 1]
    assert calls[0] == 1 + 6 + 1  # once to start, every empty frame, once to pick the face up again


def test_smoothing_steadies_a_still_face(mediapipe, sample_faces):
    from hida_rt.face import FaceFrontEnd, Smoothing

    frame = background(360, 480)
    place(frame, sample_faces["astronaut"][0], 220, 240, 180, 5)
    rng = np.random.default_rng(0)
    noisy = [np.clip(frame + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8) for _ in range(24)]
    spread = {}
    for smoothing in (None, Smoothing()):
        with FaceFrontEnd(smoothing=smoothing) as fe:
            eyes = np.array([np.concatenate(eye_centres(fe.process(f, i / 25)[0].landmarks))
                             for i, f in enumerate(noisy)])
        spread[smoothing is None] = eyes[6:].std(axis=0).mean()
    assert spread[False] < 0.5 * spread[True], spread  # sensor-like noise: the eyes shake far less


def test_reset_forgets_the_tracks(video_front_end, monkeypatch):
    frames = list(moving_face_frames(2, 320, 240))
    video_front_end.process(frames[0], 0.0)
    calls = count_detections(video_front_end, monkeypatch)
    video_front_end.reset()
    video_front_end.process(frames[1], 0.04)
    assert calls[0] == 1
