"""Parity of a TensorRT path against FP32 eager: the figures, the targets, the inputs.

Targets (docs/proof.md, "Precision targets", on the sketch):
- FP32 paths: max |delta| <= 1e-4 (sketch in [-1, 1]);
- FP16 paths: mean |delta| <= 5e-3 and PSNR >= 40 dB with the sketch mapped
  to [0, 1], and no NaN/Inf ever.

The same figures go into the engine manifest (`--verify`), the L2 test
(reference evaluator) and the L5 test (engine), so all three judge alike.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

FP32_MAX_ABS = 1e-4
FP16_MEAN_ABS = 5e-3
FP16_PSNR_DB = 40.0
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_NAMES = ("astronaut", "grace_hopper")


def _np(t) -> np.ndarray:
    return (t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)).astype(np.float64)


def compare(got, want) -> dict:
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


def meets(figures: dict, precision: str) -> bool:
    if figures["nonfinite"]:
        return False
    if precision == "fp32":
        return figures["max_abs"] <= FP32_MAX_ABS
    return figures["mean_abs_01"] <= FP16_MEAN_ABS and figures["psnr_db_01"] >= FP16_PSNR_DB


def targets(precision: str) -> str:
    if precision == "fp32":
        return f"max |d| <= {FP32_MAX_ABS:g}"
    return f"mean |d| <= {FP16_MEAN_ABS:g} and PSNR >= {FP16_PSNR_DB:g} dB on [0, 1], no NaN/Inf"


def summarize(cases: dict[str, dict], precision: str) -> dict:
    """Worst figures over named cases, and whether every case meets the targets."""
    finite_psnr = [c["psnr_db_01"] for c in cases.values()]
    return {"precision": precision, "targets": targets(precision),
            "max_abs": max(c["max_abs"] for c in cases.values()),
            "mean_abs_01": max(c["mean_abs_01"] for c in cases.values()),
            "psnr_db_01": min(finite_psnr), "nonfinite": sum(c["nonfinite"] for c in cases.values()),
            "passed": all(meets(c, precision) for c in cases.values()), "cases": cases}


def sample_inputs(height: int, width: int) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The shipped sample faces (if this checkout has them), each with a different style, batch 1."""
    from hida_rt import images, styles
    out = []
    for i, name in enumerate(SAMPLE_NAMES):
        photo, depth = SAMPLES / f"{name}_photo.png", SAMPLES / f"{name}_depth.png"
        if not (photo.is_file() and depth.is_file()):
            continue
        p = images.photo_to_tensor(images.read_image(photo, "RGB"), (height, width))
        d = images.depth_to_tensor(images.read_image(depth, "L"), (height, width))
        out.append((f"sample:{name}:style{i + 2}", p, d, styles.one_hot(i + 2)[None]))
    return out


def random_inputs(batch: int, height: int, width: int, seed: int = 0):
    """Random photos/depths with a mix of styles per row (fresh but reproducible from the seed)."""
    g = torch.Generator().manual_seed(seed)
    photo = torch.rand(batch, 3, height, width, generator=g) * 2 - 1
    depth = torch.rand(batch, 1, height, width, generator=g)
    style = torch.softmax(torch.randn(batch, 3, generator=g) * 4, dim=1)
    return f"random:batch{batch}:seed{seed}", photo, depth, style
