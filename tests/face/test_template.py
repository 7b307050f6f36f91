"""The alignment template and its similarity warp (plain NumPy; the sample-crop check needs MediaPipe)."""
import math

import numpy as np
import pytest

from hida_rt.face.template import EYES, alignment_matrix, matrix_scale, transform_points


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_template_matches_the_training_crops(name, sample_faces, still_front_end):
    # The shipped samples are aligned as the training crops are: the eyes the mesh finds in them must sit
    # on the template (not the template compared with its own constants).
    from hida_rt.face.landmarks import eye_centres

    photo, _ = sample_faces[name]
    still_front_end.reset()
    faces = still_front_end.process(photo)
    assert faces, f"no face found in the {name} sample"
    left, right = eye_centres(faces[0].landmarks)
    np.testing.assert_allclose(np.array([left, right]), EYES, atol=4.0)


@pytest.mark.parametrize("angle_deg, scale, shift", [(0, 1, (0, 0)), (30, 2.5, (400, -60)), (-75, 0.4, (10, 900))])
def test_eyes_land_on_the_template(angle_deg, scale, shift):
    a = math.radians(angle_deg)
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    left, right = EYES @ rot.T + shift
    m = alignment_matrix(left, right)
    np.testing.assert_allclose(transform_points(m, np.array([left, right])), EYES, atol=1e-9)
    # a similarity: no shear, uniform scale undoing the placement
    np.testing.assert_allclose(m[:, :2] @ m[:, :2].T, np.eye(2) / scale**2, atol=1e-12)
    assert matrix_scale(m) == pytest.approx(1 / scale)


def test_z_scales_with_the_face():
    m = alignment_matrix([0, 0], [46.08, 0])  # half the template distance: everything doubles
    out = transform_points(m, np.array([[0.0, 0.0, -10.0]]))
    assert out[0, 2] == pytest.approx(-20.0)


def test_coincident_eyes_are_rejected():
    with pytest.raises(ValueError):
        alignment_matrix([5, 5], [5, 5])
