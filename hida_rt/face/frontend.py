"""The face front end: frame in, aligned 256×256 photo + depth map per face out."""
from __future__ import annotations

import atexit
import functools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ._deps import native_stderr_silenced, require_cv2
from .depth import render_depth
from .detection import Candidate, FaceDetector, tile_grid
from .landmarks import LandmarkModel, Roi, eye_centres, roi_from_landmarks, warp_area
from .smoothing import OneEuroFilter, Smoothing
from .template import SIZE, alignment_matrix, transform_points

# Video: with fewer faces tracked than wanted, look for new ones every this many frames;
# each look covers the whole frame and 1/TILE_SLICES of the tiles, so a full sweep of the
# small-face tiles takes SEARCH_EVERY * TILE_SLICES frames. A lost face is looked for at once.
SEARCH_EVERY = 5
TILE_SLICES = 6
# A tracked face moving more than this fraction of its crop per frame is looked for next where
# it is heading (constant velocity); a slower one where it is.
PREDICT_ABOVE = 0.02
# A tracked face lost from its crop is looked for in a crop of REACQUIRE_CROP × its last one,
# up to REACQUIRE_REACH of that crop's side from where it was.
REACQUIRE_CROP = 3.0
REACQUIRE_REACH = 0.3
# A detection is tried with the landmark model at most this many times beyond max_faces per
# search, largest first, which bounds the cost on a busy frame.
EXTRA_TRIES = 8


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
    roi: Roi  # where to look in the next frame
    smoother: OneEuroFilter
    seen: Roi | None = None  # where the face was in the last frame

    def moved_to(self, roi: Roi) -> None:
        """The face is at roi now: look for it next where it will be if it keeps moving so.

        A face moving faster than a few percent of its size per frame (a pan) would soon leave
        a crop centred on where it was; below that, the step is landmark noise, not motion, and
        following it would only shake the crop.
        """
        if self.seen is not None:
            dx, dy = roi.cx - self.seen.cx, roi.cy - self.seen.cy
            if math.hypot(dx, dy) > PREDICT_ABOVE * roi.side:
                self.seen, self.roi = roi, Roi(roi.cx + dx, roi.cy + dy, roi.side, roi.roll)
                return
        self.seen = self.roi = roi


def check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise InputError(f"expected an H×W×3 uint8 RGB image, got a {got}")
    if min(frame.shape[:2]) < 16:
        raise InputError(f"image of {frame.shape[1]}×{frame.shape[0]} pixels is too small to hold a face")
    return np.ascontiguousarray(frame)


def align(frame: np.ndarray, landmarks: np.ndarray) -> AlignedFace:
    """Cut the template-aligned photo and render its depth map from a face's landmarks.

    Pure OpenCV and NumPy: safe to call from several threads at once.
    """
    cv2 = require_cv2()
    frame = np.ascontiguousarray(frame)
    matrix = alignment_matrix(*eye_centres(landmarks))
    photo = warp_area(cv2, frame, matrix, SIZE, cv2.BORDER_REPLICATE)
    depth = render_depth(transform_points(matrix, landmarks), SIZE)
    return AlignedFace(photo=photo, depth=depth, matrix=matrix, landmarks=landmarks)


def _consistent(candidate: Candidate, roi: Roi) -> bool:
    """The mesh found sits where the detector said, at about its size (else the mesh is of something else)."""
    ratio = roi.side / candidate.roi.side
    near = math.hypot(roi.cx - candidate.roi.cx, roi.cy - candidate.roi.cy) < 0.4 * candidate.roi.side
    return near and 0.5 < ratio < 2.0


