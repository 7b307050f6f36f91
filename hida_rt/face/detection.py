"""Finding faces in a whole frame with MediaPipe's two BlazeFace detectors, at two scales.

Each detector sees a frame shrunk to its small input (128² short range,
192² full range), so on its own it finds only faces that are large in the
frame: about 1/8 of the frame's long side for the short-range model and 1/14
for the full-range one, far from the faces of a group photo. So the frame is
searched at two scales: both detectors on the whole frame (the large faces),
and the short-range detector on overlapping square tiles of 0.3 × the
frame's short side (faces down to about 1/8 of a tile: ~40 px high at 1080p).
The tiles overlap by more than the smallest face the whole-frame pass finds,
so every face is whole in some pass. Boxes found twice are merged by
non-maximum suppression. The extra passes see many more face-like things (a
logo, a cat, a round cell), so each candidate must be found again, with a
high score, by the short-range detector in two upright crops of its own
(confirm()), and then get a mesh from the landmark model (frontend.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._deps import native_stderr_silenced, require_cv2, require_mediapipe
from .landmarks import DETECTION_BOX_TO_CROP, Roi, warp_area

TILE_FRACTION = 0.3  # tile side / the frame's short side
TILE_OVERLAP = 0.35  # of the tile side: more than the smallest face of the whole-frame pass (~0.07 of the long side)
MIN_TILE = 120  # px: below this a tile would be upsampled for the detector; smaller frames get no tiles
NMS_IOU = 0.3
# A candidate is looked at again by the short-range detector in two upright crops around it, of
# these many times its box: the face at about half, then a quarter, of the crop, the model's best
# range. A real face is found again in both with a high score; a false detection of the extra
# passes (a logo, a round blob, a pattern) is not, at one framing or the other.
CONFIRM_BOX_TO_CROP = (2.2, 4.0)
CONFIRM_SCORE = 0.65
CONFIRM_CROP = 256
CONFIRM_CENTRE = 0.2  # of the crop: how far from its centre the face found again may be


@dataclass(frozen=True)
class Candidate:
    """A detector's face box (frame pixels) and score, and the crop the landmark model should look at."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    roi: Roi

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def tile_grid(width: int, height: int) -> list[tuple[int, int, int]]:
    """(x, y, side) of the overlapping square tiles covering a width×height frame; [] for a small frame."""
    side = round(TILE_FRACTION * min(width, height))
    if side < MIN_TILE:
        return []

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        n = math.ceil((length - side) / (side * (1 - TILE_OVERLAP))) + 1
        return [round(i * (length - side) / (n - 1)) for i in range(n)]

    return [(x, y, side) for y in starts(height) for x in starts(width)]


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def suppress(candidates: list[Candidate], threshold: float = NMS_IOU) -> list[Candidate]:
    """Non-maximum suppression: the best-scoring box of each group of overlapping ones."""
    kept: list[Candidate] = []
    for c in sorted(candidates, key=lambda c: -c.score):
        if all(iou(c.box, k.box) < threshold for k in kept):
            kept.append(c)
    return kept


class FaceDetector:
    """Both MediaPipe face detectors; one thread owns it (MediaPipe graphs are not thread-safe)."""

    def __init__(self, min_confidence: float = 0.5):
        mp = require_mediapipe()
        self._cv2 = require_cv2()
        with native_stderr_silenced():
            self._short = mp.solutions.face_detection.FaceDetection(model_selection=0,
                                                                   min_detection_confidence=min_confidence)
            self._full = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                  min_detection_confidence=min_confidence)
            # Graphs open their calculators (and log) on worker threads after the constructor returns.
            for graph in (self._short, self._full):
                graph.process(np.zeros((128, 128, 3), np.uint8))

    def close(self) -> None:
        for graph in (self._short, self._full):
            graph.close()

    def whole_frame(self, frame: np.ndarray) -> list[Candidate]:
        """The large faces: both detectors on the whole frame, merged."""
        return suppress(self._run(self._short, frame, 0, 0) + self._run(self._full, frame, 0, 0))

    def tiles(self, frame: np.ndarray, tiles: list[tuple[int, int, int]]) -> list[Candidate]:
        """The small faces: the short-range detector on each (x, y, side) tile, merged."""
        found = []
        for x, y, side in tiles:
            found += self._run(self._short, np.ascontiguousarray(frame[y:y + side, x:x + side]), x, y)
        return suppress(found)

    def confirm(self, frame: np.ndarray, candidate: Candidate) -> Candidate | None:
        """The candidate found again in upright crops around it (with the finer box of the first), or None."""
        found = None
        for k in CONFIRM_BOX_TO_CROP:
            side = candidate.roi.side * k / DETECTION_BOX_TO_CROP
            again = self.around(frame, candidate.roi, side, CONFIRM_CENTRE)
            if again is None or again.score < CONFIRM_SCORE:
                return None
            found = found or again
        return found

    def around(self, frame: np.ndarray, roi: Roi, side: float, reach: float) -> Candidate | None:
        """The short-range detector in an upright side×side crop centred on roi: the face found
        nearest the centre, within reach × side of it, or None."""
        cv2 = self._cv2
        view = Roi(roi.cx, roi.cy, side, roi.roll)
        m = view.crop_matrix(CONFIRM_CROP)
        crop = warp_area(cv2, frame, m, CONFIRM_CROP, cv2.BORDER_CONSTANT)
        centre = CONFIRM_CROP / 2
        best = None
        for c in self._run(self._short, crop, 0, 0):
            d = math.hypot(c.roi.cx - centre, c.roi.cy - centre)
            if d < reach * CONFIRM_CROP and (best is None or d < best[0]):
                best = (d, c)
        if best is None:
            return None
        c = best[1]
        # Back to frame pixels: the crop is a similarity (scale, roll) of the frame.
        inverse = cv2.invertAffineTransform(m)
        scale = side / CONFIRM_CROP
        cx, cy = inverse[:, :2] @ np.array([c.roi.cx, c.roi.cy]) + inverse[:, 2]
        half = c.size * scale / 2
        return Candidate((cx - half, cy - half, cx + half, cy + half), c.score,
                         Roi(float(cx), float(cy), c.roi.side * scale, roi.roll + c.roi.roll))

    @staticmethod
    def _run(detector, image: np.ndarray, x0: int, y0: int) -> list[Candidate]:
        h, w = image.shape[:2]
        result = detector.process(image)
        out = []
        for det in result.detections or ():
            loc = det.location_data
            b = loc.relative_bounding_box
            kp = loc.relative_keypoints  # 0: subject's right eye (image left), 1: left eye
            box = (x0 + b.xmin * w, y0 + b.ymin * h, x0 + (b.xmin + b.width) * w, y0 + (b.ymin + b.height) * h)
            roll = math.atan2((kp[1].y - kp[0].y) * h, (kp[1].x - kp[0].x) * w)
            side = max(b.width * w, b.height * h) * DETECTION_BOX_TO_CROP
            roi = Roi((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, side, roll)
            out.append(Candidate(box, float(det.score[0]), roi))
        return out
