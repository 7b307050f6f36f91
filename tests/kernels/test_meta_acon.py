"""MetaACON kernels (kernels/meta_acon.py) vs hida_rt.model.ops: live mean and constant switch."""
from __future__ import annotations

import pytest
import torch
from testutils.gpu import FULL_SHAPES_NEED_A_GPU

from hida_rt.kernels import meta_acon as K
from hida_rt.kernels._tolerances import TOLERANCES
from hida_rt.model import ops


def draw_params(gen, c, device):
    hid = max(16, c // 16)  # MetaAconC's hidden width
    p1 = torch.randn(c, generator=gen)
    p2 = torch.randn(c, generator=gen) * 0.5
    fc1_w = torch.randn(hid, c, 1, 1, generator=gen) / c ** 0.5
    fc1_b = torch.randn(hid, generator=gen)
    fc2_w = torch.randn(c, hid, 1, 1, generator=gen) / hid ** 0.5
    fc2_b = torch.randn(c, generator=gen)
    return [t.to(device) for t in (p1, p2, fc1_w, fc1_b, fc2_w, fc2_b)]


@pytest.fixture
def check_meta_acon(gen, device, poisoned, check_output):
    def run(shape, dtype, atol, rtol, tile=None):
        n, c, h, w = shape
        # A channel-dependent offset, so the live means differ from 0 and from each other.
        x = (torch.randn(n, c, h, w, generator=gen) + torch.randn(1, c, 1, 1, generator=gen)).to(device, dtype)
        p1, p2, fc1_w, fc1_b, fc2_w, fc2_b = draw_params(gen, c, device)
        out = K.meta_acon(x, p1, p2, fc1_w, fc1_b, fc2_w, fc2_b, out=poisoned(x.shape, dtype), tile=tile)
        ref = ops.meta_acon(x.float(), p1.view(1, c, 1, 1), p2.view(1, c, 1, 1), fc1_w, fc1_b, fc2_w, fc2_b)
        check_output(out, ref, atol, rtol, f"meta_acon {shape} {dtype} seed {gen.initial_seed()}")
    return run


@pytest.fixture
def check_acon_const(gen, device, poisoned, check_output):
    def run(shape, dtype, atol, rtol, tile=None):
        n, c, h, w = shape
        # As in down3..down8: x is an InstanceNorm output, so the live switch equals the constant one.
        x = torch.nn.functional.instance_norm(torch.randn(n, c, h, w, generator=gen) * 3 + 1).to(device, dtype)
        p1, p2, fc1_w, fc1_b, fc2_w, fc2_b = draw_params(gen, c, device)
        beta = K.constant_beta(fc1_w, fc1_b, fc2_w, fc2_b)
        out = K.acon_const(x, p1, p2, beta, out=poisoned(x.shape, dtype), tile=tile)
        ref = ops.meta_acon(x.float(), p1.view(1, c, 1, 1), p2.view(1, c, 1, 1), fc1_w, fc1_b, fc2_w, fc2_b)
        check_output(out, ref, atol, rtol, f"acon_const {shape} {dtype} seed {gen.initial_seed()}")
    return run


SMALL = [
    ((2, 3, 5, 7), None),      # rows masked, HID 16 > C
    ((1, 1, 16, 16), None),    # metaAcon_en: one channel
    ((2, 130, 2, 2), None),    # MLP over three BLOCK_K chunks, HW tiny
    ((1, 3, 15, 20), 64),      # 5 tiles per row, the last partial
]


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES["meta_acon"])
@pytest.mark.parametrize("shape, tile", SMALL)
def test_meta_acon_small(check_meta_acon, shape, tile, dtype, atol, rtol):
    check_meta_acon(shape, dtype, atol, rtol, tile)


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES["acon_const"])
@pytest.mark.parametrize("shape, tile", [((2, 3, 5, 7), None), ((1, 70, 4, 4), None), ((1, 3, 15, 20), 64)])
def test_acon_const_small(check_acon_const, shape, tile, dtype, atol, rtol):
    check_acon_const(shape, dtype, atol, rtol, tile)


def test_constant_beta_is_the_switch_at_zero_mean(gen):
    c = 40
    _, _, fc1_w, fc1_b, fc2_w, fc2_b = draw_params(gen, c, "cpu")
    want = ops.meta_acon_beta(torch.zeros(1, c, 3, 3), fc1_w, fc1_b, fc2_w, fc2_b).reshape(c)
    torch.testing.assert_close(K.constant_beta(fc1_w, fc1_b, fc2_w, fc2_b), want, atol=1e-6, rtol=1e-6)


# Full-size inputs of the live MetaACONs (down2, decoder h of up0/up6, metaAcon_en, final_rgb)
# and of the constant ones (down3 .. down8).
LIVE_SHAPES = [(128, 128), (512, 2), (64, 128), (1, 128), (128, 128)]
CONST_SHAPES = [(128, 64), (256, 32), (512, 16), (512, 8), (512, 4), (512, 2)]


@pytest.mark.gpu(reason=FULL_SHAPES_NEED_A_GPU)
@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES["meta_acon"])
@pytest.mark.parametrize("c, hw", LIVE_SHAPES)
@pytest.mark.parametrize("n", [1, 8])
def test_meta_acon_layer_shapes_gpu(check_meta_acon, n, c, hw, dtype, atol, rtol):
    check_meta_acon((n, c, hw, hw), dtype, atol, rtol)


@pytest.mark.gpu(reason=FULL_SHAPES_NEED_A_GPU)
@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES["acon_const"])
@pytest.mark.parametrize("c, hw", CONST_SHAPES)
@pytest.mark.parametrize("n", [1, 8])
def test_acon_const_layer_shapes_gpu(check_acon_const, n, c, hw, dtype, atol, rtol):
    check_acon_const((n, c, hw, hw), dtype, atol, rtol)
