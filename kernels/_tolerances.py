"""(dtype, atol, rtol) of each kernel against its plain-PyTorch reference, in one place.

The reference runs in FP32 on the kernel's own (possibly FP16-rounded)
inputs; the test data keep outputs O(1). FP32 kernels differ from the
reference by summation order only. FP16 kernels round their output (and the
deformable conv its A tile before the tensor-core product) to FP16, ~1e-3
relative, with FP32 statistics, MLPs, sampling and accumulation. Used by the
L3 kernel tests here and by the L2/L4 plugin tests, and by the triton
backend's first-use self-check (kernels/self_check.py), which also judges the
whole network with NETWORK: the precision targets of docs/architecture.md on
the sketch (FP32 paths: max |d|; FP16 paths: mean |d| and PSNR with the
sketch mapped to [0, 1]; no NaN or Inf ever).
"""
from __future__ import annotations

import math

import numpy as np
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


# The whole network against eager FP32, on the sketch in [-1, 1].
FP32_MAX_ABS = 1e-4
FP16_MEAN_ABS = 5e-3
FP16_PSNR_DB = 40.0


def _np(t) -> np.ndarray:
    return (t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)).astype(np.float64)


def sketch_figures(got, want) -> dict:
    """Figures of `got` against `want` (sketches in [-1, 1]): max |d|, and mean |d| / PSNR on [0, 1]."""
    g, w = _np(got), _np(want)
    if g.shape != w.shape:
        raise ValueError(f"shapes differ: {g.shape} vs {w.shape}")
    finite = np.isfinite(g)
    nonfinite = int(g.size - finite.sum())
    d01 = np.where(finite, (g - w) / 2, np.inf)
    mse = float(np.mean(d01 ** 2)) if nonfinite == 0 else math.inf
    return {"max_abs": float(np.max(np.abs(np.where(finite, g - w, np.inf)))),
            "mean_abs_01": float(np.mean(np.abs(d01))) if nonfinite == 0 else math.inf,
            "psnr_db_01": (math.inf if mse == 0 else 10 * math.log10(1.0 / mse)) if nonfinite == 0 else 0.0,
            "nonfinite": nonfinite, "elements": int(g.size)}


def sketch_meets(figures: dict, precision: str) -> bool:
    """Whether sketch_figures meet the target of `precision` ("fp32" or "fp16")."""
    if figures["nonfinite"]:
        return False
    if precision == "fp32":
        return figures["max_abs"] <= FP32_MAX_ABS
    return figures["mean_abs_01"] <= FP16_MEAN_ABS and figures["psnr_db_01"] >= FP16_PSNR_DB


def sketch_targets(precision: str) -> str:
    if precision == "fp32":
        return f"max |d| <= {FP32_MAX_ABS:g}"
    return f"mean |d| <= {FP16_MEAN_ABS:g} and PSNR >= {FP16_PSNR_DB:g} dB on [0, 1], no NaN/Inf"
