"""The optional `face` extra: MediaPipe 0.10.21 (bundled face models) and OpenCV.

Imported lazily so that `import hida_rt` never needs them; a missing piece
becomes one MissingDependency line carrying the exact install commands.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import io
import os
import sys
import warnings
from types import ModuleType

from ..errors import MissingDependency

# 0.10.21 is the last MediaPipe whose wheel bundles the .tflite models of
# mp.solutions (later ones download them at run time, impossible offline).
# --no-deps because its metadata drags in jax, opencv-contrib and sounddevice,
# none of which the face solutions use; matplotlib it does import at start-up
# (solutions.drawing_utils). Its metadata also says protobuf<5, but onnx 1.23
# needs protobuf>=6.31.1; MediaPipe's face graphs run on protobuf 6 (7 removed
# FieldDescriptor.label, which MediaPipe's option handling reads).
FACE_INSTALL = (
    'pip install --no-deps mediapipe==0.10.21 && '
    'pip install absl-py attrs flatbuffers "protobuf>=6.31.1,<7" numpy "opencv-python-headless<5" matplotlib'
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
        with native_stderr_silenced():
            mp = importlib.import_module("mediapipe")
        importlib.import_module("mediapipe.python.solutions.face_mesh")
        importlib.import_module("mediapipe.python.solutions.face_detection")
    except ImportError as e:
        raise MissingDependency(
            f"the face front end needs MediaPipe 0.10.21 ({e}); install it with: {FACE_INSTALL}"
        ) from None
    protobuf = importlib.metadata.version("protobuf")
    if int(protobuf.split(".")[0]) >= 7:
        raise MissingDependency(
            f'MediaPipe 0.10.21 cannot build its graphs with protobuf {protobuf}; pip install "protobuf>=6.31.1,<7"'
        )
    return mp


@contextlib.contextmanager
def _mediapipe_warnings_ignored():
    # protobuf 6 deprecates FieldDescriptor.label, which MediaPipe reads while
    # building a graph: a warning the user can do nothing about.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mediapipe\.|google\.protobuf")
        yield


@contextlib.contextmanager
def native_stderr_silenced():
    """Drop what MediaPipe writes to stderr while the block runs.

    Its C++ side logs start-up chatter straight to file descriptor 2 (TFLite
    "Created delegate", absl "W0000 ... Feedback manager ..."), which no
    environment variable turns off, and its bindings print a harmless
    pybind11_protobuf "GetPrototype" error on import with protobuf >= 5. All
    of it comes once, while graphs are built and first run, and would break
    the CLIs' one-line output and progress bars. Other threads' stderr is lost
    too for that moment, so keep the block short.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to protect
        with _mediapipe_warnings_ignored():
            yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with contextlib.redirect_stderr(io.StringIO()), _mediapipe_warnings_ignored():
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
