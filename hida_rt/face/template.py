"""The aligned-face template HIDA was trained on, and the similarity warp onto it.

The training crops (and the repo's samples/) put both eye centres on the
line y = 0.40·256, 0.36·256 apart, centred horizontally.
"""
from __future__ import annotations

import numpy as np

SIZE = 256
EYE_Y = 0.40 * SIZE
EYE_DISTANCE = 0.36 * SIZE
# Image-left eye first (the subject's right eye on a frontal face).
EYES = np.array([[SIZE / 2 - EYE_DISTANCE / 2, EYE_Y], [SIZE / 2 + EYE_DISTANCE / 2, EYE_Y]])


def alignment_matrix(image_left_eye, image_right_eye, size: int = SIZE) -> np.ndarray:
    """2×3 similarity (rotation, uniform scale, shift) taking the two eye centres onto the template.

    Two points fix a similarity exactly, so there is no fit to do; a full
    affine would shear the face.
    """
    left = np.asarray(image_left_eye, dtype=np.float64)[:2]
    right = np.asarray(image_right_eye, dtype=np.float64)[:2]
    d = right - left
    dist = float(np.hypot(*d))
    if dist < 1e-6:
        raise ValueError("eye centres coincide")
    scale = EYE_DISTANCE * (size / SIZE) / dist
    c, s = d / dist
    linear = scale * np.array([[c, s], [-s, c]])
    target_mid = EYES.mean(axis=0) * (size / SIZE)
    shift = target_mid - linear @ ((left + right) / 2)
    return np.hstack([linear, shift[:, None]])


def matrix_scale(matrix: np.ndarray) -> float:
    """The uniform scale factor of a similarity matrix."""
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2×3 similarity to (N, 2) or (N, 3) points; z is scaled with x and y."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, :2] = points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    if out.shape[1] > 2:
        out[:, 2:] *= matrix_scale(matrix)
    return out