class FaceFrontEnd:
    """Detect, align and estimate depth for up to `max_faces` faces per frame.

    smoothing=None treats every call as an unrelated still image: the whole
    frame is searched at both scales (see detection.py) and the faces come
    largest first. With a Smoothing, calls are consecutive frames of one
    video: faces are tracked from frame to frame by the landmark model alone,
    each crop placed where the face is heading. The detectors run on the first
    frame; around a face that left its crop; on the whole frame while a face
    is lost or none is tracked; and every SEARCH_EVERY frames (the whole frame
    and a slice of the tiles) while fewer than max_faces are tracked. The
    landmarks are filtered over time (One-Euro) so the alignment does not
    jitter; pass each frame's timestamp in seconds.

    locate() is the sequential part (tracking state, MediaPipe graphs: one
    thread, frames in order); align() of its landmarks is not and may run on
    other threads. process() is both. Not thread-safe otherwise.
    """

    def __init__(self, max_faces: int = 1, smoothing: Smoothing | None = None, min_confidence: float = 0.5,
                 search_every: int = SEARCH_EVERY):
        if max_faces < 1:
            raise InputError(f"max_faces must be at least 1, got {max_faces}")
        self.max_faces = max_faces
        self.smoothing = smoothing
        self.search_every = max(1, search_every)
        self._detector = FaceDetector(min_confidence)
        self._model = LandmarkModel()
        self.reset()

    def close(self) -> None:
        self._detector.close()
        self._model.close()

    def __enter__(self) -> "FaceFrontEnd":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reset(self) -> None:
        """Forget tracked faces (e.g. at a cut between clips): the next frame is searched in full."""
        self._tracks: list[_Track] = []
        self._fresh = True
        self._since_search = 0
        self._tile_cursor = 0

    def process(self, frame: np.ndarray, timestamp: float | None = None) -> list[AlignedFace]:
        frame = check_frame(frame)
        return [align(frame, lm) for lm in self.locate(frame, timestamp)]

    def locate(self, frame: np.ndarray, timestamp: float | None = None) -> list[np.ndarray]:
        """The landmarks of this frame's faces (smoothed, in video mode); frame already checked."""
        if self.smoothing is None:
            return self._find_all(frame)
        return self._follow(frame, timestamp)

    def _find_all(self, frame: np.ndarray, taken: list[Roi] | None = None) -> list[np.ndarray]:
        """Every face of the frame, up to max_faces, largest first: the whole-frame pass, then the
        tiles if it found fewer (they hold the small faces, which come after the large ones anyway)."""
        taken = list(taken or [])
        found = self._confirm(frame, self._detector.whole_frame(frame), taken)
        if len(found) + len(taken) < self.max_faces:
            h, w = frame.shape[:2]
            taken += [roi_from_landmarks(lm) for lm in found]
            found += self._confirm(frame, self._detector.tiles(frame, tile_grid(w, h)), taken)
        return sorted(found, key=lambda lm: -roi_from_landmarks(lm).side)

    # -- finding faces --------------------------------------------------------------
    def _confirm(self, frame: np.ndarray, candidates: list[Candidate], taken: list[Roi],
                 wanted: int | None = None) -> list[np.ndarray]:
        """Landmarks of the candidates (largest first) the landmark model confirms, not already in `taken`."""
        found: list[np.ndarray] = []
        wanted = self.max_faces - len(taken) if wanted is None else wanted
        tries = 0
        for c in sorted(candidates, key=lambda c: -c.size):
            if len(found) >= wanted or tries >= wanted + EXTRA_TRIES:
                break
            if any(c.roi.overlaps(t) for t in taken):
                continue
            tries += 1
            again = self._detector.confirm(frame, c)
            if again is None:
                continue  # not found again in a crop of its own: a false detection
            lm = self._model.landmarks(frame, again.roi)
            if lm is None or not _consistent(again, roi_from_landmarks(lm)):
                continue  # the landmark model sees no face there
            roi = roi_from_landmarks(lm)
            if not any(roi.overlaps(t) for t in taken):
                found.append(lm)
                taken = taken + [roi]
        return found

    def _reacquire(self, frame: np.ndarray, roi: Roi, taken: list[Roi]) -> np.ndarray | None:
        """A face that moved out of its crop (a fast pan, a turn of the head): looked for around
        where it was, and confirmed as a new one would be; its track and filter carry on."""
        c = self._detector.around(frame, roi, REACQUIRE_CROP * roi.side, REACQUIRE_REACH)
        if c is None:
            return None
        found = self._confirm(frame, [c], taken, wanted=1)
        return found[0] if found else None

    def _search(self, frame: np.ndarray, urgent: bool) -> list[Candidate]:
        """Video, after the first frame: this frame's detections, as the schedule allows ([] when none is due)."""
        h, w = frame.shape[:2]
        tiles = tile_grid(w, h)
        self._since_search += 1
        due = self._since_search >= self.search_every
        if not (urgent or due):
            return []
        found = self._detector.whole_frame(frame)
        if due and tiles:
            n = math.ceil(len(tiles) / TILE_SLICES)
            start = self._tile_cursor % len(tiles)
            found += self._detector.tiles(frame, (tiles + tiles)[start:start + n])
            self._tile_cursor = start + n
        if due:
            self._since_search = 0
        return found

    def _follow(self, frame: np.ndarray, timestamp: float | None) -> list[np.ndarray]:
        kept: list[tuple[_Track, np.ndarray]] = []
        lost = False
        for track in self._tracks:
            lm = self._model.landmarks(frame, track.roi)
            if lm is None:
                lm = self._reacquire(frame, track.seen, [t.seen for t, _ in kept])
            if lm is None:
                lost = True  # the search below may pick it up again
                continue
            roi = roi_from_landmarks(lm)
            if any(roi.overlaps(t.seen) for t, _ in kept):
                continue  # two tracks converged on one face
            track.moved_to(roi)
            kept.append((track, lm))
        if len(kept) < self.max_faces:
            taken = [t.seen for t, _ in kept]
            if self._fresh:  # the first frame (after a reset): searched like a still
                self._fresh, self._since_search = False, 0
                new = self._find_all(frame, taken)
            else:
                new = self._confirm(frame, self._search(frame, urgent=lost or not kept), taken)
            for lm in new:
                roi = roi_from_landmarks(lm)
                # The filter works in units of the face's size at the start of
                # the track, so its settings do not depend on the resolution.
                kept.append((_Track(roi, OneEuroFilter(self.smoothing, unit=roi.side), seen=roi), lm))
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
