"""Fixtures of the TensorRT levels (runtime.md L2, L4, L5), built once per session.

- `portable_model`: the portable ONNX of the spread checkpoint at 256x256
  (the export every pass starts from).
- `trt_models`: the TensorRT ONNX at FP32 and FP16, with their pass reports.
- `l2_case`: one batch of two (the astronaut sample with style 2, a random
  photo with a mixed style; fresh seed per session, in every message) and
  the eager FP32 sketch for it: the reference evaluator runs the full network
  once per precision on it (~3 s each).

Nothing here needs TensorRT or a GPU; the L4/L5 modules skip by themselves.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import onnx
import pytest
import torch

from hida_rt.export import trt_parity
from hida_rt.export.graph_passes import tensorrt_onnx
from hida_rt.export.onnx_export import build_onnx_model


@dataclass(frozen=True)
class L2Case:
    photo: torch.Tensor
    depth: torch.Tensor
    style: torch.Tensor
    eager: torch.Tensor
    seed: int


@pytest.fixture(scope="session")
def portable_model(spread_ckpt) -> onnx.ModelProto:
    return build_onnx_model(spread_ckpt, 256, 256)


@pytest.fixture(scope="session")
def trt_models(portable_model) -> dict:
    """precision -> (TensorRT ONNX ModelProto, PassReport)."""
    return {p: tensorrt_onnx(portable_model, p) for p in ("fp32", "fp16")}


@pytest.fixture(scope="session")
def l2_case(spread_model) -> L2Case:
    seed = random.SystemRandom().randrange(2**31)
    _, p0, d0, s0 = trt_parity.sample_inputs(256, 256)[0]
    _, p1, d1, s1 = trt_parity.random_inputs(1, 256, 256, seed=seed)
    photo, depth, style = torch.cat([p0, p1]), torch.cat([d0, d1]), torch.cat([s0, s1])
    with torch.no_grad():
        eager = spread_model(photo, depth, style)
    return L2Case(photo, depth, style, eager, seed)
