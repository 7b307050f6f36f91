"""The network's tensors as its exported forms name them, and the inputs an export traces with.

Free of onnx on purpose: a server imports this to describe the model as the
Triton repository does (export/triton_repo.py, network_info), and importing
onnx there grows its resident memory under load (measured: about +0.4 GB in
the sketch service's overload test).
"""
from __future__ import annotations

import torch

INPUT_NAMES = ("photo", "depth", "style")
OUTPUT_NAME = "sketch"
# Traced at batch 2: a batch of 1 invites the tracer to treat size-1 dims as broadcastable constants.
TRACE_BATCH = 2


def trace_inputs(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """photo (in [-1, 1]), depth (in [0, 1]) and style (one-hot) at TRACE_BATCH, seeded; on the current
    default device (the meta device gives shapes without memory)."""
    g = torch.Generator().manual_seed(0)
    photo = torch.rand(TRACE_BATCH, 3, height, width, generator=g) * 2 - 1
    depth = torch.rand(TRACE_BATCH, 1, height, width, generator=g)
    style = torch.eye(3)[:TRACE_BATCH]
    return photo, depth, style
