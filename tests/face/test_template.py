"""The alignment template and its similarity warp (plain NumPy: no MediaPipe needed)."""
import math

import numpy as np
import pytest

from hida_rt.face.template import EYES, alignment_matrix, matrix_scale, transform_points


def test_template_matches_the_training_crops():
    # samples README: eye centres at y = 0.40·256, 0.36·256 apart, centred horizontally
    np.testing.assert_allclose(EYES, [[81.92, 102.4], [174.08, 102.4]])


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
