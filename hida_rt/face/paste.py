"""Putting a 256×256 sketch back where its face was in the original frame."""
from __future__ import annotations

import functools

import numpy as np

from ._deps import require_cv2

FEATHER = 0.08  # blend ramp width, as a fraction of the aligned square's side


@functools.lru_cache(maxsize=8)
def _feather_mask(size: int, feather: float) -> np.ndarray:
    """1 inside the aligned square, ramping to 0 over its outer `feather`·size pixels."""
    ramp = np.clip((np.arange(size, dtype=np.float32) + 0.5) / max(feather * size, 1e-6), 0, 1)
    edge = np.minimum(ramp, ramp[::-1])
    return np.minimum.outer(edge, edge)


def paste_back(frame: np.ndarray, sketch: np.ndarray, face, *, feather: float = FEATHER, out: np.ndarray | None = None):
    """Warp a sketch of `face` back into `frame` and blend it in with feathered edges.

    frame: H×W×3 uint8; sketch: 256×256 (grey) or 256×256×3 uint8 in the
    aligned frame of `face` (anything with a 2×3 `.matrix`, original ->
    aligned). Returns `out` (a copy of frame unless given; may be frame
    itself). Only the face's bounding box of the frame is touched, so the cost
    does not grow with the frame size.
    """
    cv2 = require_cv2()
    if out is None:
        out = frame.copy()
    elif out is not frame:
        out[...] = frame
    h, w = frame.shape[:2]
    size = sketch.shape[0]
    inverse = cv2.invertAffineTransform(face.matrix)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.floor(corners.min(axis=0)).astype(int).clip(0, [w, h])
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int).clip(0, [w, h])
    if x1 <= x0 or y1 <= y0:
        return out
    # Frame pixel (x0 + i, y0 + j) maps to matrix @ (x0 + i, y0 + j, 1) in the aligned square.
    m = face.matrix.copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    roi_size = (int(x1 - x0), int(y1 - y0))
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(sketch, m, roi_size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(_feather_mask(size, feather), m, roi_size, flags=flags, borderMode=cv2.BORDER_CONSTANT)
    if warped.ndim == 2:
        warped = cv2.cvtColor(warped, cv2.COLOR_GRAY2RGB)
    region = out[y0:y1, x0:x1]
    # One pass in OpenCV: NumPy's float blend of a 1080p face square costs ~20 ms.
    region[...] = cv2.blendLinear(warped, np.ascontiguousarray(region), alpha, 1 - alpha)
    return out


def paste_all(frame: np.ndarray, sketches, faces, *, feather: float = FEATHER) -> np.ndarray:
    """A copy of frame with each sketch pasted back over its face (in order: later ones on top)."""
    out = frame.copy()
    for sketch, face in zip(sketches, faces, strict=True):
        paste_back(out, sketch, face, feather=feather, out=out)
    return out
