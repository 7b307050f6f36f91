"""The ops the L2 evaluator brings: plugin nodes and its torch Conv/ConvTranspose, each checked alone.

- The torch Conv/ConvTranspose (used because onnx.reference's are far too
  slow for a full network) equal onnx.reference's own on small inputs.
- Each plugin node, as a single-node ONNX graph, equals the eager model's
  expression of the same block (hida_rt.model.ops with the checkpoint's
  layouts), which pins down the plugin contracts: [theta|gamma|beta] order,
  (9, Cin, Cout) weight, raw 54-channel offset/mask input, (N, C) means.
- A plugin node refuses inputs of another dtype than its kernel takes.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from hida_rt.export.plugins.reference import PluginDtypeError, evaluator
from hida_rt.export.plugins.specs import DOMAIN, NAMESPACE, PLUGINS
from hida_rt.kernels.deform_conv import kcc_weight
from hida_rt.model import ops

ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16}


def single_node_model(op: str, arrays: list[np.ndarray], domain: str = "", n_out: int = 1, **attrs):
    names = [f"in{i}" for i in range(len(arrays))]
    outs = [f"out{i}" for i in range(n_out)]
    if domain == DOMAIN:
        attrs = {"plugin_namespace": NAMESPACE, "aot": 1}
    node = helper.make_node(op, names, outs, domain=domain or None, **attrs)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info(n, ONNX_TYPES[a.dtype], a.shape)
                                           for n, a in zip(names, arrays)],
                              [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs])
    opsets = [helper.make_opsetid("", 19), helper.make_opsetid(DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets), dict(zip(names, arrays))


def run_ours(op, arrays, domain="", **attrs):
    model, feeds = single_node_model(op, arrays, domain, **attrs)
    return evaluator(model).run(None, feeds)[0]


def run_onnx(op, arrays, **attrs):
    model, feeds = single_node_model(op, arrays, **attrs)
    return ReferenceEvaluator(model).run(None, feeds)[0]


def randn(g, *shape, scale=1.0):
    return (torch.randn(*shape, generator=g) * scale).numpy()


@pytest.fixture
def g():
    return torch.Generator().manual_seed(1234)


@pytest.mark.parametrize("attrs, wshape", [
    (dict(pads=[1, 1, 1, 1], strides=[2, 2]), (5, 3, 4, 4)),     # encoder down-conv
    (dict(pads=[1, 1, 1, 1]), (6, 3, 3, 3)),                     # 3x3 decoder convs
    (dict(pads=[0, 1, 1, 0], dilations=[2, 1]), (4, 3, 3, 2)),   # asymmetric pads, dilation
    (dict(group=3), (6, 1, 1, 1)),
])
def test_torch_conv_equals_onnx_reference(g, attrs, wshape):
    x, w, b = randn(g, 2, 3, 9, 8), randn(g, *wshape, scale=0.3), randn(g, wshape[0])
    want = run_onnx("Conv", [x, w, b], **attrs)
    np.testing.assert_allclose(run_ours("Conv", [x, w, b], **attrs), want, rtol=1e-5, atol=1e-5)
    # FP16 in, FP16 out, FP32 accumulation: within one FP16 rounding of the FP32 result.
    half = [a.astype(np.float16) for a in (x, w, b)]
    got16 = run_ours("Conv", half, **attrs)
    ref = run_onnx("Conv", [a.astype(np.float32) for a in half], **attrs)
    assert got16.dtype == np.float16
    np.testing.assert_allclose(got16.astype(np.float32), ref, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("attrs, wshape", [
    (dict(pads=[1, 1, 1, 1], strides=[2, 2]), (4, 2, 4, 4)),     # the decoder's ConvTranspose 4x4 s2 p1
    (dict(strides=[1, 1]), (4, 3, 3, 3)),
])
def test_torch_conv_transpose_equals_onnx_reference(g, attrs, wshape):
    x, w, b = randn(g, 1, 4, 5, 6), randn(g, *wshape, scale=0.3), randn(g, wshape[1])
    want = run_onnx("ConvTranspose", [x, w, b], **attrs)
    np.testing.assert_allclose(run_ours("ConvTranspose", [x, w, b], **attrs), want, rtol=1e-5, atol=1e-5)


def test_ida_node_is_the_decoder_tail(g):
    n, c, h, w = 2, 3, 5, 4
    y, theta, gamma, beta = (randn(g, n, c, h, w) for _ in range(4))
    p1, p2 = randn(g, c), randn(g, c)
    got = run_ours("ida", [y, np.concatenate([theta, gamma, beta], 1), p1, p2], DOMAIN)
    t = torch.from_numpy
    want = ops.ida(t(y), t(theta), t(gamma), t(beta), t(p1).view(1, c, 1, 1), t(p2).view(1, c, 1, 1))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=1e-6)


def test_meta_acon_nodes_are_meta_acon(g):
    n, c, hid, h, w = 2, 5, 16, 6, 3
    x = randn(g, n, c, h, w)
    fc1_w, fc1_b, fc2_w, fc2_b = randn(g, hid, c), randn(g, hid), randn(g, c, hid), randn(g, c)
    p1, p2 = randn(g, c), randn(g, c)
    mean = run_ours("meta_acon_mean", [x], DOMAIN)
    assert mean.shape == (n, c) and mean.dtype == np.float32
    got = run_ours("meta_acon_apply", [x, mean, fc1_w, fc1_b, fc2_w, fc2_b, p1, p2], DOMAIN)
    t = torch.from_numpy
    want = ops.meta_acon(t(x), t(p1).view(1, c, 1, 1), t(p2).view(1, c, 1, 1), t(fc1_w).view(hid, c, 1, 1),
                         t(fc1_b), t(fc2_w).view(c, hid, 1, 1), t(fc2_b))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=1e-6)
    beta = 1 / (1 + np.exp(-randn(g, c)))
    got = run_ours("acon_const", [x, p1, p2, beta.astype(np.float32)], DOMAIN)
    want = ops.acon(t(x), t(p1).view(1, c, 1, 1), t(p2).view(1, c, 1, 1), t(beta).float().view(1, c, 1, 1))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=1e-6)


def test_deform_conv_node_reads_the_raw_offset_mask_conv(g):
    n, cin, cout, h, w, groups = 1, 4, 3, 5, 6, 2
    x, weight, bias = randn(g, n, cin, h, w), randn(g, cout, cin, 3, 3, scale=0.3), randn(g, cout)
    om = randn(g, n, 3 * groups * 9, h, w, scale=1.5)  # offsets push samples across the border
    w_kcc = kcc_weight(torch.from_numpy(weight)).numpy()
    got = run_ours("deform_conv", [x, om, w_kcc, bias], DOMAIN)
    t = torch.from_numpy
    np.testing.assert_allclose(got, ops.dcn_from_offset_mask_conv(t(x), t(om), t(weight), t(bias)).numpy(),
                               rtol=1e-6, atol=1e-6)
    # ... which is ONNX's own DeformConv on the split offset and sigmoid mask.
    k = groups * 9
    mask = (1 / (1 + np.exp(-om[:, 2 * k:]))).astype(np.float32)
    want = run_onnx("DeformConv", [x, weight, np.ascontiguousarray(om[:, :2 * k]), bias, mask], kernel_shape=[3, 3],
                    pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1, offset_group=groups)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_plugin_nodes_refuse_dtypes_their_kernels_do_not_take(g):
    n, c, h, w = 1, 2, 3, 3
    y, tgb = randn(g, n, c, h, w).astype(np.float16), randn(g, n, 3 * c, h, w).astype(np.float16)
    p = randn(g, c)
    out = run_ours("ida", [y, tgb, p, p], DOMAIN)  # FP16 data, FP32 parameters: the contract
    assert out.dtype == np.float16
    with pytest.raises(PluginDtypeError, match="p1"):
        run_ours("ida", [y, tgb, p.astype(np.float16), p], DOMAIN)
    with pytest.raises(PluginDtypeError, match="tgb"):
        run_ours("ida", [y, tgb.astype(np.float32), p, p], DOMAIN)
    assert set(PLUGINS) == {"ida", "meta_acon_mean", "meta_acon_apply", "acon_const", "deform_conv"}
