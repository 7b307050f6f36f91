"""The one GPU switch of the test suite: tests marked `gpu` skip (with their reason) where CUDA is absent.

    @pytest.mark.gpu                                   # default reason
    @pytest.mark.gpu(reason="full-size shapes need a CUDA GPU")

tests/conftest.py applies the skip at collection; ON_GPU and DEVICE are for
tests that pick a device or check a CPU-only message.
"""
from __future__ import annotations

import torch

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")
DEFAULT_REASON = "needs a CUDA GPU, and this machine has none"
FULL_SHAPES_NEED_A_GPU = "full-size layer shapes need a CUDA GPU (the CPU interpreter covers the small shapes)"


def skip_reason(item) -> str:
    """The reason a `gpu`-marked item gives: the first one among its gpu marks, else the default."""
    return next((m.kwargs["reason"] for m in item.iter_markers("gpu") if "reason" in m.kwargs), DEFAULT_REASON)
