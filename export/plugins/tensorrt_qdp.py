"""The hida_rt plugins as TensorRT ahead-of-time Python plugins (`tensorrt.plugin`, TensorRT >= 10.9).

Importing this module registers, for each plugin of specs.PLUGINS:

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
No `from __future__ import annotations` here: tensorrt.plugin checks the
annotations as classes (issubclass), so they must not become strings.
"""
from typing import List, Tuple, Union

import tensorrt as trt
import tensorrt.plugin as trtp

from .compile import DEFAULT_ARCH, compile_plugin
from .specs import PLUGINS, plugin_spec

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


def _type_combination(name: str) -> trtp.AutoTuneCombination:
    """The kernel's dtypes (specs.PluginSpec.type_columns), linear layout, the default tactic."""
    return trtp.AutoTuneCombination(", ".join(plugin_spec(name).type_columns()), "LINEAR")


def _aot(name: str, inputs: tuple) -> AotResult:
    shapes = [tuple(d.shape_expr[i] for i in range(d.ndim)) for d in inputs]
    launch = compile_plugin(name, shapes, _data_dtype(inputs[0]), arch=target_arch())
    params = trtp.KernelLaunchParams()
    params.grid_x, params.grid_y, params.grid_z = launch.grid
    params.block_x, params.block_y, params.block_z = launch.block
    params.shared_mem = launch.shared_mem
    extras = trtp.SymIntExprs.from_tuple([trtp.SymInt32(value) for _, value in launch.scalars])
    return launch.kernel_name, launch.ptx, params, extras


def _output(name: str, inputs: tuple) -> trtp.TensorDesc:
    spec = plugin_spec(name)
    shape = spec.output_shape([tuple(d.shape_expr[i] for i in range(d.ndim)) for d in inputs])
    if spec.dtypes("fp16")[1] == "fp32" and spec.dtypes("fp32")[1] == "fp32":
        return trtp.from_shape_expr(shape, dtype=trt.float32)
    return trtp.from_shape_expr(shape, dtype=inputs[0].dtype)


# ---------------------------------------------------------------- ida

@trtp.register("hida_rt::ida")
def ida_desc(y: trtp.TensorDesc, tgb: trtp.TensorDesc, p1: trtp.TensorDesc,
             p2: trtp.TensorDesc) -> trtp.TensorDesc:
    return y.like()


@trtp.autotune("hida_rt::ida")
def ida_autotune(y, tgb, p1, p2, outputs) -> List[trtp.AutoTuneCombination]:
    return [_type_combination("ida")]


@trtp.aot_impl("hida_rt::ida")
def ida_aot(y: trtp.TensorDesc, tgb: trtp.TensorDesc, p1: trtp.TensorDesc, p2: trtp.TensorDesc,
            outputs: Tuple[trtp.TensorDesc], tactic: int) -> AotResult:
    return _aot("ida", (y, tgb, p1, p2))


# ---------------------------------------------------------------- meta_acon_mean

@trtp.register("hida_rt::meta_acon_mean")
def meta_acon_mean_desc(x: trtp.TensorDesc) -> trtp.TensorDesc:
    return _output("meta_acon_mean", (x,))


@trtp.autotune("hida_rt::meta_acon_mean")
def meta_acon_mean_autotune(x, outputs) -> List[trtp.AutoTuneCombination]:
    return [_type_combination("meta_acon_mean")]


@trtp.aot_impl("hida_rt::meta_acon_mean")
def meta_acon_mean_aot(x: trtp.TensorDesc, outputs: Tuple[trtp.TensorDesc], tactic: int) -> AotResult:
    return _aot("meta_acon_mean", (x,))


# ---------------------------------------------------------------- meta_acon_apply

@trtp.register("hida_rt::meta_acon_apply")
def meta_acon_apply_desc(x: trtp.TensorDesc, mean: trtp.TensorDesc, fc1_w: trtp.TensorDesc,
                         fc1_b: trtp.TensorDesc, fc2_w: trtp.TensorDesc, fc2_b: trtp.TensorDesc,
                         p1: trtp.TensorDesc, p2: trtp.TensorDesc) -> trtp.TensorDesc:
    return x.like()


@trtp.autotune("hida_rt::meta_acon_apply")
def meta_acon_apply_autotune(x, mean, fc1_w, fc1_b, fc2_w, fc2_b, p1, p2,
                             outputs) -> List[trtp.AutoTuneCombination]:
    return [_type_combination("meta_acon_apply")]


@trtp.aot_impl("hida_rt::meta_acon_apply")
def meta_acon_apply_aot(x: trtp.TensorDesc, mean: trtp.TensorDesc, fc1_w: trtp.TensorDesc,
                        fc1_b: trtp.TensorDesc, fc2_w: trtp.TensorDesc, fc2_b: trtp.TensorDesc,
                        p1: trtp.TensorDesc, p2: trtp.TensorDesc, outputs: Tuple[trtp.TensorDesc],
                        tactic: int) -> AotResult:
    return _aot("meta_acon_apply", (x, mean, fc1_w, fc1_b, fc2_w, fc2_b, p1, p2))


# ---------------------------------------------------------------- acon_const

@trtp.register("hida_rt::acon_const")
def acon_const_desc(x: trtp.TensorDesc, p1: trtp.TensorDesc, p2: trtp.TensorDesc,
                    beta: trtp.TensorDesc) -> trtp.TensorDesc:
    return x.like()


@trtp.autotune("hida_rt::acon_const")
def acon_const_autotune(x, p1, p2, beta, outputs) -> List[trtp.AutoTuneCombination]:
    return [_type_combination("acon_const")]


@trtp.aot_impl("hida_rt::acon_const")
def acon_const_aot(x: trtp.TensorDesc, p1: trtp.TensorDesc, p2: trtp.TensorDesc, beta: trtp.TensorDesc,
                   outputs: Tuple[trtp.TensorDesc], tactic: int) -> AotResult:
    return _aot("acon_const", (x, p1, p2, beta))


# ---------------------------------------------------------------- deform_conv

@trtp.register("hida_rt::deform_conv")
def deform_conv_desc(x: trtp.TensorDesc, om: trtp.TensorDesc, w: trtp.TensorDesc,
                     b: trtp.TensorDesc) -> trtp.TensorDesc:
    return _output("deform_conv", (x, om, w, b))


@trtp.autotune("hida_rt::deform_conv")
def deform_conv_autotune(x, om, w, b, outputs) -> List[trtp.AutoTuneCombination]:
    return [_type_combination("deform_conv")]


@trtp.aot_impl("hida_rt::deform_conv")
def deform_conv_aot(x: trtp.TensorDesc, om: trtp.TensorDesc, w: trtp.TensorDesc, b: trtp.TensorDesc,
                    outputs: Tuple[trtp.TensorDesc], tactic: int) -> AotResult:
    return _aot("deform_conv", (x, om, w, b))


REGISTERED = tuple(spec.plugin_id for spec in PLUGINS.values())
