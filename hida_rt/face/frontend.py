"""The face front end: frame in, aligned 256×256 photo + depth map per face out."""
from __future__ import annotations

import atexit
import functools
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ._deps import native_stderr_silenced, require_cv2
from .depth import render_depth
from .landmarks import MeshLocator, Roi, eye_centres, roi_from_landmarks
from .smoothing import OneEuroFilter, Smoothing
from .template import SIZE, alignment_matrix, matrix_scale, transform_points


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """One face, aligned to HIDA's template.

    photo: (256, 256, 3) uint8 RGB; depth: (256, 256) uint8, bright = near,
    0 = background; matrix: 2×3 similarity taking original-frame pixels to
    aligned pixels; landmarks: (478, 3) float64 MediaPipe mesh in
    original-frame pixels (z: smaller = nearer, in the same units as x).
    """

    photo: np.ndarray
    depth: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray


@dataclass
class _Track:
    roi: Roi
    smoother: OneEuroFilter


def check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise InputError(f"expected an H×W×3 uint8 RGB image, got a {got}")
    if min(frame.shape[:2]) < 16:
        raise InputError(f"image of {frame.shape[1]}×{frame.shape[0]} pixels is too small to hold a face")
    return np.ascontiguousarray(frame)


def align(frame: np.ndarray, landmarks: np.ndarray) -> AlignedFace:
    """Cut the template-aligned photo and render its depth map from a face's landmarks."""
    cv2 = require_cv2()
    matrix = alignment_matrix(*eye_centres(landmarks))
    # Bilinear sampling aliases when shrinking a large face; sample at an
    # integer multiple of 256 and area-average down instead.
    oversample = min(4, max(1, int(1 / matrix_scale(matrix))))
    big = matrix * np.array([[oversample], [oversample]])
    photo = cv2.warpAffine(
        frame, big, (SIZE * oversample, SIZE * oversample), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if oversample > 1:
        photo = cv2.resize(photo, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    depth = render_depth(transform_points(matrix, landmarks), SIZE)
    return AlignedFace(photo=photo, depth=depth, matrix=matrix, landmarks=landmarks)


class FaceFrontEnd:
    """Detect, align and estimate depth for up to `max_faces` faces per frame.

    smoothing=None treats every call as an unrelated still image (faces are
    detected afresh, largest first). With a Smoothing, calls are consecutive
    frames of one video: faces are tracked from frame to frame and their
    landmarks filtered over time (One-Euro), so the alignment does not
    jitter; pass each frame's timestamp in seconds to process().

    Not thread-safe: use one instance per thread (MediaPipe graphs).
    """

    def __init__(self, max_faces: int = 1, smoothing: Smoothing | None = None, min_confidence: float = 0.5):
        if max_faces < 1:
            raise InputError(f"max_faces must be at least 1, got {max_faces}")
        self.max_faces = max_faces
        self.smoothing = smoothing
        self._locator = MeshLocator(min_confidence)
        self._tracks: list[_Track] = []

    def close(self) -> None:
        self._locator.close()

    def __enter__(self) -> "FaceFrontEnd":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reset(self) -> None:
        """Forget tracked faces (e.g. at a cut between clips)."""
        self._tracks = []

    def process(self, frame: np.ndarray, timestamp: float | None = None) -> list[AlignedFace]:
        frame = check_frame(frame)
        if self.smoothing is None:
            return [align(frame, lm) for lm in self._find_new(frame, [])]
        return [align(frame, lm) for lm in self._follow(frame, timestamp)]

    def _find_new(self, frame: np.ndarray, taken: list[Roi]) -> list[np.ndarray]:
        """Landmarks of faces the detectors find that are not already in `taken`."""
        found: list[np.ndarray] = []
        wanted = self.max_faces - len(taken)
        for roi in self._locator.detect(frame):
            if len(found) >= wanted:
                break
            if any(roi.overlaps(t) for t in taken):
                continue
            lm = self._locator.landmarks(frame, roi)
            if lm is not None:
                face_roi = roi_from_landmarks(lm)
                if not any(face_roi.overlaps(t) for t in taken):
                    found.append(lm)
                    taken = taken + [face_roi]
        return found

    def _follow(self, frame: np.ndarray, timestamp: float | None) -> list[np.ndarray]:
        kept: list[tuple[_Track, np.ndarray]] = []
        for track in self._tracks:
            lm = self._locator.landmarks(frame, track.roi)
            if lm is None:
                continue  # lost: the detectors below may pick it up again
            roi = roi_from_landmarks(lm)
            if any(roi.overlaps(t.roi) for t, _ in kept):
                continue  # two tracks converged on one face
            track.roi = roi
            kept.append((track, lm))
        if len(kept) < self.max_faces:
            for lm in self._find_new(frame, [t.roi for t, _ in kept]):
                roi = roi_from_landmarks(lm)
                # The filter works in units of the face's size at the start of
                # the track, so its settings do not depend on the resolution.
                kept.append((_Track(roi, OneEuroFilter(self.smoothing, unit=roi.side)), lm))
        self._tracks = [t for t, _ in kept]
        return [t.smoother(lm, timestamp) for t, lm in kept]


@functools.lru_cache(maxsize=4)
def _still_front_end(max_faces: int) -> FaceFrontEnd:
    front_end = FaceFrontEnd(max_faces=max_faces)
    # Torn down by the interpreter at exit, MediaPipe's graphs can print a stray
    # pybind11_protobuf error after a CLI's one-line message: close them silenced.
    atexit.register(_close_silenced, front_end)
    return front_end


def _close_silenced(front_end: FaceFrontEnd) -> None:
    with native_stderr_silenced():
        front_end.close()


def prepare_faces(rgb: np.ndarray, max_faces: int = 1, *, source: str = "the image") -> list[AlignedFace]:
    """Aligned faces of a still photo for the sketch CLI; InputError if there is none.

    `source` names the photo in the error ("no face found in photo.jpg").
    The MediaPipe graphs are built once per max_faces and reused across calls
    (so, like them, this is for one thread).
    """
    faces = _still_front_end(max_faces).process(rgb)
    if not faces:
        raise InputError(f"no face found in {source}")
    return faces
