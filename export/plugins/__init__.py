"""HIDA's TensorRT plugins: one AOT Python plugin per Triton kernel launch of hida_rt.kernels.

Each plugin is one node op in the TensorRT ONNX (domain and TensorRT plugin
namespace `hida_rt`, attributes `plugin_namespace="hida_rt"` and `aot=1` only)
and one launch of one `@triton.jit` kernel. Everything a plugin computes
comes from its input tensors and their shapes; it has no attributes, because
TensorRT does not serialize the attributes of AOT plugins into the engine.

Organised per op, as TensorRT's own plugin folders are: each op module holds
its plugin spec (inputs, output, dtypes, int32 extras, kernel, launch grid:
see its docstring), its torch reference and its `tensorrt.plugin`
registration (`register(qdp)`, called only once TensorRT is imported):

| module | plugins | kernel (hida_rt.kernels) |
|---|---|---|
| `ida` | `ida` | `ida.ida_row_kernel` |
| `meta_acon` | `meta_acon_mean`, `meta_acon_apply` | `meta_acon.meta_acon_mean_kernel`, `meta_acon_apply_kernel` |
| `acon_const` | `acon_const` | `meta_acon.acon_const_kernel` |
| `deform_conv` | `deform_conv` | `deform_conv.deform_conv_kernel` |

Shared: `contract` (`PluginSpec`, shape helpers), `specs` (every plugin by
name), `compile` (plan a launch, build its PTX with hida_rt.kernels._aot, the
one PTX harness), `reference` (onnx.reference ops that evaluate each plugin
with its torch reference, for the L2 proof), `tensorrt_qdp` (imports
TensorRT and registers every op module; only the builder and the backend
load it).
"""
from .specs import DOMAIN, NAMESPACE, PLUGINS, PluginSpec, plugin_spec

__all__ = ["DOMAIN", "NAMESPACE", "PLUGINS", "PluginSpec", "plugin_spec"]
