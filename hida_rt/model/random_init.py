"""Random generator weights, initialised the way the authors' `init_weights` does, deterministic in a seed.

xavier-normal conv weights with `gain` (0.02, the authors' init, gives nearly
flat grey sketches; 1.0 gives sketches that span [-1, 1]), zero biases,
BatchNorm weights ~ N(1, gain), DCN weights keeping DCNv2's uniform init,
ACON p1/p2 ~ N(0, 1). The checkpoint writer (hida_rt.random_weights) and
the triton backend's self-check both draw from here.
"""
from __future__ import annotations

import math

import torch

from .generator import full_shapes

AUTHORS_GAIN = 0.02


def _init_tensor(key: str, shape: torch.Size, gen: torch.Generator, gain: float) -> torch.Tensor:
    leaf = key.rsplit(".", 1)[-1]
    owner = key.rsplit(".", 2)[-2] if key.count(".") >= 1 else ""
    if leaf in ("p1", "p2"):
        return torch.randn(shape, generator=gen)
    if leaf == "running_mean":
        return torch.zeros(shape)
    if leaf == "running_var":
        return torch.ones(shape)
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.long)
    if owner in ("bn1", "bn2"):
        return torch.normal(1.0, gain, shape, generator=gen) if leaf == "weight" else torch.zeros(shape)
    if leaf == "bias":
        return torch.zeros(shape)
    t = torch.empty(shape)
    if owner == "dcn":
        # DCNv2's own init; init_weights skips it (its class name has no 'Conv').
        stdv = 1.0 / math.sqrt(shape[1] * shape[2] * shape[3])
        return t.uniform_(-stdv, stdv, generator=gen)
    return torch.nn.init.xavier_normal_(t, gain=gain, generator=gen)


def random_generator_state(seed: int = 0, gain: float = AUTHORS_GAIN) -> dict[str, torch.Tensor]:
    """The complete generator state dict (all 768 tensors), deterministic in `seed`."""
    gen = torch.Generator().manual_seed(seed)
    return {k: _init_tensor(k, s, gen, gain) for k, s in full_shapes().items()}
