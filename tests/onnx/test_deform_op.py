"""The export-time custom op: one DCN module exported alone equals eager in onnxruntime.

Offsets here are large (several pixels, many samples off the image), which
the full model with random weights may not exercise; and the batch the
graph runs at differs from the traced one.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime
import torch

from hida_rt.export.onnx_deform import deform_conv_as_onnx_op
from hida_rt.model.blocks import DCN


def make_dcn(seed: int) -> DCN:
    torch.manual_seed(seed)
    dcn = DCN(8, 6).eval()
    with torch.no_grad():
        # DCNv2 starts with zero offsets; random ones of a few pixels test the sampling.
        dcn.conv_offset_mask.weight.normal_(0, 0.6)
        dcn.conv_offset_mask.bias.normal_(0, 1.0)
        dcn.bias.normal_(0, 1.0)
    return dcn


def export(module: torch.nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    buf = io.BytesIO()
    with deform_conv_as_onnx_op(module) as switched, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's deprecation note
        assert switched == 1
        torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=19, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return onnx.load_from_string(buf.getvalue())


def test_dcn_alone_matches_eager_in_onnxruntime():
    seed = int(np.random.randint(2**31))
    dcn = make_dcn(seed)
    model = export(dcn, torch.randn(2, 8, 9, 11))
    assert "forward" not in vars(dcn), "the export switch must restore the module's own forward"
    assert [n.op_type for n in model.graph.node].count("DeformConv") == 1
    onnx.checker.check_model(model, full_check=True)
    x = torch.randn(3, 8, 9, 11, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        o1, o2, _ = torch.chunk(dcn.conv_offset_mask(x), 3, dim=1)
        assert torch.cat([o1, o2]).abs().max() > 3, "offsets should reach beyond the neighbouring pixels"
        want = dcn(x).numpy()
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5, err_msg=f"seed {seed}")
