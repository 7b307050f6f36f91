"""Compile one plugin's kernel exactly as its `aot_impl` does: PTX plus everything a launch needs.

    launch = compile_plugin("ida", [(1, 64, 128, 128), (1, 192, 128, 128), (64,), (64,)], "fp16")
    launch.ptx, launch.kernel_name, launch.grid, launch.block, launch.shared_mem, launch.args

`aot_impl` (tensorrt_qdp) calls `compile_plugin` with TensorRT's symbolic
shapes and hands TensorRT the PTX, the kernel name, the grid/block/shared
memory and the int32 extras; the CPU tests and the L4 GPU test call it with
integer shapes and check or launch the very same PTX. The build itself and
its contract checks (argument order: input pointers, int32 extras, output
pointers, then only Triton's hidden scratch pointers; no scratch memory) are
hida_rt.kernels._aot's, the one PTX harness; this module only plans the
launch of a plugin (`plan_launch`: kernel, extras, grid) from its spec.

`compile_isolated` builds in a fresh process (optionally another Python, e.g.
one with a different Triton), because a process with TRITON_INTERPRET=1 (the
CPU test session) cannot compile to PTX.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Sequence

from hida_rt.kernels import _aot

from . import ptx_isa
from .specs import plugin_spec

# Triton's default target when no GPU says otherwise: Hopper (H100/H200).
DEFAULT_ARCH = 90
WARP = 32


@dataclass(frozen=True)
class PluginLaunch:
    plugin: str
    dtype: str
    kernel_name: str
    ptx: str
    target: str
    grid: tuple            # 3 entries: ints, or TensorRT symbolic expressions inside aot_impl
    block: tuple           # (threads, 1, 1)
    shared_mem: int        # bytes of dynamic shared memory per block
    args: tuple[str, ...]  # kernel parameters in launch order: inputs, int32 extras, outputs
    scalars: tuple         # ((name, value), ...) of the int32 extras, in order
    ptx_params: int        # parameters of the PTX entry: len(args) + Triton's hidden scratch pointers
    ptx_param_types: tuple  # "ptr" / "u32" per PTX parameter, in order
    global_scratch_size: int
    profile_scratch_size: int
    triton: str            # the Triton version that built the PTX

    @property
    def hidden_params(self) -> int:
        return self.ptx_params - len(self.args)

    def report(self) -> dict:
        """A JSON-able summary (symbolic grid entries become strings)."""
        d = asdict(self)
        d["grid"] = [g if isinstance(g, int) else str(g) for g in self.grid]
        d["scalars"] = [[n, v if isinstance(v, int) else str(v)] for n, v in self.scalars]
        return json.loads(json.dumps(d))  # plain JSON types: lists, as a report read back from a file


def _pad3(grid: tuple) -> tuple:
    if not 1 <= len(grid) <= 3:
        raise ValueError(f"a CUDA grid has 1 to 3 dimensions, got {grid}")
    return tuple(grid) + (1,) * (3 - len(grid))


@dataclass(frozen=True)
class LaunchPlan:
    """Everything about a plugin launch except the compiled kernel: kernel choice, extras, grid, args."""

    kernel: _aot.AotKernel
    scalars: tuple          # ((name, value), ...) of the int32 extras, in parameter order
    grid: tuple             # 3 entries
    block: tuple
    args: tuple[str, ...]


def plan_launch(name: str, shapes: Sequence[Sequence], dtype: str) -> LaunchPlan:
    """The kernel, int32 extras and grid of plugin `name` for these input shapes (ints or symbolic)."""
    spec = plugin_spec(name)
    if len(shapes) != len(spec.inputs):
        raise ValueError(f"{name}: {len(shapes)} input shapes for inputs {spec.inputs}")
    kernel = spec.kernel(dtype, shapes)
    if kernel.inputs != tuple(f"{i}_ptr" for i in spec.inputs):
        raise AssertionError(f"{name}: plugin inputs {spec.inputs} != kernel pointers {kernel.inputs}")
    scalars = tuple(spec.ordered_scalars(shapes, kernel))
    return LaunchPlan(kernel=kernel, scalars=scalars, grid=_pad3(tuple(kernel.grid(**dict(scalars)))),
                      block=(kernel.num_warps * WARP, 1, 1), args=kernel.runtime_args())


def _launch(name: str, dtype: str, plan: LaunchPlan, built: _aot.KernelBuild, arch: int) -> PluginLaunch:
    """The launch description, after checking the build against the AOT contract (AotContractError)."""
    _aot.check_contract(plan.kernel, built, arch)
    return PluginLaunch(
        plugin=name, dtype=dtype, kernel_name=built.kernel_name, ptx=built.ptx, target=built.target,
        grid=plan.grid, block=plan.block, shared_mem=built.shared, args=plan.args, scalars=plan.scalars,
        ptx_params=len(built.ptx_params), ptx_param_types=built.ptx_params,
        global_scratch_size=built.global_scratch_size, profile_scratch_size=built.profile_scratch_size,
        triton=built.triton)


def compile_plugin(name: str, shapes: Sequence[Sequence], dtype: str, arch: int = DEFAULT_ARCH,
                   ptx_version: int | None = None) -> PluginLaunch:
    """PTX and launch description of plugin `name` for these input shapes and data dtype ("fp16"/"fp32").

    `ptx_version` (e.g. 88): the PTX ISA to declare; None: the engine build's choice
    (ptx_isa.building_with), else Triton's default."""
    plan = plan_launch(name, shapes, dtype)
    version = ptx_version if ptx_version is not None else ptx_isa.current()
    return _launch(name, dtype, plan, _aot.build(plan.kernel, arch, ptx_version=version), arch)


def compile_isolated(requests: Sequence[dict], arch: int = DEFAULT_ARCH, python: str | None = None,
                     timeout: float = 900, ptx_version: int | None = None, assemble: bool = False) -> list[dict]:
    """compile_plugin(**request) for each {"plugin", "shapes", "dtype"}, built in a fresh process.

    `python`: the interpreter that builds (default this one; e.g. a venv with another Triton).
    Returns the reports (PluginLaunch.report(), PTX included) in request order. Only integer shapes.
    `ptx_version`: the PTX ISA to declare (None: Triton's default); `assemble`: add "sass", the
    building Triton's ptxas -v of each PTX (hida_rt.kernels._ptxas).
    """
    plans = [(r["plugin"], r["dtype"], plan_launch(r["plugin"], [tuple(s) for s in r["shapes"]], r["dtype"]))
             for r in requests]
    builds = _aot.build_isolated([p.kernel for _, _, p in plans], arch=arch, python=python, timeout=timeout,
                                 ptx_version=ptx_version, assemble=assemble)
    return [dict(_launch(name, dtype, plan, built, arch).report(), sass=built.sass)
            for (name, dtype, plan), built in zip(plans, builds)]
