"""Run the TensorRT ONNX on a CPU: onnx.reference with each plugin node evaluated by its torch reference.

    sketch = evaluate(trt_model, photo, depth, style)       # NumPy in, NumPy out

This is the L2 proof (docs/proof.md): every graph pass is checked by running
the rewritten graph, standard ops by ONNX's own reference implementation,
the `hida_rt` plugin ops by the plain-PyTorch expressions the kernels are
tested against (hida_rt.model.ops, via specs.PluginSpec.reference). Each
plugin op also checks that its inputs carry the dtypes its kernel declares
(FP32 parameters in an FP16 graph), so a wrong cast in the FP16 pass fails
here rather than inside TensorRT.

Two standard ops run through torch instead, because onnx.reference's versions
cannot serve a full-size network: ConvTranspose (pure-Python loops, ~90 s for
one 128-channel layer at 128x128) and FP16 Conv (NumPy has no FP16 GEMM:
~25 s per layer). The torch versions compute in FP32 and round the result
to the data dtype, which is what TensorRT's FP16 convolutions do (FP32
accumulation). tests/tensorrt/test_reference_ops.py checks both against
onnx.reference's Conv/ConvTranspose on small inputs.
"""
from __future__ import annotations

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from .specs import DOMAIN, PLUGINS, PluginSpec

_DTYPE_NAMES = {np.dtype(np.float16): "fp16", np.dtype(np.float32): "fp32"}


class PluginDtypeError(ValueError):
    """A plugin node received a tensor of another dtype than its kernel takes (not a TypeError:
    onnx.reference rewraps those without the message)."""


def _tensor(a: np.ndarray) -> torch.Tensor:
    a = np.ascontiguousarray(a)
    # The evaluator's arrays are read-only views; torch wants memory it may write.
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def _plugin_op(spec: PluginSpec) -> type[OpRun]:
    def _run(self, *inputs, plugin_namespace=None, aot=None):
        data = _DTYPE_NAMES.get(inputs[0].dtype)
        if data is None:
            raise PluginDtypeError(f"{spec.name}: data input has dtype {inputs[0].dtype}, expected fp16 or fp32")
        want, out_dtype = spec.dtypes(data)
        for name, value in zip(spec.inputs, inputs):
            if _DTYPE_NAMES.get(value.dtype) != want[name]:
                raise PluginDtypeError(f"{spec.name}: input {name} is {value.dtype}, its kernel takes {want[name]}")
        with torch.no_grad():
            out = spec.reference(*(_tensor(v) for v in inputs))
        expect = torch.float16 if out_dtype == "fp16" else torch.float32
        if out.dtype != expect:
            raise AssertionError(f"{spec.name}: reference returned {out.dtype}, the kernel writes {out_dtype}")
        return (out.numpy(),)

    return type(spec.name, (OpRun,), {"op_domain": DOMAIN, "_run": _run, "__doc__": spec.doc})


PLUGIN_OPS = [_plugin_op(spec) for spec in PLUGINS.values()]


def _pads_2d(pads) -> tuple[int, int, int, int]:
    pads = list(pads or [0, 0, 0, 0])
    if len(pads) != 4:
        raise NotImplementedError(f"only 2-D convolutions are evaluated here, got pads {pads}")
    return pads[0], pads[1], pads[2], pads[3]


def _round_to(out: torch.Tensor, like: np.ndarray) -> np.ndarray:
    return out.to(torch.float16 if like.dtype == np.float16 else torch.float32).numpy()


class Conv(OpRun):
    """ONNX Conv (2-D, auto_pad NOTSET) in torch: FP32 compute, result in the input's dtype."""

    op_domain = ""

    def _run(self, x, w, b=None, auto_pad=None, dilations=None, group=None, kernel_shape=None, pads=None,
             strides=None):
        if auto_pad not in (None, "NOTSET", b"NOTSET"):
            raise NotImplementedError(f"Conv auto_pad={auto_pad!r}")
        top, left, bottom, right = _pads_2d(pads)
        xt = F.pad(_tensor(x).float(), (left, right, top, bottom))
        out = F.conv2d(xt, _tensor(w).float(), None if b is None else _tensor(b).float(),
                       stride=tuple(strides or (1, 1)), dilation=tuple(dilations or (1, 1)), groups=group or 1)
        return (_round_to(out, x),)


class ConvTranspose(OpRun):
    """ONNX ConvTranspose (2-D, symmetric pads, no output_shape) in torch: FP32 compute, input's dtype out."""

    op_domain = ""

    def _run(self, x, w, b=None, auto_pad=None, dilations=None, group=None, kernel_shape=None,
             output_padding=None, output_shape=None, pads=None, strides=None):
        if auto_pad not in (None, "NOTSET", b"NOTSET") or output_shape:
            raise NotImplementedError("ConvTranspose with auto_pad or output_shape")
        top, left, bottom, right = _pads_2d(pads)
        if (top, left) != (bottom, right):
            raise NotImplementedError(f"ConvTranspose with asymmetric pads {pads}")
        out = F.conv_transpose2d(_tensor(x).float(), _tensor(w).float(), None if b is None else _tensor(b).float(),
                                 stride=tuple(strides or (1, 1)), padding=(top, left),
                                 output_padding=tuple(output_padding or (0, 0)), groups=group or 1,
                                 dilation=tuple(dilations or (1, 1)))
        return (_round_to(out, x),)


FAST_STANDARD_OPS = [Conv, ConvTranspose]


def evaluator(model: onnx.ModelProto) -> ReferenceEvaluator:
    """A ReferenceEvaluator for a TensorRT ONNX model (plugin ops + the torch Conv/ConvTranspose)."""
    return ReferenceEvaluator(model, new_ops=PLUGIN_OPS + FAST_STANDARD_OPS)


def evaluate(model_or_evaluator, photo, depth, style) -> np.ndarray:
    """The sketch the TensorRT ONNX computes for these inputs (NumPy or torch, FP32), as float32 NumPy."""
    ev = model_or_evaluator if isinstance(model_or_evaluator, ReferenceEvaluator) else evaluator(model_or_evaluator)
    feeds = {name: np.ascontiguousarray(t.numpy() if isinstance(t, torch.Tensor) else t, dtype=np.float32)
             for name, t in (("photo", photo), ("depth", depth), ("style", style))}
    return np.asarray(ev.run(None, feeds)[0], dtype=np.float32)
