"""Eager PyTorch: the reference backend (CPU or GPU, FP32 by default)."""
from __future__ import annotations

import torch

from ..checkpoint import load_generator
from ..errors import BackendUnavailable, CheckpointError
from .base import Backend
from .devices import parse_device

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def pick_device(device: str | torch.device | None) -> torch.device:
    device = parse_device(device)
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    return device


class EagerBackend(Backend):
    name = "eager"

    def __init__(self, weights, device=None, dtype: str = "fp32", **options):
        super().__init__(weights)
        if weights is None:
            raise CheckpointError("the eager backend needs --weights (a HIDA .ckpt/.pth)")
        if dtype not in DTYPES:
            raise BackendUnavailable(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
        self.device = pick_device(device)
        self.dtype = DTYPES[dtype]
        self.model = load_generator(weights, self.device).to(self.dtype)

    @classmethod
    def unavailable_reason(cls, device=None, **options) -> str | None:
        try:
            pick_device(device)
        except BackendUnavailable as e:
            return str(e)
        return None

    @torch.inference_mode()
    def _run(self, photo, depth, style):
        t = dict(device=self.device, dtype=self.dtype)
        return self.model(photo.to(**t), depth.to(**t), style.to(**t))


BACKEND = EagerBackend
