"""The DOG layers' deformable conv as the standard ONNX `DeformConv` (opset >= 19).

The eager model computes DCNv2 in plain PyTorch (gathers, a matmul), which
TorchScript tracing would spell out as a few dozen primitive ONNX nodes that
no runtime recognises as one operator. For export, each `blocks.DCN`
instance is switched (on that instance only, for the duration of a `with`)
to call `torch.ops.hida_onnx.deform_conv2d`, a `torch.library` custom op
whose kernel is the same reference `ops.modulated_deform_conv2d`, and whose
ONNX symbolic emits one `DeformConv` node:

    DeformConv(X, W, offset, B, mask)  group=1, offset_group=2, 3x3, pad 1

The offset/mask conv and the sigmoid stay ordinary ONNX nodes in the DCN's
scope; the chunk into (o1, o2, m) and concat(o1, o2) become two constant
Slices of the 54-channel conv output (the first 36 channels are exactly
concat(o1, o2)), which a graph pass can fold into a plugin that reads the
raw conv output.

Only the TorchScript exporter (`dynamo=False`) is served: with torch 2.13
the dynamo exporter built its graph at opset 18 and rejected a DeformConv
translation at 19.
"""
from __future__ import annotations

import contextlib
import types
from typing import Iterator

import torch
from torch.onnx import register_custom_op_symbolic
from torch.onnx import symbolic_helper

from hida_rt.model import ops
from hida_rt.model.blocks import DCN

# The op exists for export only; its own namespace keeps it clear of the
# kernels' runtime ops.
OP_NAME = "hida_onnx::deform_conv2d"
# DeformConv entered the standard ONNX domain at opset 19.
MIN_OPSET = 19


@torch.library.custom_op(OP_NAME, mutates_args=())
def deform_conv2d(x: torch.Tensor, weight: torch.Tensor, offset: torch.Tensor, bias: torch.Tensor,
                  mask: torch.Tensor, stride: int, padding: int, dilation: int,
                  offset_group: int) -> torch.Tensor:
    """Modulated deformable conv with ONNX DeformConv's input order (X, W, offset, B, mask)."""
    if offset.shape[1] != 2 * offset_group * weight.shape[2] * weight.shape[3]:
        raise ValueError(f"offset has {offset.shape[1]} channels, expected 2 x {offset_group} groups x "
                         f"{weight.shape[2]}x{weight.shape[3]} taps")
    return ops.modulated_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation)


@deform_conv2d.register_fake
def _deform_conv2d_fake(x, weight, offset, bias, mask, stride, padding, dilation, offset_group):
    kh, kw = weight.shape[2], weight.shape[3]
    ho = (x.shape[2] + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (x.shape[3] + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    return x.new_empty(x.shape[0], weight.shape[0], ho, wo)


@symbolic_helper.parse_args("v", "v", "v", "v", "v", "i", "i", "i", "i")
def _deform_conv2d_symbolic(g, x, weight, offset, bias, mask, stride, padding, dilation, offset_group):
    kernel = symbolic_helper._get_tensor_sizes(weight)[2:]
    attrs = dict(dilations_i=[dilation, dilation], group_i=1, offset_group_i=offset_group,
                 pads_i=[padding] * 4, strides_i=[stride, stride])
    if kernel and all(isinstance(k, int) for k in kernel):
        attrs["kernel_shape_i"] = list(kernel)
    return g.op("DeformConv", x, weight, offset, bias, mask, **attrs)


# Registered for MIN_OPSET, the exporter uses it for every later opset too.
register_custom_op_symbolic(OP_NAME, _deform_conv2d_symbolic, MIN_OPSET)


def _dcn_forward_for_export(self: DCN, x: torch.Tensor) -> torch.Tensor:
    # Same math as DCN.forward (ops.split_offset_mask): cat(o1, o2) of the three equal chunks is
    # the first two thirds, so two Slices with constant bounds replace chunk + concat, whose
    # traced form computes the split points from the tensor's shape at run time.
    om = self.conv_offset_mask(x)
    kh, kw = self.conv_offset_mask.kernel_size
    n_offset = 2 * self.conv_offset_mask.out_channels // 3
    offset, mask = om[:, :n_offset], torch.sigmoid(om[:, n_offset:])
    return torch.ops.hida_onnx.deform_conv2d(x, self.weight, offset, self.bias, mask, 1, kh // 2, 1,
                                             n_offset // (2 * kh * kw))


@contextlib.contextmanager
def deform_conv_as_onnx_op(model: torch.nn.Module) -> Iterator[int]:
    """Within the block, every DCN in `model` runs through the exportable custom op.

    Patches instances, not the class, so other models (and other threads)
    are untouched. Yields the number of DCN modules switched.
    """
    dcns = [m for m in model.modules() if isinstance(m, DCN)]
    for m in dcns:
        m.forward = types.MethodType(_dcn_forward_for_export, m)
    try:
        yield len(dcns)
    finally:
        for m in dcns:
            del m.forward
