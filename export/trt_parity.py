"""Parity of a TensorRT path against FP32 eager: the figures, the targets, the inputs.

Targets (docs/proof.md, "Precision targets", on the sketch):
- FP32 paths: max |delta| <= 1e-4 (sketch in [-1, 1]);
- FP16 paths: mean |delta| <= 5e-3 and PSNR >= 40 dB with the sketch mapped
  to [0, 1], and no NaN/Inf ever.

The same figures go into the engine manifest (`--verify`), the L2 test
(reference evaluator) and the L5 test (engine), so all three judge alike.
"""
from __future__ import annotations

from pathlib import Path

import torch

# Targets and figures are defined once, with the kernels' tolerances, so the triton backend's self-check judges
# alike.
from hida_rt.kernels._tolerances import FP16_MEAN_ABS, FP16_PSNR_DB, FP32_MAX_ABS  # noqa: F401
from hida_rt.kernels._tolerances import sketch_figures as compare  # noqa: F401
from hida_rt.kernels._tolerances import sketch_meets as meets
from hida_rt.kernels._tolerances import sketch_targets as targets

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_NAMES = ("astronaut", "grace_hopper")


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
