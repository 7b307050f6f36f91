"""Face detection and the 478-point mesh with MediaPipe, in original-frame pixels.

MediaPipe's FaceMesh has a detector of its own, but it is the short-range
BlazeFace (128×128 input), which misses faces that are small in a large
frame. So faces are found by FaceDetection here (short range, falling back to
the full-range model when it finds nothing), each face is cut out upright at
a fixed size around its box, and the mesh runs on that crop, whose cost no
longer depends on the frame size. In a video the crop for the next frame
comes from this frame's landmarks, as MediaPipe's own tracker does, so the
detectors run only when a face is lost or missing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._deps import native_stderr_silenced, require_cv2, require_mediapipe
from .mesh_topology import LEFT_EYE_CORNERS, N_MESH_POINTS, RIGHT_EYE_CORNERS
from .template import matrix_scale

CROP = 256  # mesh input crop; FaceMesh resizes its own ROI to 192², so more would be wasted
# Side of the crop relative to the detector's box (brows to mouth) and to the
# extent of the landmarks (forehead to chin). Both leave the face at about
# half the crop, where FaceMesh's inner detector is most reliable.
DETECTION_BOX_TO_CROP = 2.2
LANDMARK_EXTENT_TO_CROP = 1.7


@dataclass(frozen=True)
class Roi:
    """An upright square around a face: centre and side in frame pixels, roll in radians."""

    cx: float
    cy: float
    side: float
    roll: float

    def crop_matrix(self, size: int = CROP) -> np.ndarray:
        """2×3 similarity taking the frame onto the size×size upright crop."""
        scale = size / self.side
        c, s = math.cos(self.roll), math.sin(self.roll)
        linear = scale * np.array([[c, s], [-s, c]])
        shift = np.array([size / 2, size / 2]) - linear @ np.array([self.cx, self.cy])
        return np.hstack([linear, shift[:, None]])

    def overlaps(self, other: "Roi") -> bool:
        """True when the two squares are mostly on the same face."""
        return math.hypot(self.cx - other.cx, self.cy - other.cy) < 0.35 * max(self.side, other.side)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye, image-right eye) centres as eye-corner midpoints, in the landmarks' frame."""
    right = landmarks[list(RIGHT_EYE_CORNERS), :2].mean(axis=0)
    left = landmarks[list(LEFT_EYE_CORNERS), :2].mean(axis=0)
    return right, left


def roi_from_landmarks(landmarks: np.ndarray) -> Roi:
    """The crop for the next video frame: the face's extent, upright along its eye line."""
    eye_a, eye_b = eye_centres(landmarks)
    roll = math.atan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0])
    c, s = math.cos(roll), math.sin(roll)
    pts = landmarks[:N_MESH_POINTS, :2]
    u = pts[:, 0] * c + pts[:, 1] * s  # coordinates along and across the eye line
    v = -pts[:, 0] * s + pts[:, 1] * c
    mu, mv = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    side = max(u.max() - u.min(), v.max() - v.min()) * LANDMARK_EXTENT_TO_CROP
    return Roi(mu * c - mv * s, mu * s + mv * c, side, roll)


class MeshLocator:
    """MediaPipe detectors and mesh, owned by one thread (their graphs are not thread-safe)."""

    def __init__(self, min_confidence: float = 0.5):
        mp = require_mediapipe()
        self._cv2 = require_cv2()
        self._min_confidence = min_confidence
        with native_stderr_silenced():
            self._short_range = mp.solutions.face_detection.FaceDetection(
                model_selection=0, min_detection_confidence=min_confidence
            )
            # static_image_mode: every crop is a fresh image; the tracking between
            # frames is done by the crops themselves (roi_from_landmarks).
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=1,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
            )
            # Graphs open their calculators (and log) on worker threads after
            # the constructor returns; one run waits for all of them.
            blank = np.zeros((CROP, CROP, 3), np.uint8)
            self._short_range.process(blank)
            self._mesh.process(blank)
        self._full_range = None  # built on first need: most inputs never call it
        self._mesh_logged = False  # the mesh logs once more, on its first run that finds a face

    def close(self) -> None:
        for graph in (self._short_range, self._full_range, self._mesh):
            if graph is not None:
                graph.close()

    def detect(self, frame: np.ndarray) -> list[Roi]:
        """Crops around every face found, largest first."""
        rois = self._detect_with(self._short_range, frame)
        if not rois:
            if self._full_range is None:
                mp = require_mediapipe()
                with native_stderr_silenced():
                    self._full_range = mp.solutions.face_detection.FaceDetection(
                        model_selection=1, min_detection_confidence=self._min_confidence
                    )
                    self._full_range.process(np.zeros((CROP, CROP, 3), np.uint8))
            rois = self._detect_with(self._full_range, frame)
        return sorted(rois, key=lambda r: -r.side)

    def _run_mesh(self, crop: np.ndarray):
        if self._mesh_logged:
            return self._mesh.process(crop)
        with native_stderr_silenced():
            result = self._mesh.process(crop)
        self._mesh_logged = bool(result.multi_face_landmarks)
        return result

    @staticmethod
    def _detect_with(detector, frame: np.ndarray) -> list[Roi]:
        h, w = frame.shape[:2]
        result = detector.process(frame)
        rois = []
        for det in result.detections or ():
            loc = det.location_data
            box = loc.relative_bounding_box
            kp = loc.relative_keypoints  # 0: subject's right eye (image left), 1: left eye
            roll = math.atan2((kp[1].y - kp[0].y) * h, (kp[1].x - kp[0].x) * w)
            side = max(box.width * w, box.height * h) * DETECTION_BOX_TO_CROP
            rois.append(Roi((box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h, side, roll))
        return rois

    def landmarks(self, frame: np.ndarray, roi: Roi) -> np.ndarray | None:
        """The 478 landmarks (x, y, z in frame pixels; smaller z = nearer) of the face in roi, or None."""
        cv2 = self._cv2
        crop_m = roi.crop_matrix()
        crop = cv2.warpAffine(frame, crop_m, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        result = self._run_mesh(crop)
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        # MediaPipe normalises x by width, y by height and z by width; the crop is square.
        pts = np.array([(p.x, p.y, p.z) for p in lm], dtype=np.float64) * CROP
        inverse = cv2.invertAffineTransform(crop_m)
        out = np.empty_like(pts)
        out[:, :2] = pts[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        out[:, 2] = pts[:, 2] / matrix_scale(crop_m)
        return out
