"""The contract of each plugin: inputs, output, int32 extras, kernel config, torch reference.

A `PluginSpec` turns the input shapes a plugin sees into what its kernel
launch needs. Shapes are tuples whose entries are ints (tests, L4) or
TensorRT symbolic dimensions (`trtp.ShapeExpr`, inside `aot_impl`); the int32
extras and the grid are computed with `+ - * //` only, with the symbolic
operand on the left, which is all `trtp.ShapeExpr` supports. Dimensions that
pick a kernel configuration (H*W, channels) must be build-time constants;
only the batch may vary inside an engine.

The kernels themselves and their tile choices belong to hida_rt.kernels
(`aot_kernel` / `aot_*_kernel`, each returning an `AotKernel`); this module
only maps plugin inputs onto them, so the TensorRT host launches exactly
what the torch host launches.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from hida_rt.model import ops

# ONNX domain of the plugin nodes and TensorRT plugin namespace ("hida_rt::ida"), like torch.ops.hida_rt.*.
NAMESPACE = "hida_rt"
DOMAIN = NAMESPACE
DOMAIN_VERSION = 1
# The deformable conv's taps (3x3) and its offset/mask conv's channels per group: 2*9 offsets + 9 mask logits.
TAPS = 9
OM_CHANNELS_PER_GROUP = 3 * TAPS

Shape = Sequence  # of int or trtp.ShapeExpr


def static(dim, what: str = "dimension") -> int:
    """A dimension that must be known when the engine is built (TensorRT: a constant ShapeExpr)."""
    if isinstance(dim, int):
        return dim
    if getattr(dim, "is_fake", False) or not dim.is_constant:
        raise ValueError(f"the {what} must be a build-time constant (only the batch may vary in a HIDA engine)")
    return int(dim.constant_value())


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

    def ordered_scalars(self, shapes: Sequence[Shape], kernel=None) -> list[tuple[str, object]]:
        """The int32 extras as (name, value) in the kernel's parameter order."""
        kernel = kernel or self.kernel("fp32", shapes)
        values = self.scalars(shapes)
        if set(values) != set(kernel.scalars):
            raise AssertionError(f"{self.name}: extras {sorted(values)} != kernel's {list(kernel.scalars)}")
        return [(name, values[name]) for name in kernel.scalars]


def _nchw(shape: Shape):
    n, c, h, w = shape
    return n, c, h, w


# ---------------------------------------------------------------- the five plugins

def _ida_kernel(dtype, shapes):
    from hida_rt.kernels import ida
    _, _, h, w = _nchw(shapes[0])
    return ida.aot_kernel(dtype, static(h, "height") * static(w, "width"))


def _ida_scalars(shapes):
    n, c, h, w = _nchw(shapes[0])
    return {"n_rows": n * c, "C": c, "HW": h * w}


def _ida_reference(y, tgb, p1, p2):
    c = y.shape[1]
    return ops.ida_merged(y, tgb, p1.reshape(1, c, 1, 1), p2.reshape(1, c, 1, 1))


def _mean_kernel(dtype, shapes):
    from hida_rt.kernels import meta_acon
    _, _, h, w = _nchw(shapes[0])
    return meta_acon.aot_mean_kernel(dtype, static(h, "height") * static(w, "width"))


def _mean_scalars(shapes):
    n, c, h, w = _nchw(shapes[0])
    return {"n_rows": n * c, "HW": h * w}


def _mean_reference(x):
    # MetaACON's own mean (over H, then over W; ops.meta_acon_beta), in FP32.
    n, c = x.shape[:2]
    return x.float().mean(dim=2, keepdim=True).mean(dim=3, keepdim=True).reshape(n, c)


def _apply_kernel(dtype, shapes):
    from hida_rt.kernels import meta_acon
    _, c, h, w = _nchw(shapes[0])
    hid = shapes[2][0]
    return meta_acon.aot_apply_kernel(dtype, static(c, "channel count"), static(h, "height") * static(w, "width"),
                                      static(hid, "hidden width"))


def _apply_scalars(shapes):
    n, c, h, w = _nchw(shapes[0])
    return {"N": n, "C": c, "HW": h * w, "HID": shapes[2][0]}


