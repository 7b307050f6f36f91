"""The fused GPU graph: merged convs, folded constant switches, Triton kernels, CUDA graphs.

FP16 weights and activations by default (statistics, MLPs and sampling
coordinates in FP32 inside the kernels); one CUDA graph captured per
(batch, height, width), replayed on static input buffers.

Before first use on a GPU/driver/torch/Triton/hida_rt combination the
backend checks itself (`self_check`, probe in kernels/self_check.py, verdict
cached by hida_rt.self_check); hida_rt.backends.choose uses it only with a
passing verdict.
"""
from __future__ import annotations

import importlib.util

import torch

import hida_rt
from hida_rt import gpu_info
from hida_rt import self_check as verdicts
from hida_rt.backends.base import Backend
from hida_rt.backends.devices import parse_device
from hida_rt.backends.eager import DTYPES
from hida_rt.checkpoint import load_generator
from hida_rt.errors import BackendUnavailable, CheckpointError

from ._common import ieee_fp32_convs
from .fused_model import FusedHIDA

# Replays before capture: Triton compiles each kernel and cuDNN picks its algorithms
# on first use, and neither may happen inside a capture.
WARMUP_RUNS = 2


class TritonBackend(Backend):
    name = "triton"

    def __init__(self, weights, device=None, dtype: str = "fp16", cuda_graphs: bool = True, **options):
        super().__init__(weights)
        reason = self.unavailable_reason(device=device)
        if reason:
            raise BackendUnavailable(f"backend 'triton' cannot run here: {reason}")
        if weights is None:
            raise CheckpointError("the triton backend needs --weights (a HIDA .ckpt/.pth)")
        if dtype not in ("fp16", "fp32"):
            raise BackendUnavailable(f"triton backend dtype must be fp16 or fp32, got {dtype!r}")
        self.device = parse_device(device) or torch.device("cuda")
        self.dtype = DTYPES[dtype]
        self.model = FusedHIDA(load_generator(weights, "cpu"), self.dtype, use_kernels=True).to(self.device)
        self.cuda_graphs = cuda_graphs
        self._graphs: dict[tuple[int, int, int], tuple[torch.cuda.CUDAGraph, tuple, torch.Tensor]] = {}

    @classmethod
    def unavailable_reason(cls, device=None, **options) -> str | None:
        if importlib.util.find_spec("triton") is None:
            return "Triton is not installed (pip install triton)"
        if not torch.cuda.is_available():
            return "no CUDA GPU: the triton backend runs its kernels on a CUDA GPU, and PyTorch sees none"
        try:
            parsed = parse_device(device)
        except BackendUnavailable as e:
            return str(e)
        if parsed is not None and parsed.type != "cuda":
            return f"the triton backend runs on a CUDA GPU only, not on --device {device}"
        return None

    @classmethod
    def self_check(cls, device=None, dtype: str = "fp16", recheck: bool = False, cached_only: bool = False,
                   **options):
        """The probe's verdict on `device` (default cuda) at `dtype`, cached per GPU, driver and versions
        (`cached_only`: the cached one or None, never a probe).

        A CPU device runs the probe in Triton's interpreter (TRITON_INTERPRET=1): how CI proves it."""
        parsed = parse_device(device) or torch.device("cuda")
        if dtype not in ("fp16", "fp32"):
            raise BackendUnavailable(f"triton backend dtype must be fp16 or fp32, got {dtype!r}")
        from . import self_check as probe
        key = probe_key(parsed, dtype)
        return verdicts.checked(cls.name, key, lambda: probe.probe(parsed, DTYPES[dtype]), recheck=recheck,
                               cached_only=cached_only)

    def _capture(self, photo, depth, style):
        static_in = tuple(t.clone() for t in (photo, depth, style))
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                self.model(*static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.model(*static_in)
        return graph, static_in, static_out

    @torch.inference_mode()
    def _run(self, photo, depth, style):
        inputs = tuple(t.to(self.device, self.dtype, non_blocking=True) for t in (photo, depth, style))
        if not self.cuda_graphs:
            with ieee_fp32_convs(self.dtype == torch.float32):
                return self.model(*inputs)
        key = tuple(photo.shape[:1]) + tuple(photo.shape[2:])
        if key not in self._graphs:
            # The convolution kernels (TF32 or not) are fixed at capture.
            with ieee_fp32_convs(self.dtype == torch.float32):
                self._graphs[key] = self._capture(*inputs)
        graph, static_in, static_out = self._graphs[key]
        for dst, src in zip(static_in, inputs):
            dst.copy_(src)
        graph.replay()
        # The next replay overwrites static_out.
        return static_out.clone()


def probe_key(device: torch.device, dtype: str) -> dict:
    """What a verdict holds for: the GPU model and compute capability, driver, torch, Triton, hida_rt, dtype."""
    import triton
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        gpu, cc = torch.cuda.get_device_name(index), f"{major}.{minor}"
        driver = gpu_info.driver_version() or "unknown"
    else:
        gpu, cc, driver = "CPU (Triton interpreter)", None, None
    return dict(gpu=gpu, compute_capability=cc, driver=driver, torch=torch.__version__, triton=triton.__version__,
                hida_rt=hida_rt.__version__, dtype=dtype)


BACKEND = TritonBackend
