"""Deformable conv kernel (kernels/deform_conv.py) vs hida_rt.model.ops.dcn_from_offset_mask_conv."""
from __future__ import annotations

import pytest
import torch
from testutils.gpu import FULL_SHAPES_NEED_A_GPU

from hida_rt.kernels import deform_conv as K
from hida_rt.kernels._tolerances import TOLERANCES
from hida_rt.model import ops


def draw(gen, n, cin, cout, h, w, groups, offset_scale):
    x = torch.randn(n, cin, h, w, generator=gen)
    om = torch.randn(n, 27 * groups, h, w, generator=gen)
    om[:, :18 * groups] *= offset_scale  # offsets; the last third stays mask logits
    weight = torch.randn(cout, cin, 3, 3, generator=gen) / (9 * cin) ** 0.5
    bias = torch.randn(cout, generator=gen)
    return x, om, weight, bias


@pytest.fixture
def check_dcn(gen, device, poisoned, check_output):
    def run(n, cin, cout, h, w, groups, offset_scale, dtype, atol, rtol, split_k=None, **tile):
        x, om, weight, bias = draw(gen, n, cin, cout, h, w, groups, offset_scale)
        x, om = x.to(device, dtype), om.to(device, dtype)
        w_kcc = K.kcc_weight(weight).to(device, dtype)
        out = K.deform_conv(x, om, w_kcc, bias.to(device), groups, split_k=split_k,
                            out=poisoned((n, cout, h, w), dtype), **tile)
        # Reference in FP32 on the kernel's own (possibly FP16-rounded) inputs.
        ref = ops.dcn_from_offset_mask_conv(x.float().cpu(), om.float().cpu(),
                                            w_kcc.float().cpu().view(3, 3, cin, cout).permute(3, 2, 0, 1), bias)
        check_output(out, ref, atol, rtol, f"deform_conv {(n, cin, cout, h, w)} G={groups} offsets x{offset_scale} "
                                           f"{dtype} split_k={split_k} {tile} seed {gen.initial_seed()}")
    return run


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES["deform_conv"])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("offset_scale", [0.7, 4.0])  # 4.0 pushes many samples off the image
def test_deform_conv_small(check_dcn, groups, offset_scale, dtype, atol, rtol):
    check_dcn(2, 8, 12, 5, 6, groups, offset_scale, dtype, atol, rtol)


@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES["deform_conv"])
def test_deform_conv_tiles(check_dcn, dtype, atol, rtol):
    """Channel loop of 2 slices (the last partial), partial Cout and pixel tiles."""
    check_dcn(1, 48, 20, 5, 6, 2, 1.5, dtype, atol, rtol, BLOCK_P=16, BLOCK_CO=16, BLOCK_CI=16)


@pytest.mark.parametrize("split_k", [2, 3, 18])
def test_deform_conv_split_k(check_dcn, split_k):
    atol, rtol = TOLERANCES["deform_conv"][0][1:]
    check_dcn(1, 16, 24, 4, 4, 2, 2.0, torch.float32, atol, rtol, split_k=split_k)


def test_samples_off_the_image_give_the_bias(gen, device):
    x, om, weight, bias = draw(gen, 1, 8, 5, 4, 4, 2, 0.0)
    om[:, 0:36:2] = 40.0  # every row shift far below the image
    out = K.deform_conv(x.to(device), om.to(device), K.kcc_weight(weight).to(device), bias.to(device))
    torch.testing.assert_close(out.cpu(), bias.view(1, -1, 1, 1).expand_as(out), atol=0, rtol=0)


def test_rejects_mismatched_shapes(device):
    x = torch.zeros(1, 8, 4, 4, device=device)
    with pytest.raises(ValueError, match="groups"):
        K.deform_conv(x, torch.zeros(1, 27, 4, 4, device=device), torch.zeros(9, 8, 4, device=device),
                      torch.zeros(4, device=device), groups=2)


# The DOG layers: up0 (512 -> 512 at 2x2 for 256x256 input), up1 (1024 -> 512 at 4x4);
# at 512x512 input both double in size.
@pytest.mark.gpu(reason=FULL_SHAPES_NEED_A_GPU)
@pytest.mark.parametrize("dtype, atol, rtol", TOLERANCES["deform_conv"])
@pytest.mark.parametrize("cin, hw", [(512, 2), (1024, 4), (512, 4), (1024, 8)])
@pytest.mark.parametrize("n", [1, 8, 32])
@pytest.mark.parametrize("offset_scale", [1.0, 4.0])
def test_deform_conv_dog_shapes_gpu(check_dcn, n, cin, hw, offset_scale, dtype, atol, rtol):
    check_dcn(n, cin, 512, hw, hw, 2, offset_scale, dtype, atol, rtol)