def _apply_reference(x, mean, fc1_w, fc1_b, fc2_w, fc2_b, p1, p2):
    n, c = x.shape[:2]
    hid = fc1_b.numel()
    # meta_acon_beta of a 1x1 map is the MLP of that value: its mean is the value itself.
    beta = ops.meta_acon_beta(mean.float().reshape(n, c, 1, 1), fc1_w.reshape(hid, c, 1, 1), fc1_b,
                              fc2_w.reshape(c, hid, 1, 1), fc2_b)
    out = ops.acon(x.float(), p1.reshape(1, c, 1, 1), p2.reshape(1, c, 1, 1), beta)
    return out.to(x.dtype)


def _const_kernel(dtype, shapes):
    from hida_rt.kernels import meta_acon
    _, _, h, w = _nchw(shapes[0])
    return meta_acon.aot_const_kernel(dtype, static(h, "height") * static(w, "width"))


def _const_scalars(shapes):
    n, c, h, w = _nchw(shapes[0])
    return {"n_rows": n * c, "C": c, "HW": h * w}


def _const_reference(x, p1, p2, beta):
    c = x.shape[1]
    out = ops.acon(x.float(), p1.reshape(1, c, 1, 1), p2.reshape(1, c, 1, 1), beta.reshape(1, c, 1, 1))
    return out.to(x.dtype)


def deform_groups(om_channels) -> int:
    groups, rest = divmod(static(om_channels, "offset/mask channel count"), OM_CHANNELS_PER_GROUP)
    if rest or groups < 1:
        raise ValueError(f"deform_conv: {om_channels} offset/mask channels are not 3 x 9 taps x groups")
    return groups


def _deform_kernel(dtype, shapes):
    from hida_rt.kernels import deform_conv
    _, c_in, h, w = _nchw(shapes[0])
    c_out = shapes[2][2]
    # BLOCK_P follows the batch-1 pixel count: the DOG layers are latency-bound at 2x2..8x8.
    return deform_conv.aot_kernel(dtype, static(c_in, "input channels"), static(c_out, "output channels"),
                                  n_pixels=static(h, "height") * static(w, "width"),
                                  groups=deform_groups(shapes[1][1]))


def _deform_scalars(shapes):
    n, c_in, h, w = _nchw(shapes[0])
    return {"N": n, "C_in": c_in, "H": h, "W": w, "C_out": shapes[2][2]}


def _deform_reference(x, om, w, b):
    out = ops.dcn_from_offset_mask_conv(x.float(), om.float(), ops.weight_from_kcc(w.float()), b.float())
    return out.to(x.dtype)


def _like_first(shapes):
    return tuple(shapes[0])


PLUGINS: dict[str, PluginSpec] = {s.name: s for s in (
    PluginSpec("ida", ("y", "tgb", "p1", "p2"), _ida_kernel, _ida_scalars, _like_first, _ida_reference,
               probe=((1, 4, 4, 4), (1, 12, 4, 4), (4,), (4,)),
               doc="InfoACON + instance statistics (FP32) + DySPADE + residual, from the merged conv output"),
    PluginSpec("meta_acon_mean", ("x",), _mean_kernel, _mean_scalars,
               lambda shapes: (shapes[0][0], shapes[0][1]), _mean_reference,
               probe=((1, 4, 4, 4),), doc="MetaACON, launch 1 of 2: FP32 channel means"),
    PluginSpec("meta_acon_apply", ("x", "mean", "fc1_w", "fc1_b", "fc2_w", "fc2_b", "p1", "p2"), _apply_kernel,
               _apply_scalars, _like_first, _apply_reference,
               probe=((1, 4, 4, 4), (1, 4), (16, 4), (16,), (4, 16), (4,), (4,), (4,)),
               doc="MetaACON, launch 2 of 2: the switch MLP per program, then ACON"),
    PluginSpec("acon_const", ("x", "p1", "p2", "beta"), _const_kernel, _const_scalars, _like_first,
               _const_reference, probe=((1, 4, 4, 4), (4,), (4,), (4,)),
               doc="MetaACON whose input is instance-normalised: a build-time switch, elementwise"),
    PluginSpec("deform_conv", ("x", "om", "w", "b"), _deform_kernel, _deform_scalars,
               lambda shapes: (shapes[0][0], shapes[2][2], shapes[0][2], shapes[0][3]), _deform_reference,
               probe=((1, 4, 4, 4), (1, 54, 4, 4), (9, 4, 8), (8,)),
               doc="DCNv2 3x3 (DOG layers) from the raw offset/mask conv output"),
)}


def plugin_spec(name: str) -> PluginSpec:
    try:
        return PLUGINS[name]
    except KeyError:
        raise KeyError(f"no hida_rt plugin {name!r}; known: {', '.join(PLUGINS)}") from None
