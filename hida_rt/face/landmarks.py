"""The 478-point MediaPipe face mesh of one face, in original-frame pixels, and the crops it runs on.

MediaPipe's FaceMesh solution runs its own short-range face detector on
every image it is given (static mode), or tracks inside one image stream
(video mode). Neither fits a front end that finds faces itself (see
detection.py) and tracks several of them: so the landmark model runs here
alone, as MediaPipe's FaceLandmarkCpu subgraph does it (same model, op
resolver and decoding, calculators of MediaPipe's own), on an upright crop
that this module cuts around each face: what MediaPipe's face pipeline would
feed the model, the detector's box or the extent of the last landmarks times
1.5, square, turned upright along the eye line. Its face-presence score comes
out with the mesh; below MediaPipe's threshold (0.5) the face is taken as not
there, which is how a tracked face is lost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._deps import native_stderr_silenced, require_cv2, require_mediapipe
from .mesh_topology import LEFT_EYE_CORNERS, N_MESH_POINTS, RIGHT_EYE_CORNERS
from .template import matrix_scale

MODEL_INPUT = 192  # the landmark model's input: the crop is cut at this size, so the graph only converts it
# Face-presence score (the model's own) above which its mesh is taken: MediaPipe's threshold
# for following a face; a new face, not yet tracked, must score higher (see frontend.py).
TRACK_PRESENCE = 0.5
# The crop's side, MediaPipe's rules: 1.5 × the detector's box (brows to mouth) for a new face
# (face_detection_front_detection_to_roi), 1.5 × the extent of its last landmarks (forehead to
# chin) to follow it (face_landmark_landmarks_to_roi). The model's mesh is drawn towards a fixed
# share of its crop: a tighter crop gives a smaller mesh, hence a tighter crop next frame, and a
# track that shrinks away; at MediaPipe's 1.5 it holds.
DETECTION_BOX_TO_CROP = 1.5
LANDMARK_EXTENT_TO_CROP = 1.5
SHRINK_BELOW = 0.8  # a crop shrinking the frame more than this is area-averaged first (warp_area)

# FaceLandmarkCpu (mediapipe/modules/face_landmark, with attention) without its crop, which is
# cut here, and without its fixed presence threshold: the graph hands the presence score out.
_GRAPH = """
input_stream: "IMAGE:image"
input_side_packet: "WITH_ATTENTION:with_attention"
output_stream: "LANDMARKS:landmarks"
output_stream: "PRESENCE:face_presence_score"
node {
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  output_stream: "TENSORS:input_tensors"
  options: {
    [mediapipe.ImageToTensorCalculatorOptions.ext] {
      output_tensor_width: 192
      output_tensor_height: 192
      output_tensor_float_range { min: 0.0 max: 1.0 }
    }
  }
}
node {
  calculator: "FaceLandmarksModelLoader"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_side_packet: "MODEL:model"
}
node {
  calculator: "TfLiteCustomOpResolverCalculator"
  output_side_packet: "OP_RESOLVER:op_resolver"
}
node {
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input_tensors"
  input_side_packet: "MODEL:model"
  input_side_packet: "OP_RESOLVER:op_resolver"
  output_stream: "TENSORS:output_tensors"
  options: {
    [mediapipe.InferenceCalculatorOptions.ext] {
      delegate { xnnpack {} }
    }
  }
}
node {
  calculator: "SplitTensorVectorCalculator"
  input_stream: "output_tensors"
  output_stream: "landmark_tensors"
  output_stream: "face_flag_tensor"
  options: {
    [mediapipe.SplitVectorCalculatorOptions.ext] {
      ranges: { begin: 0 end: 6 }
      ranges: { begin: 6 end: 7 }
    }
  }
}
node {
  calculator: "TensorsToFloatsCalculator"
  input_stream: "TENSORS:face_flag_tensor"
  output_stream: "FLOAT:face_presence_score"
  options {
    [mediapipe.TensorsToFloatsCalculatorOptions.ext] {
      activation: SIGMOID
    }
  }
}
node {
  calculator: "TensorsToFaceLandmarksWithAttention"
  input_stream: "TENSORS:landmark_tensors"
  output_stream: "LANDMARKS:landmarks"
}
"""


@dataclass(frozen=True)
class Roi:
    """An upright square around a face: centre and side in frame pixels, roll in radians."""

    cx: float
    cy: float
    side: float
    roll: float

    def crop_matrix(self, size: int = MODEL_INPUT) -> np.ndarray:
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
    """The crop for the next look at this face: its extent, upright along its eye line."""
    eye_a, eye_b = eye_centres(landmarks)
    roll = math.atan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0])
    c, s = math.cos(roll), math.sin(roll)
    pts = landmarks[:N_MESH_POINTS, :2]
    u = pts[:, 0] * c + pts[:, 1] * s  # coordinates along and across the eye line
    v = -pts[:, 0] * s + pts[:, 1] * c
    mu, mv = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    side = max(u.max() - u.min(), v.max() - v.min()) * LANDMARK_EXTENT_TO_CROP
    return Roi(mu * c - mv * s, mu * s + mv * c, side, roll)


def warp_area(cv2, frame: np.ndarray, matrix: np.ndarray, size: int, border: int) -> np.ndarray:
    """frame warped by a similarity onto size×size, low-pass filtered when it shrinks.

    Bilinear sampling aliases when a large face is shrunk, and aliasing makes
    landmarks and crops flicker from frame to frame. So the part of the frame
    the output covers is first halved (cv2.pyrDown: Gaussian, then every other
    pixel) until the warp left shrinks by less than 2, which then turns and
    places it bilinearly. Its cost is that of the part of the frame, not of
    the frame or of an oversampled output.
    """
    scale = matrix_scale(matrix)
    if scale >= SHRINK_BELOW:
        return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inverse[:, :2].T + inverse[:, 2]
    h, w = frame.shape[:2]
    margin = 4 * int(1 / scale)  # the Gaussians reach past the edge of the part
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + margin, [w, h])
    if x1 - x0 < 8 or y1 - y0 < 8:  # (almost) all outside the frame: nothing to filter
        return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)
    part = frame[y0:y1, x0:x1]
    m = matrix.copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)  # now from `part`'s pixels
    while scale < SHRINK_BELOW / 2 and min(part.shape[:2]) >= 4:
        part = cv2.pyrDown(part)
        m[:, :2] *= 2  # pyrDown's pixel i is centred on pixel 2i of its input
        scale *= 2
    return cv2.warpAffine(part, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)


# A NormalizedLandmark with x, y, z set (and no visibility or presence, as the face mesh leaves
# them) serialises to 17 bytes: the list's field tag and length, then three tagged float32s.
_LANDMARK_RECORD = np.dtype([("tag", "u1"), ("len", "u1"), ("tx", "u1"), ("x", "<f4"), ("ty", "u1"), ("y", "<f4"),
                             ("tz", "u1"), ("z", "<f4")])
_LANDMARK_TAGS = {"tag": 0x0A, "len": 15, "tx": 0x0D, "ty": 0x15, "tz": 0x1D}


def _landmark_array(landmark_list) -> np.ndarray:
    """(N, 3) float64 x, y, z of a NormalizedLandmarkList.

    Read from its serialised bytes in one go when they have the plain layout
    (10x faster than 478 protobuf attribute reads, which hold the GIL the
    other pipeline threads need); field by field otherwise.
    """
    data = landmark_list.SerializeToString()
    if len(data) == _LANDMARK_RECORD.itemsize * len(landmark_list.landmark):
        rec = np.frombuffer(data, dtype=_LANDMARK_RECORD)
        if all((rec[k] == v).all() for k, v in _LANDMARK_TAGS.items()):
            return np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float64)
    return np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float64)


class LandmarkModel:
    """MediaPipe's landmark model (FaceLandmarkCpu, with attention: 478 points) on crops cut here.

    Owned by one thread: a MediaPipe graph is not thread-safe.
    """

    def __init__(self):
        require_mediapipe()
        self._cv2 = require_cv2()
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python.solution_base import SolutionBase

        config = text_format.Parse(_GRAPH, calculator_pb2.CalculatorGraphConfig())
        with native_stderr_silenced():
            self._graph = SolutionBase(graph_config=config, side_inputs={"with_attention": True})
            # The graph opens its calculators (and logs) on its first run.
            self._graph.process(np.zeros((MODEL_INPUT, MODEL_INPUT, 3), np.uint8))

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def crop(self, frame: np.ndarray, roi: Roi) -> tuple[np.ndarray, np.ndarray]:
        """(the model's input crop of roi, the 2×3 matrix frame -> crop)."""
        m = roi.crop_matrix(MODEL_INPUT)
        return warp_area(self._cv2, frame, m, MODEL_INPUT, self._cv2.BORDER_CONSTANT), m

    def landmarks(self, frame: np.ndarray, roi: Roi, min_presence: float = TRACK_PRESENCE) -> np.ndarray | None:
        """The 478 landmarks (x, y, z in frame pixels; smaller z = nearer) of the face in roi, or None
        when the model's face-presence score is below min_presence."""
        crop, crop_m = self.crop(frame, roi)
        result = self._graph.process(crop)
        if result.face_presence_score is None or result.face_presence_score < min_presence:
            return None
        # Normalised by the crop's width and height (z by its width); the crop is square.
        pts = _landmark_array(result.landmarks) * MODEL_INPUT
        inverse = self._cv2.invertAffineTransform(crop_m)
        out = np.empty_like(pts)
        out[:, :2] = pts[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        out[:, 2] = pts[:, 2] / matrix_scale(crop_m)
        return out
