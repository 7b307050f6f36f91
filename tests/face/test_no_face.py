"""Frames without a face, and inputs that are not images."""
import numpy as np
import pytest
from testutils.synthetic_video import background

from hida_rt.errors import InputError


@pytest.mark.parametrize("frame", [
    background(240, 320),
    np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8),
    np.full((64, 64, 3), 255, np.uint8),
], ids=["wall", "noise", "white"])
def test_no_face_gives_an_empty_list(still_front_end, frame):
    assert still_front_end.process(frame) == []


def test_prepare_faces_names_the_file(mediapipe):
    from hida_rt.face import prepare_faces

    with pytest.raises(InputError, match=r"^no face found in holiday\.jpg$"):
        prepare_faces(background(240, 320), 1, source="holiday.jpg")


def test_prepare_faces_returns_aligned_faces(mediapipe, sample_faces):
    from hida_rt.face import prepare_faces

    faces = prepare_faces(sample_faces["grace_hopper"][0], 1, source="g.png")
    assert len(faces) == 1 and faces[0].photo.shape == (256, 256, 3)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((64, 64), np.uint8), "H×W×3 uint8"),
    (np.zeros((64, 64, 4), np.uint8), "H×W×3 uint8"),
    (np.zeros((64, 64, 3), np.float32), "float32"),
    (np.zeros((8, 8, 3), np.uint8), "too small"),
    ("photo.jpg", "str"),
])
def test_unusable_input_is_one_clear_error(still_front_end, bad, message):
    with pytest.raises(InputError, match=message):
        still_front_end.process(bad)


def test_max_faces_must_be_positive(mediapipe):
    from hida_rt.face import FaceFrontEnd

    with pytest.raises(InputError, match="max_faces"):
        FaceFrontEnd(max_faces=0)
