"""Group-like photos composed from real portraits, with every face's place known.

Real faces (public-domain portraits: Grace Hopper from matplotlib's sample
data; Eileen Collins, "astronaut", and the cameraman from scikit-image's
bundled data) are cut out as heads with a feathered oval, scaled so the face
(forehead top to chin) is a chosen height, and pasted onto a real photo
without faces (scikit-image's coffee, rocket, ...). Tests then know where
every face is and how tall it is, and can count what the detector finds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Portrait:
    image: np.ndarray  # H×W×3 uint8 RGB
    cx: float  # face centre (midway between forehead top and chin), source pixels
    cy: float
    height: float  # forehead top to chin, source pixels


@dataclass(frozen=True)
class PlacedFace:
    cx: float  # face centre in the frame
    cy: float
    height: float  # forehead top to chin in the frame
    source: str


def _skimage_data():
    import pytest

    return pytest.importorskip("skimage.data", reason="scikit-image (test extra: bundled real photos) is missing")


def portraits() -> dict[str, Portrait]:
    """The source faces. Face geometry measured once on each image (mesh points 10 and 152)."""
    from matplotlib import cbook

    data = _skimage_data()
    hopper = np.array(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    astronaut = data.astronaut()
    camera = np.repeat(data.camera()[:, :, None], 3, axis=2)
    return {
        "hopper": Portrait(hopper, 266, 233, 205),
        "astronaut": Portrait(astronaut, 224, 123, 107),
        "cameraman": Portrait(camera, 242, 162, 65),
    }


def mirrored(p: Portrait) -> Portrait:
    w = p.image.shape[1]
    return Portrait(np.ascontiguousarray(p.image[:, ::-1]), w - 1 - p.cx, p.cy, p.height)


def scene(name: str, width: int, height: int) -> np.ndarray:
    """A real face-free photo from scikit-image's bundled data, resized to cover width×height."""
    data = _skimage_data()
    im = getattr(data, name)()
    if im.ndim == 2:
        im = np.repeat(im[:, :, None], 3, axis=2)
    im = im[:, :, :3]
    scale = max(width / im.shape[1], height / im.shape[0])
    size = (max(width, round(im.shape[1] * scale)), max(height, round(im.shape[0] * scale)))
    big = np.array(Image.fromarray(im).resize(size, Image.BICUBIC))
    y0, x0 = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return np.ascontiguousarray(big[y0:y0 + height, x0:x0 + width])


def paste_head(frame: np.ndarray, p: Portrait, face_height: float, cx: float, cy: float, degrees: float = 0.0) -> None:
    """Paste p's head (a feathered oval around its face) so the face is face_height tall, centred at (cx, cy)."""
    import cv2

    s = face_height / p.height
    m = cv2.getRotationMatrix2D((float(p.cx), float(p.cy)), degrees, s)
    m[:, 2] += [cx - p.cx, cy - p.cy]
    h, w = frame.shape[:2]
    # Head oval in source pixels: hair above the face, a little neck below.
    mask = np.zeros(p.image.shape[:2], np.float32)
    axes = (int(0.78 * p.height), int(0.95 * p.height))
    cv2.ellipse(mask, (int(p.cx), int(p.cy - 0.12 * p.height)), axes, 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.08 * p.height)
    warped = cv2.warpAffine(p.image, m, (w, h), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR)[:, :, None]
    frame[...] = (frame * (1 - alpha) + warped * alpha).round().astype(np.uint8)


# A row-and-a-half layout like a team photo: (face height as a fraction of 1080, x, y as fractions of the frame).
GROUP_LAYOUT = (
    (150 / 1080, 0.16, 0.40, "hopper", False, 0),
    (125 / 1080, 0.40, 0.36, "astronaut", False, 6),
    (100 / 1080, 0.62, 0.42, "hopper", True, -8),
    (80 / 1080, 0.82, 0.38, "astronaut", True, 0),
    (60 / 1080, 0.30, 0.72, "cameraman", False, 0),
    (48 / 1080, 0.55, 0.74, "astronaut", False, -5),
    (40 / 1080, 0.76, 0.72, "hopper", False, 4),
)


def group_photo(width: int = 1920, height: int = 1080, background: str = "coffee",
                layout=GROUP_LAYOUT) -> tuple[np.ndarray, list[PlacedFace]]:
    """A frame with several real faces at known places and sizes (largest 150 px, smallest 40 px at 1080p)."""
    sources = portraits()
    frame = scene(background, width, height)
    placed = []
    for rel_h, fx, fy, name, flip, degrees in layout:
        p = mirrored(sources[name]) if flip else sources[name]
        fh, cx, cy = rel_h * height, fx * width, fy * height
        paste_head(frame, p, fh, cx, cy, degrees)
        placed.append(PlacedFace(cx, cy, fh, name))
    return frame, placed


def face_centre_and_height(landmarks: np.ndarray) -> tuple[float, float, float]:
    """What PlacedFace records, measured on a found face's mesh (points 10: forehead top, 152: chin)."""
    top, chin = landmarks[10, :2], landmarks[152, :2]
    centre = (top + chin) / 2
    return float(centre[0]), float(centre[1]), float(np.hypot(*(chin - top)))


def match(found_landmarks: list[np.ndarray], placed: list[PlacedFace], tolerance: float = 0.3) -> list[int | None]:
    """For each placed face, the index of the found face on it (centre within tolerance·height), or None."""
    measured = [face_centre_and_height(lm) for lm in found_landmarks]
    out = []
    for face in placed:
        hits = [i for i, (x, y, _) in enumerate(measured)
                if np.hypot(x - face.cx, y - face.cy) < tolerance * face.height]
        out.append(hits[0] if hits else None)
    return out


def camera_path(n: int, *, pan: float = 0.08, zoom: float = 0.12, degrees: float = 3.0):
    """Per-frame (dx, dy as fractions of the frame, zoom factor, roll degrees) of a slow hand-held move."""
    for i in range(n):
        s = i / max(n - 1, 1)
        yield (pan * math.sin(math.pi * s), 0.5 * pan * math.sin(2 * math.pi * s), 1 + zoom * s,
               degrees * math.sin(2 * math.pi * s))


def filmed(photo: np.ndarray, n: int, width: int, height: int, **motion) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """n frames of a camera panning, zooming and rolling over `photo`; and each frame's 2×3 matrix (photo -> frame).

    At the start the photo fills the frame (cropped to its aspect ratio, centred); the camera then moves
    by at most `pan` of the frame and zooms in up to 1 + `zoom`, so the view stays inside the photo.
    """
    import cv2

    ph, pw = photo.shape[:2]
    base = max(width / pw, height / ph) * (1 + motion.get("pan", 0.08) * 2)  # margin for the pan
    frames, matrices = [], []
    for dx, dy, z, deg in camera_path(n, **motion):
        m = cv2.getRotationMatrix2D((pw / 2, ph / 2), deg, base * z)
        m[:, 2] += [width / 2 - pw / 2 + dx * width, height / 2 - ph / 2 + dy * height]
        frames.append(cv2.warpAffine(photo, m, (width, height), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT_101))
        matrices.append(m)
    return frames, matrices


def moved(face: PlacedFace, m: np.ndarray) -> PlacedFace:
    """Where a face of the photo is in a frame filmed with matrix m."""
    x, y = m[:, :2] @ np.array([face.cx, face.cy]) + m[:, 2]
    return PlacedFace(float(x), float(y), face.height * float(np.sqrt(abs(np.linalg.det(m[:, :2])))), face.source)
