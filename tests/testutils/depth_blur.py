"""Checking that a depth tensor is the authors' blur of a depth map, against OpenCV (independent of
hida_rt.images), and spying on the depth tensors a backend is given."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def reference(depth_uint8: np.ndarray, size=(256, 256)) -> np.ndarray:
    """Resized like the network input (Pillow bilinear), in [0, 1], then OpenCV's 5×5 Gaussian, sigma 0.2."""
    import cv2

    im = Image.fromarray(depth_uint8)
    if im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    return cv2.GaussianBlur(np.asarray(im, np.float32) / 255, (5, 5), 0.2)


def close_to_blurred(tensor: torch.Tensor, depth_uint8: np.ndarray, size=(256, 256)) -> bool:
    got = tensor.reshape(size).numpy()
    ref = reference(depth_uint8, size)
    unblurred = np.asarray(Image.fromarray(depth_uint8).resize((size[1], size[0]), Image.BILINEAR)
                           if depth_uint8.shape != size else depth_uint8, np.float32) / 255
    # The blur is slight (sigma 0.2 px: the neighbours weigh 3.7e-6), so the test is tight.
    return np.abs(got - ref).max() < 3e-7 and np.abs(got - unblurred).max() > 1e-6


class Spy:
    """Records the depth tensors the eager backend is given."""

    def __init__(self, monkeypatch):
        from hida_rt.backends.eager import EagerBackend

        self.depths = []
        real = EagerBackend._run

        def run(backend, photo, depth, style):
            self.depths.extend(depth.detach().cpu().clone())
            return real(backend, photo, depth, style)

        monkeypatch.setattr(EagerBackend, "_run", run)
