"""Shared fixtures: random checkpoints (written once per session) and sample inputs.

Two checkpoints: `lightning_ckpt` is the authors' layout and init (gain 0.02,
whose sketches are nearly flat grey), `spread_ckpt` a plain state dict with
gain 1.0 whose sketches span [-1, 1], so parity tests compare real signal.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

# Triton kernels run in Triton's interpreter on CPU-only machines; it must be
# chosen before triton is first imported, whichever test folder runs first.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from hida_rt.random_weights import random_generator_state, random_lightning_checkpoint

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


@pytest.fixture(scope="session")
def lightning_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "hida_random.ckpt"
    torch.save(random_lightning_checkpoint(seed=0), path)
    return path


@pytest.fixture(scope="session")
def spread_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "hida_spread.pth"
    torch.save(random_generator_state(seed=1, gain=1.0), path)
    return path


@pytest.fixture(scope="session")
def spread_model(spread_ckpt):
    from hida_rt.checkpoint import load_generator
    return load_generator(spread_ckpt)


@pytest.fixture
def random_inputs():
    """Fresh random inputs each call: photo, depth, style for batch n at h x w."""
    def make(n: int = 1, h: int = 256, w: int = 256, seed: int | None = None):
        g = torch.Generator().manual_seed(seed if seed is not None else int(np.random.randint(2**31)))
        photo = torch.rand(n, 3, h, w, generator=g) * 2 - 1
        depth = torch.rand(n, 1, h, w, generator=g)
        style = torch.softmax(torch.randn(n, 3, generator=g) * 4, dim=1)
        return photo, depth, style
    return make


@pytest.fixture(scope="session")
def sample_pair():
    """The astronaut sample: (photo path, depth path)."""
    return SAMPLES / "astronaut_photo.png", SAMPLES / "astronaut_depth.png"
