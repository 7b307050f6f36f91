"""Detection and alignment on the sample faces, as given and placed in larger frames."""
import numpy as np
import pytest
from testutils.synthetic_video import background, place

from hida_rt.face.landmarks import eye_centres
from hida_rt.face.template import EYES, transform_points


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_sample_faces_are_already_aligned(still_front_end, sample_faces, name):
    photo, _ = sample_faces[name]
    faces = still_front_end.process(photo)
    assert len(faces) == 1
    face = faces[0]
    assert face.photo.shape == (256, 256, 3) and face.photo.dtype == np.uint8
    assert face.depth.shape == (256, 256) and face.depth.dtype == np.uint8
    assert face.landmarks.shape == (478, 3)
    # The samples were cut with this template (from the full-size originals), so
    # re-aligning them is close to the identity: eyes found where the template has them.
    np.testing.assert_allclose(np.array(eye_centres(face.landmarks)), EYES, atol=3.0)
    np.testing.assert_allclose(face.matrix[:, :2], np.eye(2), atol=0.04)
    # and the aligned eyes sit exactly on the template
    np.testing.assert_allclose(transform_points(face.matrix, np.array(eye_centres(face.landmarks))), EYES, atol=1e-6)


@pytest.mark.parametrize("size, side, degrees", [((480, 640), 300, 20), ((720, 1280), 200, -12), ((1080, 1920), 240, 0)])
def test_face_in_a_larger_frame_is_cut_back_out(still_front_end, sample_faces, size, side, degrees):
    photo, _ = sample_faces["astronaut"]
    frame = background(*size)
    placed = place(frame, photo, side, size[1] * 0.6, size[0] * 0.45, degrees)
    faces = still_front_end.process(frame)
    assert len(faces) == 1
    face = faces[0]
    # aligned = matrix ∘ placement ≈ the identity on the sample, so the crop is the sample again
    composed = face.matrix[:, :2] @ placed[:, :2]
    np.testing.assert_allclose(composed, np.eye(2), atol=0.05)
    centre = slice(64, 192)  # inside the face, away from the frame background the border may show
    diff = np.abs(face.photo[centre, centre].astype(int) - photo[centre, centre].astype(int))
    assert diff.mean() < 12, diff.mean()


def test_two_faces_largest_first(still_front_end, sample_faces):
    frame = background(480, 800)
    place(frame, sample_faces["astronaut"][0], 200, 200, 240, 0)
    place(frame, sample_faces["grace_hopper"][0], 300, 560, 240, 0)
    faces = still_front_end.process(frame)  # max_faces=2
    assert len(faces) == 2
    xs = [transform_points(np.linalg.inv(np.vstack([f.matrix, [0, 0, 1]]))[:2], EYES).mean(axis=0)[0] for f in faces]
    assert xs[0] > 400 > xs[1]  # grace_hopper (larger, right) first


def test_max_faces_keeps_the_largest(mediapipe, sample_faces):
    from hida_rt.face import FaceFrontEnd

    frame = background(480, 800)
    place(frame, sample_faces["astronaut"][0], 300, 200, 240, 0)
    place(frame, sample_faces["grace_hopper"][0], 180, 600, 240, 0)
    with FaceFrontEnd(max_faces=1) as fe:
        faces = fe.process(frame)
    assert len(faces) == 1
    assert np.linalg.det(faces[0].matrix[:, :2]) ** 0.5 == pytest.approx(256 / 300, rel=0.08)
