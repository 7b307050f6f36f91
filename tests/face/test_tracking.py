"""Video mode: faces are tracked between frames (detectors idle) and their alignment smoothed."""
import numpy as np
import pytest
from testutils.real_photos import (
    face_centre_and_height,
    filmed,
    group_photo,
    match,
    moved,
)
from testutils.synthetic_video import background, moving_face_frames, place

from hida_rt.face.landmarks import eye_centres


@pytest.fixture
def video_front_end(mediapipe):
    from hida_rt.face import FaceFrontEnd, Smoothing

    with FaceFrontEnd(max_faces=1, smoothing=Smoothing()) as fe:
        yield fe


def count_searches(fe, monkeypatch) -> dict[str, int]:
    """Calls of the detectors' two passes from now on."""
    calls = {"whole_frame": 0, "tiles": 0}
    for name in calls:
        real = getattr(fe._detector, name)

        def counting(*args, _real=real, _name=name):
            calls[_name] += 1
            return _real(*args)

        monkeypatch.setattr(fe._detector, name, counting)
    return calls


def test_a_moving_face_is_tracked_without_re_detection(video_front_end, monkeypatch):
    calls = count_searches(video_front_end, monkeypatch)
    found = [len(video_front_end.process(f, i / 25)) for i, f in enumerate(moving_face_frames(10, 320, 240))]
    assert found == [1] * 10
    assert calls == {"whole_frame": 1, "tiles": 0}  # only the first frame was searched (its face found whole)


def test_a_lost_face_is_found_again(video_front_end, monkeypatch):
    calls = count_searches(video_front_end, monkeypatch)
    frames = list(moving_face_frames(9, 320, 240, face_from=0, face_until=3)) + list(moving_face_frames(3, 320, 240))
    found = [len(video_front_end.process(f, i / 25)) for i, f in enumerate(frames)]
    assert found == [1, 1, 1] + [0] * 6 + [1, 1, 1]
    # once to start; then, with no face to follow, the whole frame on every frame until one is back
    assert calls["whole_frame"] == 1 + 6 + 1


def test_a_face_that_jumps_out_of_its_crop_keeps_its_track(video_front_end, monkeypatch, sample_faces):
    # A cut-like jump of most of a face's size: the crop from the last frame misses it, so it is
    # looked for around where it was, and the track (and its filter) carries on without a search.
    photo = sample_faces["grace_hopper"][0]
    frames = []
    for cx in (120, 120, 190):
        frame = background(240, 360)
        place(frame, photo, 110, cx, 120)
        frames.append(frame)
    video_front_end.process(frames[0], 0.0)
    track = video_front_end._tracks[0]
    calls = count_searches(video_front_end, monkeypatch)
    looked_around = []
    reacquire = video_front_end._reacquire
    monkeypatch.setattr(video_front_end, "_reacquire", lambda *a: looked_around.append(1) or reacquire(*a))
    video_front_end.process(frames[1], 0.04)
    faces = video_front_end.process(frames[2], 0.08)
    assert len(faces) == 1 and video_front_end._tracks == [track]
    assert calls == {"whole_frame": 0, "tiles": 0} and looked_around == [1]
    assert face_centre_and_height(faces[0].landmarks)[0] > 150  # it followed the face (smoothed: not all the way)


def test_faces_of_a_filmed_group_photo_are_followed(mediapipe, monkeypatch):
    """A real group photo filmed by a moving camera (pan, zoom, roll): every face followed in every frame."""
    from hida_rt.face import FaceFrontEnd, Smoothing

    photo, placed = group_photo(1920, 1080)
    # Brisk for a camera: the smallest faces move by up to a fifth of their height per frame.
    frames, matrices = filmed(photo, 12, 1280, 720, pan=0.02, zoom=0.05, degrees=1.5)
    with FaceFrontEnd(max_faces=8, smoothing=Smoothing()) as fe:
        calls = count_searches(fe, monkeypatch)
        for i, (frame, m) in enumerate(zip(frames, matrices)):
            faces = fe.process(frame, i / 25)
            where = [moved(p, m) for p in placed]
            hits = match([f.landmarks for f in faces], where)
            assert len(faces) == 7 and None not in hits and len(set(hits)) == 7, (i, hits)  # all seven, 30 to 110 px high
            for p, k in zip(where, hits):
                x, y, h = face_centre_and_height(faces[k].landmarks)
                # the One-Euro filter lags a moving face a little
                assert abs(x - p.cx) < 0.3 * p.height and abs(y - p.cy) < 0.3 * p.height, (i, p, x, y)
                assert h == pytest.approx(p.height, rel=0.25)
    # seven of eight: new faces are still looked for, but only every few frames, a slice of the tiles each time
    assert calls["tiles"] <= 1 + len(frames) // fe.search_every
    assert calls["whole_frame"] <= 1 + len(frames) // fe.search_every


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
    calls = count_searches(video_front_end, monkeypatch)
    video_front_end.process(frames[1], 0.04)
    assert calls["whole_frame"] == 0  # tracked
    video_front_end.reset()
    video_front_end.process(frames[1], 0.08)
    assert calls["whole_frame"] == 1
