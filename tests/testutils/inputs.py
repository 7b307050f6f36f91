"""Random network inputs for tests: the same maker the build's parity check uses (hida_rt.export.trt_parity).

    photo, depth, style = random_inputs(n, h, w, seed)   # photo in [-1, 1], depth in [0, 1], mixed styles
"""
from __future__ import annotations

import random

import torch


def fresh_seed() -> int:
    return random.SystemRandom().randrange(2**31)


def random_inputs(n: int = 1, h: int = 256, w: int = 256,
                  seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Photo, depth and style for a batch of n at h x w; a fresh seed unless one is given."""
    from hida_rt.export import trt_parity

    _, photo, depth, style = trt_parity.random_inputs(n, h, w, seed=fresh_seed() if seed is None else seed)
    return photo, depth, style
