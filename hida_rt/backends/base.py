"""The one interface every backend implements.

Inputs: photo N x 3 x H x W in [-1, 1], depth N x 1 x H x W in [0, 1], style
N x 3 (generator channel order, see hida_rt.styles); H and W multiples of
256. Output: sketch N x 1 x H x W in [-1, 1]. Torch tensors come back as
float32 torch tensors on the photo's device; NumPy arrays come back as NumPy.
"""
from __future__ import annotations

import abc
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..errors import InputError
from ..model import SIZE_MULTIPLE


def check_inputs(photo: torch.Tensor, depth: torch.Tensor, style: torch.Tensor) -> None:
    """Raise InputError unless the three tensors fit the model's contract."""
    if photo.ndim != 4 or photo.shape[1] != 3:
        raise InputError(f"photo must be N x 3 x H x W, got {tuple(photo.shape)}")
    n, _, h, w = photo.shape
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or h == 0 or w == 0:
        raise InputError(f"image size {h}x{w} is not a multiple of {SIZE_MULTIPLE} "
                         f"(the network has 8 stride-2 stages); resize to e.g. 256x256")
    if tuple(depth.shape) != (n, 1, h, w):
        raise InputError(f"depth must be {n} x 1 x {h} x {w} to match the photo, got {tuple(depth.shape)}")
    if tuple(style.shape) != (n, 3):
        raise InputError(f"style must be {n} x 3, got {tuple(style.shape)}")


class Backend(abc.ABC):
    """A way to run HIDA. Subclasses set `name` and implement `_run` (and `unavailable_reason`)."""

    name: ClassVar[str]

    def __init__(self, weights: str | Path, **options):
        self.weights = Path(weights) if weights is not None else None

    @classmethod
    def unavailable_reason(cls, **options) -> str | None:
        """Why this backend cannot run here (one line), or None if it can. Cheap: no model loading."""
        return None

    @classmethod
    def self_check(cls, recheck: bool = False, cached_only: bool = False, **options):
        """This backend's first-use self-check verdict here (hida_rt.self_check.Verdict), probing if none is
        cached for this GPU and these versions (always with `recheck`; never with `cached_only`, which
        answers None then); None for a backend with nothing to check. hida_rt.backends.choose calls it
        before choosing the backend."""
        return None

    @classmethod
    def prepare(cls, weights, height: int, width: int, progress: bool = True, **options) -> dict:
        """Work done once before many processes (Ray actors, replicas) load this backend, so they do not
        all repeat it; returns the options to pass them instead (e.g. a file it exported)."""
        return {}

    @abc.abstractmethod
    def _run(self, photo: torch.Tensor, depth: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Checked float32 inputs in, sketch out (any device; `run` moves it)."""

    def run(self, photo, depth, style):
        as_numpy = isinstance(photo, np.ndarray)
        p, d, s = (torch.from_numpy(np.asarray(t)) if isinstance(t, np.ndarray) else t for t in (photo, depth, style))
        check_inputs(p, d, s)
        out = self._run(p.float(), d.float(), s.float())
        if as_numpy:
            return out.detach().float().cpu().numpy()
        return out.float().to(p.device)

    __call__ = run

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weights={str(self.weights)!r})"
