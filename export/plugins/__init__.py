"""HIDA's TensorRT plugins: one AOT Python plugin per Triton kernel of hida_rt.kernels.

Each plugin is one node op in the TensorRT ONNX (domain and TensorRT plugin
namespace `hida_rt`, attributes `plugin_namespace="hida_rt"` and `aot=1` only)
and one launch of one `@triton.jit` kernel. Everything a plugin computes
comes from its input tensors and their shapes; it has no attributes, because
TensorRT does not serialize the attributes of AOT plugins into the engine.

| op | inputs (kernel order) | output | kernel |
|---|---|---|---|
| `ida` | y, tgb, p1 (C, fp32), p2 (C, fp32) | like y | kernels/ida.py `ida_row_kernel` |
| `meta_acon_mean` | x | mean (N, C) fp32 | kernels/meta_acon.py `meta_acon_mean_kernel` |
| `meta_acon_apply` | x, mean, fc1_w (HID, C), fc1_b, fc2_w (C, HID), fc2_b, p1, p2 (all fp32 but x) | like x | `meta_acon_apply_kernel` |
| `acon_const` | x, p1, p2, beta (C, all fp32 but x) | like x | `acon_const_kernel` |
| `deform_conv` | x, om (N, 3*G*9, H, W), w (9, Cin, Cout, x's dtype), b (Cout, fp32) | (N, Cout, H, W) like x | kernels/deform_conv.py `deform_conv_kernel` |

Modules: `specs` (these contracts, importable without TensorRT or Triton),
`compile` (the Triton -> PTX step exactly as `aot_impl` runs it),
`reference` (onnx.reference ops that evaluate each plugin with its torch
reference, for the L2 proof), `tensorrt_qdp` (the `tensorrt.plugin`
registrations; imports TensorRT, so only the builder and the backend load it).
"""
from .specs import DOMAIN, NAMESPACE, PLUGINS, PluginSpec, plugin_spec

__all__ = ["DOMAIN", "NAMESPACE", "PLUGINS", "PluginSpec", "plugin_spec"]
