"""What hida_rt.video sketches in each frame: the faces (pasted back), or the whole frame."""
from __future__ import annotations

import numpy as np
from PIL import Image

from . import images
from .model import SIZE_MULTIPLE
from .video_io import Frame
from .video_pipeline import Work

# What a frame without a face becomes (--no-face).
NO_FACE_POLICIES = {
    "pass": "the frame as it is",
    "blank": "a white frame (an empty sketch page)",
    "last": "the last face's sketch pasted where that face was (the frame as it is before any face)",
}


class FaceMode:
    """Sketch each face (front end -> aligned photo + depth) and paste it back into the frame."""

    def __init__(self, max_faces: int = 1, smoothing=None, no_face: str = "pass"):
        from .face import FaceFrontEnd, paste_back

        if no_face not in NO_FACE_POLICIES:
            raise ValueError(f"unknown no-face policy {no_face!r}")
        self._front_end = FaceFrontEnd(max_faces=max_faces, smoothing=smoothing)
        self._paste_back = paste_back
        self._no_face = no_face
        self._last: list[tuple[np.ndarray, object]] = []  # (sketch, face) of the last frame with faces

    def prepare(self, frame: Frame) -> Work:
        faces = self._front_end.process(frame.image, frame.time)
        return Work(frame, [images.photo_to_tensor(f.photo) for f in faces],
                    [images.depth_to_tensor(f.depth) for f in faces], context=faces)

    def composite(self, work: Work) -> np.ndarray:
        pairs = list(zip(work.sketches, work.context))
        if pairs:
            self._last = pairs
        elif self._no_face == "blank":
            return np.full_like(work.frame.image, 255)
        elif self._no_face == "last":
            pairs = self._last
        out = work.frame.image
        if pairs:
            out = out.copy()
            for sketch, face in pairs:
                self._paste_back(out, sketch, face, out=out)
        return out

    def close(self) -> None:
        self._front_end.close()


def network_size(height: int, width: int, net_height: int | None = None) -> tuple[int, int]:
    """(H, W) multiples of 256 for a whole frame: the height rounded to the nearest
    multiple (or net_height), the width following the frame's aspect ratio."""
    h = net_height or max(SIZE_MULTIPLE, round(height / SIZE_MULTIPLE) * SIZE_MULTIPLE)
    w = max(SIZE_MULTIPLE, round(width * h / height / SIZE_MULTIPLE) * SIZE_MULTIPLE)
    return h, w


class WholeFrameMode:
    """Sketch the whole frame, resized to multiples of 256, with no face and no depth.

    The depth map is flat 0 everywhere: the value the authors' maps give the
    background, i.e. "no face geometry here", since a frame in general has
    none to estimate. Needs no face extra: resizing is Pillow's.
    """

    def __init__(self, frame_height: int, frame_width: int, net_height: int | None = None):
        self.net_size = network_size(frame_height, frame_width, net_height)
        self._depth = images.depth_to_tensor(np.zeros(self.net_size, np.uint8), self.net_size)

    def prepare(self, frame: Frame) -> Work:
        return Work(frame, [images.photo_to_tensor(frame.image, self.net_size)], [self._depth])

    def composite(self, work: Work) -> np.ndarray:
        fh, fw = work.frame.image.shape[:2]
        grey = np.asarray(Image.fromarray(work.sketches[0]).resize((fw, fh), Image.BILINEAR))
        return np.repeat(grey[:, :, None], 3, axis=2)

    def close(self) -> None:
        pass
