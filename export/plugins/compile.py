"""Compile one plugin's kernel exactly as its `aot_impl` does: PTX plus everything a launch needs.

    launch = compile_plugin("ida", [(1, 64, 128, 128), (1, 192, 128, 128), (64,), (64,)], "fp16")
    launch.ptx, launch.kernel_name, launch.grid, launch.block, launch.shared_mem, launch.args

`aot_impl` (tensorrt_qdp) calls `compile_plugin` with TensorRT's symbolic
shapes and hands TensorRT the PTX, the kernel name, the grid/block/shared
memory and the int32 extras; the CPU tests and the L4 GPU test call it with
integer shapes and check or launch the very same PTX. The argument order is
the AOT contract: input pointers, int32 extras, output pointers. Triton
appends two hidden pointer parameters (global and profile scratch) after
them; a plugin kernel must not use them (`global_scratch_size` and
`profile_scratch_size` 0), because TensorRT's AOT launch is not known to pass
them.

`python -m hida_rt.export.plugins.compile` reads a JSON list of
{"plugin", "shapes", "dtype"} requests on stdin and prints one JSON report per
line; `compile_isolated` runs it in a fresh process, because a process with
TRITON_INTERPRET=1 (the CPU test session) cannot compile to PTX.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Sequence

from .specs import plugin_spec

# Triton's default target when no GPU says otherwise: Hopper (H100/H200).
DEFAULT_ARCH = 90
WARP = 32


class ScratchMemoryUsed(RuntimeError):
    """A plugin kernel asked Triton for scratch memory, which the AOT launch cannot provide."""


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
    global_scratch_size: int
    profile_scratch_size: int

    @property
    def hidden_params(self) -> int:
        return self.ptx_params - len(self.args)

    def report(self) -> dict:
        """A JSON-able summary (symbolic grid entries become strings)."""
        d = asdict(self)
        d["grid"] = [g if isinstance(g, int) else str(g) for g in self.grid]
        d["scalars"] = [[n, v if isinstance(v, int) else str(v)] for n, v in self.scalars]
        return d


def _ptx_param_count(ptx: str, name: str) -> int:
    entry = re.search(rf"\.entry\s+{re.escape(name)}\s*\((.*?)\)", ptx, re.S)
    if not entry:
        raise RuntimeError(f"{name}: no .entry in the PTX Triton produced")
    return len(re.findall(r"\.param\s", entry.group(1)))


def _pad3(grid: tuple) -> tuple:
    if not 1 <= len(grid) <= 3:
        raise ValueError(f"a CUDA grid has 1 to 3 dimensions, got {grid}")
    return tuple(grid) + (1,) * (3 - len(grid))


_COMPILED: dict[tuple, object] = {}


def _compile(kernel, arch: int):
    """kernel.compile(arch), once per kernel configuration: TensorRT asks again for every profile and type."""
    key = (kernel.name, tuple(sorted(kernel.dtypes.items())), tuple(sorted(kernel.constexprs.items())),
           kernel.num_warps, arch)
    if key not in _COMPILED:
        _COMPILED[key] = kernel.compile(arch=arch)
    return _COMPILED[key]


@dataclass(frozen=True)
class LaunchPlan:
    """Everything about a plugin launch except the compiled kernel: kernel choice, extras, grid, args."""

    kernel: object          # hida_rt.kernels AotKernel
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
                      block=(kernel.num_warps * WARP, 1, 1), args=kernel.inputs + kernel.scalars + kernel.outputs)


def compile_plugin(name: str, shapes: Sequence[Sequence], dtype: str, arch: int = DEFAULT_ARCH) -> PluginLaunch:
    """PTX and launch description of plugin `name` for these input shapes and data dtype ("fp16"/"fp32")."""
    plan = plan_launch(name, shapes, dtype)
    kernel = plan.kernel
    compiled = _compile(kernel, arch)
    md = compiled.metadata
    scratch = {k: int(getattr(md, k, 0) or 0) for k in ("global_scratch_size", "profile_scratch_size")}
    if any(scratch.values()):
        raise ScratchMemoryUsed(f"{name} ({kernel.name}) asks for scratch memory {scratch}: an AOT plugin "
                                f"launch cannot provide it")
    ptx = compiled.asm["ptx"]
    target = re.search(r"\.target\s+(\S+)", ptx)
    if md.num_warps * WARP != plan.block[0]:
        raise AssertionError(f"{name}: compiled with {md.num_warps} warps, planned {plan.block[0] // WARP}")
    return PluginLaunch(
        plugin=name, dtype=dtype, kernel_name=md.name, ptx=ptx, target=target.group(1) if target else "",
        grid=plan.grid, block=plan.block, shared_mem=int(md.shared), args=plan.args, scalars=plan.scalars,
        ptx_params=_ptx_param_count(ptx, md.name), **scratch)


def compile_isolated(requests: Sequence[dict], arch: int = DEFAULT_ARCH, timeout: float = 900) -> list[dict]:
    """compile_plugin(**request) for each request, in a fresh process without TRITON_INTERPRET.

    Returns the reports (PluginLaunch.report(), PTX included) in request order.
    """
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-m", __name__, "--arch", str(arch)], input=json.dumps(list(requests)),
                          env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"plugin PTX build failed:\n{proc.stderr[-4000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="python -m hida_rt.export.plugins.compile",
                                description="Compile hida_rt TensorRT plugin kernels to PTX as aot_impl does. "
                                            "stdin: JSON list of {plugin, shapes, dtype}; stdout: one JSON "
                                            "report per line.")
    p.add_argument("--arch", type=int, default=DEFAULT_ARCH, help="CUDA compute capability, e.g. 90 (default)")
    args = p.parse_args(argv)
    for req in json.load(sys.stdin):
        launch = compile_plugin(req["plugin"], [tuple(s) for s in req["shapes"]], req["dtype"], arch=args.arch)
        print(json.dumps(launch.report()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
