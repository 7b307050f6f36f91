"""Fixtures of the TensorRT levels (docs/proof.md: L2, L4, L5), built once per session.

- `portable_model`: the portable ONNX of the spread checkpoint at 256x256
  (the export every pass starts from): the session's one export
  (tests/conftest.py `exported_model`), not a second one.
- `shared_portable_export`: makes the build's own export of the spread
  checkpoint at 256x256 reuse that same export (and records the calls).
- `trt_models`: the TensorRT ONNX at FP32 and FP16, with their pass reports.
- `l2_case`: one batch of two (the astronaut sample with style 2, a random
  photo with a mixed style; fresh seed per session, in every message) and
  the eager FP32 sketch for it: the reference evaluator runs the full network
  once per precision on it (~3 s each).

Nothing here needs TensorRT or a GPU; the L4/L5 modules skip by themselves.
Importing this file needs no onnx-graphsurgeon (the GPU image has none).

This folder must stay without an __init__.py: with pytest's `pythonpath =
tests` it would become a regular package named `tensorrt` and shadow the
real TensorRT. As a namespace package it only answers `import tensorrt` where
TensorRT is absent, which hida_rt's probes treat as absent (no __version__).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

import onnx
import pytest
import torch

from hida_rt.export import trt_parity
from hida_rt.export.manifest import Manifest, now_utc
from hida_rt.export import onnx_export


@dataclass(frozen=True)
class L2Case:
    photo: torch.Tensor
    depth: torch.Tensor
    style: torch.Tensor
    eager: torch.Tensor
    seed: int


@pytest.fixture(scope="session")
def portable_model(exported_model) -> onnx.ModelProto:
    """Read-only (the graph passes import it into a new graph): the export of tests/conftest.py."""
    return exported_model


@pytest.fixture
def shared_portable_export(monkeypatch, spread_ckpt, exported_model) -> list:
    """hida_rt.export.onnx_export.build_onnx_model, answering a copy of the session's export when asked for
    exactly what it holds (the spread checkpoint at 256x256, default opset), else exporting as usual.

    The session export came from the same function (cached_onnx -> _from_weights) on the same file, so the
    answer is what the call would compute; the returned list records each call's (weights, h, w, opset).
    """
    real = onnx_export.build_onnx_model
    calls = []

    def build_onnx_model(weights, height=256, width=256, opset=onnx_export.DEFAULT_OPSET, progress=False):
        calls.append((Path(weights), height, width, opset))
        if Path(weights).resolve() == spread_ckpt.resolve() and (height, width, opset) == (
                256, 256, onnx_export.DEFAULT_OPSET):
            copy = onnx.ModelProto()
            copy.CopyFrom(exported_model)
            return copy
        return real(weights, height, width, opset, progress)

    monkeypatch.setattr(onnx_export, "build_onnx_model", build_onnx_model)
    return calls


@pytest.fixture(scope="session")
def trt_models(portable_model) -> dict:
    """precision -> (TensorRT ONNX ModelProto, PassReport)."""
    # Imported here: the graph passes need onnx-graphsurgeon, which the GPU image lacks (L4 runs there).
    from hida_rt.export.graph_passes import tensorrt_onnx
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


def _built_manifest(**changes) -> Manifest:
    m = Manifest(
        status="built", engine="hida_fp16.plan", trt_onnx="hida_fp16.trt.onnx", precision="fp16", height=256,
        width=256, batch={"min": 1, "opt": 1, "max": 8},
        inputs=[{"name": "photo", "dtype": "float32", "shape": [-1, 3, 256, 256]},
                {"name": "depth", "dtype": "float32", "shape": [-1, 1, 256, 256]},
                {"name": "style", "dtype": "float32", "shape": [-1, 3]}],
        outputs=[{"name": "sketch", "dtype": "float32", "shape": [-1, 1, 256, 256]}],
        weights_sha256="a" * 64, trt_onnx_sha256="b" * 64, hida_rt_version="0.1.0", created=now_utc(),
        plugins={"ida": 7}, engine_sha256="c" * 64, tensorrt_version="10.9.0.34", cuda_version="12.8",
        gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0",
        parity={"engine": {"passed": True, "psnr_db_01": 55.0}})
    return replace(m, **changes)


@pytest.fixture
def built_manifest():
    """built_manifest(**changes): a valid manifest of a built H100 engine (TensorRT 10.9.0.34), changed as asked."""
    return _built_manifest
