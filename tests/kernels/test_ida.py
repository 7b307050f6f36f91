"""IDA kernel (kernels/ida.py) vs hida_rt.model.ops.ida_merged, row and split paths."""
from __future__ import annotations

import pytest
import torch
from testutils.gpu import FULL_SHAPES_NEED_A_GPU

from hida_rt.kernels import ida as K
from hida_rt.kernels._tolerances import TOLERANCES
from hida_rt.model import ops


@pytest.fixture
def run_and_check(gen, device, poisoned, check_output):
    def run(shape, dtype, atol, rtol, y_mean=0.0, **launch):
        n, c, h, w = shape
        y = (torch.randn(n, c, h, w, generator=gen) * 1.5 + y_mean).to(device, dtype)
        tgb = torch.randn(n, 3 * c, h, w, generator=gen).to(device, dtype)
        p1 = torch.randn(c, generator=gen).to(device)
        p2 = (torch.randn(c, generator=gen) * 0.5).to(device)
        out = K.ida(y, tgb, p1, p2, out=poisoned(y.shape, dtype), **launch)
        assert out.dtype == dtype
        ref = ops.ida_merged(y.float(), tgb.float(), p1.view(1, c, 1, 1), p2.view(1, c, 1, 1))
        check_output(out, ref, atol, rtol, f"ida {shape} {dtype} {launch} seed {gen.initial_seed()}")
    return run


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES["ida"])
@pytest.mark.parametrize("shape, launch", [
    ((2, 3, 5, 7), dict(path="row")),                          # one tile per row, rows masked
    ((2, 3, 20, 20), dict(path="row", block=64)),              # 7 tiles per row, the last partial
    ((1, 2, 20, 20), dict(path="split", block=32, splits=4)),  # several tiles per chunk
    ((2, 3, 9, 11), dict(path="split", block=16)),             # one tile per chunk, the last short
])
def test_ida_small(run_and_check, shape, launch, dtype, atol, rtol):
    run_and_check(shape, dtype, atol, rtol, **launch)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")  # sigmoid of large |x| in numpy
@pytest.mark.parametrize("launch", [dict(path="row", block=32), dict(path="split", block=32, splits=3)])
def test_ida_large_mean(run_and_check, launch):
    """|mean| >> std: the shifted sums must not cancel (a plain E[f^2] - E[f]^2 loses ~3 digits here)."""
    run_and_check((1, 2, 16, 16), torch.float32, 2e-4, 1e-4, y_mean=300.0, **launch)


@pytest.mark.gpu(reason=FULL_SHAPES_NEED_A_GPU)
@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES["ida"])
@pytest.mark.parametrize("layer, c, hw", [("up0", 512, 2), ("up1", 512, 4), ("up5", 128, 64), ("up6", 64, 128)])
@pytest.mark.parametrize("n", [1, 8])
@pytest.mark.parametrize("path", ["auto", "row"])
def test_ida_layer_shapes_gpu(run_and_check, layer, c, hw, n, path, dtype, atol, rtol):
    run_and_check((n, c, hw, hw), dtype, atol, rtol, path=path)
