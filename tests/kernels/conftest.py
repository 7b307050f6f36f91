"""L3 kernel tests: Triton kernels against their plain-PyTorch references.

Without a CUDA GPU the kernels run in Triton's CPU interpreter (switched on
in tests/conftest.py, before anything imports triton). Small shapes run
everywhere; full layer shapes are marked `gpu` and skip on CPU (testutils.gpu).
"""
from __future__ import annotations

import random

import pytest
import torch
from testutils.gpu import DEVICE


@pytest.fixture
def gen():
    """A CPU torch.Generator with a fresh seed per test (`gen.initial_seed()` goes into messages)."""
    return torch.Generator().manual_seed(random.SystemRandom().randrange(2**31))


@pytest.fixture
def device():
    """Where the kernels run: the GPU if there is one, else the CPU (interpreter)."""
    return DEVICE


def _poisoned(shape, dtype) -> torch.Tensor:
    return torch.full(tuple(shape), float("nan"), dtype=dtype, device=DEVICE)


def _check(out: torch.Tensor, ref: torch.Tensor, atol: float, rtol: float, what: str) -> None:
    bad = ~torch.isfinite(out)
    assert not bad.any(), f"{what}: {int(bad.sum())} of {out.numel()} elements NaN/Inf (unwritten or overflow)"
    torch.testing.assert_close(out.float().cpu(), ref.float().cpu(), atol=atol, rtol=rtol,
                               msg=lambda m: f"{what}: {m}")


@pytest.fixture
def poisoned():
    """poisoned(shape, dtype): an output buffer full of NaN; an element the kernel skips stays NaN."""
    return _poisoned


@pytest.fixture
def check_output():
    """check_output(out, ref, atol, rtol, what): every element written and finite, then close to ref."""
    return _check
