"""Small host-side helpers shared by the kernel launchers."""
from __future__ import annotations

import contextlib
import functools
import os

import torch

from hida_rt.errors import BackendUnavailable

# Where no GPU is there to ask, size split decisions for an H100 (132 SMs).
DEFAULT_SMS = 132
# Elements one program of the elementwise/reduction kernels holds per tile. On a GPU,
# 2 K fp32 values per operand keep the live tiles in registers at 4 warps; the
# interpreter pays per operation and per program, not per element, so there
# a 16 K tile keeps a full 256x256 network to about a minute.
GPU_TILE = 2048
INTERPRETER_TILE = 16384


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def tile_elements() -> int:
    return INTERPRETER_TILE if interpreting() else GPU_TILE


def check_launchable(*tensors: torch.Tensor) -> None:
    """Raise a one-line error when Triton cannot run on these tensors' device."""
    for t in tensors:
        if not t.is_contiguous():
            raise ValueError(f"hida_rt kernels take contiguous NCHW tensors, got strides {t.stride()}")
    if any(t.device.type != "cuda" for t in tensors) and not interpreting():
        raise BackendUnavailable("Triton kernels on CPU tensors need TRITON_INTERPRET=1 set before "
                                 "hida_rt.kernels is imported; on a GPU, pass CUDA tensors")


@functools.lru_cache(maxsize=None)
def _sms(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def num_sms(device: torch.device) -> int:
    if device.type == "cuda":
        return _sms(device.index if device.index is not None else torch.cuda.current_device())
    return DEFAULT_SMS


@contextlib.contextmanager
def ieee_fp32_convs(enabled: bool):
    """cuDNN convolutions in full FP32 (PyTorch's default lets them use TF32, ~1e-3 off)."""
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = previous and not enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous
