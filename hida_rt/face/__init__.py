"""Faces in the wild: detect, align to HIDA's template, estimate depth, paste the sketch back.

Needs the optional `face` extra (MediaPipe 0.10.21 + OpenCV); importing this
package does not, calling into it does, and says how to install it.
"""
from ._deps import FACE_INSTALL
from .frontend import AlignedFace, FaceFrontEnd, prepare_faces
from .paste import paste_all, paste_back
from .smoothing import OneEuroFilter, Smoothing
from .template import alignment_matrix

__all__ = [
    "FACE_INSTALL",
    "AlignedFace",
    "FaceFrontEnd",
    "OneEuroFilter",
    "Smoothing",
    "alignment_matrix",
    "paste_all",
    "paste_back",
    "prepare_faces",
]
