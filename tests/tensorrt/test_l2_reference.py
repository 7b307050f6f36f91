"""L2: the TensorRT ONNX (plugin nodes, merged convs, folded switches) computes what eager computes.

The whole 256x256 network runs in onnx.reference, each hida_rt plugin node
by its torch reference (export/plugins/reference.py), on a batch of two
(the astronaut sample, a random photo with mixed style). Targets are
docs/proof.md's: FP32 graph max |d| <= 1e-4; FP16 graph mean |d| <= 5e-3 and
PSNR >= 40 dB on [0, 1], no NaN/Inf. The plugin ops also assert, at every
node, that their inputs have the dtypes their kernels take.
"""
from __future__ import annotations

import pytest

from hida_rt.export import trt_parity
from hida_rt.export.plugins.reference import evaluate


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_onnx_matches_eager(precision, trt_models, l2_case):
    model, report = trt_models[precision]
    got = evaluate(model, l2_case.photo, l2_case.depth, l2_case.style)
    assert got.shape == tuple(l2_case.eager.shape) == (2, 1, 256, 256)
    # The spread weights make sketches over the whole range: the comparison sees real signal.
    assert l2_case.eager.std() > 0.2
    figures = trt_parity.compare(got, l2_case.eager)
    where = f"{precision} graph, seed {l2_case.seed}: {figures}"
    assert figures["nonfinite"] == 0, where
    if precision == "fp32":
        assert figures["max_abs"] <= trt_parity.FP32_MAX_ABS, where
    else:
        assert figures["mean_abs_01"] <= trt_parity.FP16_MEAN_ABS, where
        assert figures["psnr_db_01"] >= trt_parity.FP16_PSNR_DB, where
    assert trt_parity.meets(figures, precision), where
    print(f"L2 {precision}: max |d| {figures['max_abs']:.2e}, mean |d| (0..1) {figures['mean_abs_01']:.2e}, "
          f"PSNR {figures['psnr_db_01']:.1f} dB (seed {l2_case.seed})")


def test_every_block_became_a_plugin(trt_models):
    """The figures above are about the rewritten graph: all 45 plugin nodes are in it, no leftovers."""
    for precision, (model, report) in trt_models.items():
        ops = [n.op_type for n in model.graph.node]
        assert report.plugins == {"ida": 7, "meta_acon_mean": 15, "meta_acon_apply": 15, "acon_const": 6,
                                  "deform_conv": 2}, precision
        for gone in ("DeformConv", "ReduceMean", "Sigmoid", "Split", "Sub"):
            assert gone not in ops, f"{precision}: {gone} left in the TensorRT ONNX"
        # Only the encoder's InstanceNorms remain (down2..down7); the decoder's are inside `ida`.
        assert ops.count("InstanceNormalization") == 6
