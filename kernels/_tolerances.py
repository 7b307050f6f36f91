"""(dtype, atol, rtol) of each kernel against its plain-PyTorch reference, in one place.

The reference runs in FP32 on the kernel's own (possibly FP16-rounded)
inputs; the test data keep outputs O(1). FP32 kernels differ from the
reference by summation order only. FP16 kernels round their output (and the
deformable conv its A tile before the tensor-core product) to FP16, ~1e-3
relative, with FP32 statistics, MLPs, sampling and accumulation. Used by the
L3 kernel tests here and by the L2/L4 plugin tests.
"""
from __future__ import annotations

import torch

TOLERANCES: dict[str, tuple[tuple[torch.dtype, float, float], ...]] = {
    "ida": ((torch.float32, 2e-5, 1e-5), (torch.float16, 1e-2, 5e-3)),
    "meta_acon": ((torch.float32, 1e-5, 1e-5), (torch.float16, 5e-3, 5e-3)),
    "acon_const": ((torch.float32, 1e-5, 1e-5), (torch.float16, 5e-3, 5e-3)),
    "deform_conv": ((torch.float32, 1e-4, 1e-4), (torch.float16, 2e-2, 1e-2)),
}


def tolerance(kernel: str, dtype: torch.dtype) -> tuple[float, float]:
    """(atol, rtol) of `kernel` at `dtype`."""
    for dt, atol, rtol in TOLERANCES[kernel]:
        if dt == dtype:
            return atol, rtol
    raise KeyError(f"no tolerance for {kernel} at {dtype}")
