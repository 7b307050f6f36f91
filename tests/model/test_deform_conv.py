"""L0: the pure-PyTorch modulated deformable conv against ONNX's reference DeformConv."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from hida_rt.model import ops
from testutils.deform_numpy import deform_conv_numpy


def onnx_deform_conv(x, w, offset, b, mask, offset_group):
    """Run one opset-19 DeformConv node (input order X, W, offset, B, mask) in onnx.reference."""
    names = ["X", "W", "offset", "B", "mask"]
    arrays = [np.asarray(a, dtype=np.float32) for a in (x, w, offset, b, mask)]
    node = helper.make_node("DeformConv", names, ["Y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                            strides=[1, 1], dilations=[1, 1], group=1, offset_group=offset_group)
    graph = helper.make_graph(
        [node], "deform",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in zip(names, arrays)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    return ReferenceEvaluator(model).run(None, dict(zip(names, arrays)))[0]


def draw(n, c, co, h, w, groups, offset_scale, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g)
    weight = torch.randn(co, c, 3, 3, generator=g) * 0.3
    bias = torch.randn(co, generator=g)
    offset = torch.randn(n, 2 * groups * 9, h, w, generator=g) * offset_scale
    mask = torch.rand(n, groups * 9, h, w, generator=g)
    return x, weight, bias, offset, mask


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("offset_scale", [0.7, 4.0])  # 4.0 pushes many samples off the image
def test_matches_onnx_reference(groups, offset_scale):
    seed = int(np.random.randint(2**31))
    x, weight, bias, offset, mask = draw(2, 4, 3, 5, 6, groups, offset_scale, seed)
    got = ops.modulated_deform_conv2d(x, offset, mask, weight, bias)
    want = onnx_deform_conv(x, weight, offset, bias, mask, groups)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, atol=2e-5, rtol=1e-5, err_msg=f"seed {seed}")


def test_off_image_samples_are_zero():
    """Every sample shifted beyond the border contributes nothing: only the bias is left."""
    x, weight, bias, offset, mask = draw(1, 4, 3, 5, 5, 2, 0.0, 0)
    offset[:, 0::2] = 50.0  # every row shift far below the image
    got = ops.modulated_deform_conv2d(x, offset, mask, weight, bias)
    torch.testing.assert_close(got, bias.view(1, -1, 1, 1).expand_as(got), atol=0, rtol=0)


def test_groups_use_their_own_offsets():
    """Moving group 1's offsets changes the result only through group 1's channels."""
    x, weight, bias, offset, mask = draw(1, 4, 2, 6, 6, 2, 0.5, 1)
    base = ops.modulated_deform_conv2d(x, offset, mask, weight, bias)
    moved = offset.clone()
    moved[:, 18:] += 0.37
    w0 = weight.clone()
    w0[:, 2:] = 0  # output from group 0's channels only
    torch.testing.assert_close(ops.modulated_deform_conv2d(x, moved, mask, w0, bias),
                               ops.modulated_deform_conv2d(x, offset, mask, w0, bias))
    assert not torch.allclose(ops.modulated_deform_conv2d(x, moved, mask, weight, bias), base)


@pytest.mark.parametrize("groups", [1, 2])
def test_numpy_oracle_matches_onnx_reference(groups):
    """The float64 NumPy oracle used by the whole-network test agrees with ONNX's reference."""
    x, weight, bias, offset, mask = draw(1, 4, 3, 5, 4, groups, 2.5, int(np.random.randint(2**31)))
    np.testing.assert_allclose(deform_conv_numpy(x, offset, mask, weight, bias),
                               onnx_deform_conv(x, weight, offset, bias, mask, groups), atol=2e-5, rtol=1e-5)


def test_raw_offset_mask_layout():
    """dcn_from_offset_mask_conv splits the 54 channels as DCNv2: chunks o1, o2, m; offsets cat(o1, o2)."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 4, 4, 4, generator=g)
    om = torch.randn(1, 54, 4, 4, generator=g)
    weight, bias = torch.randn(3, 4, 3, 3, generator=g), torch.randn(3, generator=g)
    want = deform_conv_numpy(x, om[:, :36], torch.sigmoid(om[:, 36:]), weight, bias)
    got = ops.dcn_from_offset_mask_conv(x, om, weight, bias)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5, rtol=1e-5)


def test_rejects_mismatched_offsets():
    x, weight, bias, offset, mask = draw(1, 4, 3, 5, 5, 2, 0.5, 3)
    with pytest.raises(ValueError, match="do not fit"):
        ops.modulated_deform_conv2d(x, offset[:, :30], mask, weight, bias)
