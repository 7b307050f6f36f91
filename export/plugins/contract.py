"""What every hida_rt plugin declares (`PluginSpec`), and the shape helpers the per-op modules share.

A `PluginSpec` turns the input shapes a plugin sees into what its kernel
launch needs. Shapes are tuples whose entries are ints (tests, L4) or
TensorRT symbolic dimensions (`trtp.ShapeExpr`, inside `aot_impl`); the int32
extras and the grid are computed with `+ - * //` only, with the symbolic
operand on the left, which is all `trtp.ShapeExpr` supports. Dimensions that
pick a kernel configuration (H*W, channels) must be build-time constants;
only the batch may vary inside an engine.

The kernels and their tile choices belong to hida_rt.kernels (`aot_kernel` /
`aot_*_kernel`, each returning an `AotKernel`); a plugin only maps its inputs
onto them, so the TensorRT host launches what the torch host launches.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

# ONNX domain of the plugin nodes and TensorRT plugin namespace ("hida_rt::ida"), like torch.ops.hida_rt.*.
NAMESPACE = "hida_rt"
DOMAIN = NAMESPACE
DOMAIN_VERSION = 1

Shape = Sequence  # of int or trtp.ShapeExpr


def static(dim, what: str = "dimension") -> int:
    """A dimension that must be known when the engine is built (TensorRT: a constant ShapeExpr)."""
    if isinstance(dim, int):
        return dim
    if getattr(dim, "is_fake", False) or not dim.is_constant:
        raise ValueError(f"the {what} must be a build-time constant (only the batch may vary in a HIDA engine)")
    return int(dim.constant_value())


def nchw(shape: Shape):
    n, c, h, w = shape
    return n, c, h, w


def static_hw(shape: Shape) -> int:
    """H*W of an NCHW shape, which picks the kernel's tiles: a build-time constant."""
    _, _, h, w = nchw(shape)
    return static(h, "height") * static(w, "width")


def like_first(shapes):
    return tuple(shapes[0])


@dataclass(frozen=True)
class PluginSpec:
    """One plugin. `inputs` are the plugin's tensor inputs in kernel order (the kernel's
    pointer parameters without `_ptr`); `kernel(dtype, shapes)` gives the hida_rt.kernels
    AotKernel; `scalars(shapes)` the int32 extras by name; `output_shape(shapes)` the
    output's shape; `reference(*tensors)` the plain-PyTorch result (hida_rt.model.ops)."""

    name: str
    inputs: tuple[str, ...]
    kernel: Callable[[str, Sequence[Shape]], object]
    scalars: Callable[[Sequence[Shape]], dict]
    output_shape: Callable[[Sequence[Shape]], tuple]
    reference: Callable[..., torch.Tensor]
    # Input shapes of a small instance, used to ask the kernel description for its pointer dtypes.
    probe: tuple[tuple[int, ...], ...]
    doc: str = ""

    @property
    def plugin_id(self) -> str:
        return f"{NAMESPACE}::{self.name}"

    def dtypes(self, data_dtype: str) -> tuple[dict[str, str], str]:
        """(input name -> "fp16"/"fp32", output dtype) when the data (activations) are `data_dtype`."""
        k = self.kernel(data_dtype, self.probe)
        ins = {name: k.dtypes[f"{name}_ptr"] for name in self.inputs}
        return ins, k.dtypes[k.outputs[0]]

    def type_columns(self) -> list[str]:
        """TensorRT autotune types per input then output: "FP32|FP16" where the tensor follows the data
        dtype (the two columns pair up: all FP32 or all FP16), "FP32" where it is FP32 either way."""
        names = {"fp32": "FP32", "fp16": "FP16"}
        (ins32, out32), (ins16, out16) = self.dtypes("fp32"), self.dtypes("fp16")
        pairs = [(ins32[i], ins16[i]) for i in self.inputs] + [(out32, out16)]
        return [names[a] if a == b else f"{names[a]}|{names[b]}" for a, b in pairs]

    def output_always_fp32(self) -> bool:
        return self.dtypes("fp16")[1] == "fp32" and self.dtypes("fp32")[1] == "fp32"

    def ordered_scalars(self, shapes: Sequence[Shape], kernel=None) -> list[tuple[str, object]]:
        """The int32 extras as (name, value) in the kernel's parameter order."""
        kernel = kernel or self.kernel("fp32", shapes)
        values = self.scalars(shapes)
        if set(values) != set(kernel.scalars):
            raise AssertionError(f"{self.name}: extras {sorted(values)} != kernel's {list(kernel.scalars)}")
        return [(name, values[name]) for name in kernel.scalars]
