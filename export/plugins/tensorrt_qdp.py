"""The hida_rt plugins as TensorRT ahead-of-time Python plugins (`tensorrt.plugin`, TensorRT >= 10.9).

Importing this module calls each op module's `register(qdp)` (specs.OP_MODULES),
which declares, for each of its plugins:

- `@trtp.register`: output shape and dtype from the input descriptors;
- `@trtp.autotune`: the type combinations its kernel takes (data FP16 or
  FP32 together, parameters always FP32), linear layout, one tactic;
- `@trtp.aot_impl`: the Triton kernel compiled to PTX by
  compile.compile_plugin (the same function the CPU and L4 tests call), its
  grid/block/shared memory as `trtp.KernelLaunchParams`, and the int32
  extras as `trtp.SymIntExprs` (symbolic in the batch).

There is no `@trtp.impl` (JIT): the engine stores each kernel's PTX, so it
runs from C++ with no Python and no plugin library. The ONNX nodes carry
`aot=1`, which makes the ONNX parser request the AOT implementation
(QuickPluginCreationRequest STRICT_AOT). Plugins have no attributes:
TensorRT does not serialize the attributes of AOT plugins into the engine, so
everything comes from the input tensors and their shapes.

Import requires TensorRT; everything it calls (specs, compile) does not.
No `from __future__ import annotations` here or in the op modules:
tensorrt.plugin checks the annotations as classes (issubclass).
"""
import sys
from typing import Tuple, Union

import tensorrt as trt
import tensorrt.plugin as trtp

from .compile import DEFAULT_ARCH, compile_plugin
from .contract import PluginSpec
from .specs import OP_MODULES, PLUGINS

AotResult = Tuple[Union[str, bytes], Union[str, bytes], trtp.KernelLaunchParams, trtp.SymIntExprs]


def _data_dtype(desc: trtp.TensorDesc) -> str:
    if desc.dtype == trt.float16:
        return "fp16"
    if desc.dtype == trt.float32:
        return "fp32"
    raise TypeError(f"hida_rt plugins take FP16 or FP32 data, got {desc.dtype}")


def target_arch() -> int:
    """Compute capability of the GPU TensorRT builds for (the PTX must not be newer than it)."""
    try:
        import torch
        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            return 10 * major + minor
    except Exception:  # no torch CUDA: fall back to Hopper, Triton's default here
        pass
    return DEFAULT_ARCH


def _shapes(inputs: tuple) -> list[tuple]:
    return [tuple(d.shape_expr[i] for i in range(d.ndim)) for d in inputs]


def type_combination(spec: PluginSpec) -> trtp.AutoTuneCombination:
    """The kernel's dtypes (PluginSpec.type_columns), linear layout, the default tactic."""
    return trtp.AutoTuneCombination(", ".join(spec.type_columns()), "LINEAR")


def aot_launch(spec: PluginSpec, inputs: tuple) -> AotResult:
    """What `aot_impl` returns: kernel name, PTX, launch parameters, int32 extras (symbolic)."""
    launch = compile_plugin(spec.name, _shapes(inputs), _data_dtype(inputs[0]), arch=target_arch())
    params = trtp.KernelLaunchParams()
    params.grid_x, params.grid_y, params.grid_z = launch.grid
    params.block_x, params.block_y, params.block_z = launch.block
    params.shared_mem = launch.shared_mem
    extras = trtp.SymIntExprs.from_tuple([trtp.SymInt32(value) for _, value in launch.scalars])
    return launch.kernel_name, launch.ptx, params, extras


def output_desc(spec: PluginSpec, inputs: tuple) -> trtp.TensorDesc:
    """The output descriptor: the spec's shape; FP32 where the kernel always writes FP32, else the data dtype."""
    shape = spec.output_shape(_shapes(inputs))
    return trtp.from_shape_expr(shape, dtype=trt.float32 if spec.output_always_fp32() else inputs[0].dtype)


for _module in OP_MODULES:
    _module.register(sys.modules[__name__])

REGISTERED = tuple(spec.plugin_id for spec in PLUGINS.values())
