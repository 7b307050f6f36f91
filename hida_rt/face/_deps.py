"""The optional `face` extra: MediaPipe 0.10.21 (bundled face models) and OpenCV.

Imported lazily so that `import hida_rt` never needs them; a missing piece
becomes one MissingDependency line carrying the exact install commands.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import MissingDependency

# 0.10.21 is the last MediaPipe whose wheel bundles the .tflite models of
# mp.solutions (later ones download them at run time, impossible offline).
# --no-deps because its metadata drags in jax, opencv-contrib and sounddevice,
# none of which the face solutions use; matplotlib it does import at start-up
# (solutions.drawing_utils).
FACE_INSTALL = (
    'pip install --no-deps mediapipe==0.10.21 && '
    'pip install absl-py attrs flatbuffers "protobuf<5" numpy "opencv-python-headless<5" matplotlib'
)


def require_cv2() -> ModuleType:
    try:
        return importlib.import_module("cv2")
    except ImportError as e:
        raise MissingDependency(f"OpenCV is not installed ({e}); install the face extra: {FACE_INSTALL}") from None


def require_mediapipe() -> ModuleType:
    """Return the mediapipe module, or raise MissingDependency saying how to install it."""
    require_cv2()
    try:
        mp = importlib.import_module("mediapipe")
        importlib.import_module("mediapipe.python.solutions.face_mesh")
        importlib.import_module("mediapipe.python.solutions.face_detection")
    except ImportError as e:
        raise MissingDependency(
            f"the face front end needs MediaPipe 0.10.21 ({e}); install it with: {FACE_INSTALL}"
        ) from None
    return mp
