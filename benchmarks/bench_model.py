"""End-to-end sketch generation: each backend side by side, per batch and image size.

CPU: eager FP32 and onnxruntime, batch 1 and 8 at 256x256 (a few minutes).
GPU: eager FP32 (PyTorch defaults) / FP16 / FP16 in a CUDA graph,
torch.compile(mode="max-autotune") FP16, and the triton backend (FP16, CUDA
graphs); batch 1, 8, 32 at 256x256 and batch 1 at 512x512. Inputs already
sit on the device; the figure is one call of the backend (or model).
Environment: HIDA_BENCH_SIZES (e.g. "1x256,8x256"), HIDA_BENCH_PEERS (names
below, comma-separated), HIDA_BENCH_COMPILE_SIZES (torch.compile takes
minutes per shape; default 1x256,8x256), HIDA_BENCH_COMPILE_MODE (torch.compile's mode, default
max-autotune; the GPU session picks a cheaper one when time is short, and the result records it).
"""
from __future__ import annotations

import os

import pytest
import torch
from harness import bench_env_flag

from hida_rt.backends import create_backend, unavailable_reason

ON_GPU = torch.cuda.is_available()
SIZES = bench_env_flag("HIDA_BENCH_SIZES", "1x256,8x256,32x256,1x512" if ON_GPU else "1x256,8x256")
PEERS = bench_env_flag("HIDA_BENCH_PEERS", "eager-fp32,eager-fp16,eager-fp16-graph,compile-fp16,triton-fp16"
                       if ON_GPU else "eager-fp32,onnxruntime")
COMPILE_SIZES = bench_env_flag("HIDA_BENCH_COMPILE_SIZES", "1x256,8x256")
COMPILE_MODE = os.environ.get("HIDA_BENCH_COMPILE_MODE", "max-autotune")
CASES = [(size, peer) for size in SIZES for peer in PEERS]
CPU_PEERS = ("eager-fp32", "onnxruntime")


class Peers:
    """Backends and models built once per session, on first use."""

    def __init__(self, weights, device):
        self.weights, self.device, self._made = weights, device, {}

    def get(self, name: str):
        if name not in self._made:
            self._made[name] = self._make(name)
        return self._made[name]

    def _make(self, name: str):
        if name in ("eager-fp32", "eager-fp16"):
            return create_backend("eager", self.weights, device=self.device.type, dtype=name[-4:])
        if name == "onnxruntime":
            reason = unavailable_reason("onnxruntime", weights=self.weights, device="cpu")
            if reason:
                pytest.skip(f"onnxruntime peer: {reason}")
            return create_backend("onnxruntime", self.weights, device="cpu", progress=False)
        if name == "triton-fp16":
            return create_backend("triton", self.weights, dtype="fp16")
        if name in ("eager-fp16-graph", "compile-fp16"):
            from hida_rt.checkpoint import load_generator
            return load_generator(self.weights, self.device).half()
        raise ValueError(f"unknown peer {name!r}")


@pytest.fixture(scope="module")
def peers(bench_weights, bench_device):
    return Peers(bench_weights, bench_device)


@pytest.mark.parametrize("size, peer", CASES, ids=[f"{s}-{p}" for s, p in CASES])
def test_model(bench, bench_inputs, bench_device, peers, size, peer):
    n, px = map(int, size.split("x"))
    if peer not in CPU_PEERS and not ON_GPU:
        pytest.skip(f"{peer} runs on a CUDA GPU; there is none here")
    if peer == "compile-fp16" and size not in COMPILE_SIZES:
        pytest.skip(f"torch.compile not run at {size} (HIDA_BENCH_COMPILE_SIZES)")
    photo, depth, style = bench_inputs(n, px)
    graph = False
    if peer in ("eager-fp16-graph", "compile-fp16"):
        model = peers.get(peer)
        if peer == "compile-fp16":
            model = torch.compile(model, mode=COMPILE_MODE, dynamic=False)
        else:
            graph = True
        args = tuple(t.half() for t in (photo, depth, style))

        def fn():
            with torch.inference_mode():
                return model(*args)
    else:
        backend = peers.get(peer)

        def fn():
            return backend(photo, depth, style)
    extra = {"compile_mode": COMPILE_MODE} if peer == "compile-fp16" else {}
    bench(fn, group=f"model {px}x{px} batch {n}", peer=peer, items=n, graph=graph,
          batch=n, size=px, tf32_conv=torch.backends.cudnn.allow_tf32 if ON_GPU else None, **extra)
