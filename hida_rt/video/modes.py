"""What hida_rt.video sketches in each frame: the faces (pasted back), or the whole frame."""
from __future__ import annotations

import numpy as np
from PIL import Image

from .. import images
from .io import Frame
from .pipeline import Work

# What a frame without a face becomes (--no-face).
NO_FACE_POLICIES = {
    "pass": "the frame as it is",
    "blank": "a white frame (an empty sketch page)",
    "last": "the last face's sketch pasted where that face was (the frame as it is before any face)",
}


class FaceMode:
    """Sketch each face (front end -> aligned photo + depth) and paste it back into the frame.

    locate() tracks the faces (one thread, frames in order); prepare() cuts and
    renders them and may run on other threads; composite() pastes the sketches
    back into a copy of the frame, or with draw_in_place into the frame's own
    image (when it is writable), for a caller whose frames are used once.
    """

    def __init__(self, max_faces: int = 1, smoothing=None, no_face: str = "pass", *, draw_in_place: bool = False):
        from ..face import FaceFrontEnd, paste_back
        from ..face.frontend import align, check_frame

        if no_face not in NO_FACE_POLICIES:
            raise ValueError(f"unknown no-face policy {no_face!r}")
        self._front_end = FaceFrontEnd(max_faces=max_faces, smoothing=smoothing)
        self._align = align
        self._check = check_frame
        self._paste_back = paste_back
        self._no_face = no_face
        self._in_place = draw_in_place
        self._last: list[tuple[np.ndarray, object]] = []  # (sketch, face) of the last frame with faces

    def reset(self) -> None:
        """Forget tracked faces and the last sketches (a new clip)."""
        self._front_end.reset()
        self._last = []

    def locate(self, frame: Frame) -> list[np.ndarray]:
        """The landmarks of the frame's faces (tracked and smoothed): the sequential part."""
        return self._front_end.locate(self._check(frame.image), frame.time)

    def prepare(self, frame: Frame, located=None) -> Work:
        if located is None:
            located = self.locate(frame)
        faces = [self._align(frame.image, lm) for lm in located]
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
            if not (self._in_place and out.flags.writeable):
                out = out.copy()
            for sketch, face in pairs:
                self._paste_back(out, sketch, face, out=out)
        return out

    def close(self) -> None:
        self._front_end.close()


network_size = images.whole_frame_size  # (H, W) multiples of 256 for a whole frame


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
