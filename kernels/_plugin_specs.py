"""The plugin kernels at the layer shapes of a 256x256 network, and a PTX build check of each.

`python -m hida_rt.kernels._plugin_specs [ID...]` compiles them for sm_90
(no GPU needed) and prints one JSON object per kernel: scratch sizes, PTX
parameter count, warps, shared memory. It must run in a process without
TRITON_INTERPRET=1 (the interpreter replaces every @triton.jit function,
Triton's own included, by an uncompilable one); `compile_in_subprocess`
starts such a process from a test session that interprets.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from . import deform_conv, ida, meta_acon
from ._aot import AotKernel, scratch_sizes

# id -> spec factory (module-level lambdas: cheap, nothing compiles until asked)
SPECS = {
    "ida-fp16-up0": lambda: ida.aot_kernel("fp16", 2 * 2),
    "ida-fp16-up6": lambda: ida.aot_kernel("fp16", 128 * 128),
    "ida-fp32-up5": lambda: ida.aot_kernel("fp32", 64 * 64),
    "meta_acon_mean-fp16-down2": lambda: meta_acon.aot_mean_kernel("fp16", 128 * 128),
    "meta_acon_apply-fp16-up0": lambda: meta_acon.aot_apply_kernel("fp16", 512, 2 * 2, 32),
    "meta_acon_apply-fp16-en": lambda: meta_acon.aot_apply_kernel("fp16", 1, 128 * 128, 16),
    "meta_acon_apply-fp32-up6": lambda: meta_acon.aot_apply_kernel("fp32", 64, 128 * 128, 16),
    "acon_const-fp16-down3": lambda: meta_acon.aot_const_kernel("fp16", 64 * 64),
    "deform_conv-fp16-up1": lambda: deform_conv.aot_kernel("fp16", 1024, 512, n_pixels=16),
    "deform_conv-fp32-up0": lambda: deform_conv.aot_kernel("fp32", 512, 512, n_pixels=4),
}
# Kernels only the torch host launches (split statistics, split-K): compiled too, so that a
# CPU-only CI catches what would otherwise first fail on a GPU; not plugin kernels.
HOST_SPECS = {
    "ida_split_stats-fp16-up6": lambda: ida.aot_split_kernels("fp16", 128 * 128, 64, 132)[0],
    "ida_split_apply-fp16-up6": lambda: ida.aot_split_kernels("fp16", 128 * 128, 64, 132)[1],
    "deform_conv_split_k-fp16-up1": lambda: deform_conv.aot_kernel("fp16", 1024, 512, n_pixels=16, split_k=9),
}
ALL_SPECS = {**SPECS, **HOST_SPECS}


def build_report(spec: AotKernel, arch: int = 90) -> dict:
    compiled = spec.compile(arch=arch)
    ptx = compiled.asm["ptx"]
    entry = re.search(rf"\.entry\s+{spec.name}\s*\((.*?)\)", ptx, re.S)
    target = re.search(r"\.target\s+(\S+)", ptx)
    return dict(name=spec.name, target=target.group(1) if target else None,
                ptx_params=len(re.findall(r"\.param\s", entry.group(1))) if entry else None,
                runtime_args=len(spec.inputs) + len(spec.scalars) + len(spec.outputs),
                num_warps=compiled.metadata.num_warps, shared=compiled.metadata.shared,
                **scratch_sizes(compiled))


def compile_in_subprocess(ids=None, timeout: float = 600) -> dict[str, dict]:
    """build_report of each id (all by default), from a fresh process without TRITON_INTERPRET."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-m", __name__, *(ids or [])], env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"PTX build failed:\n{proc.stderr[-4000:]}")
    return {r["id"]: r for r in map(json.loads, proc.stdout.splitlines())}


def main(argv=None) -> int:
    ids = list(argv if argv is not None else sys.argv[1:]) or list(ALL_SPECS)
    for i in ids:
        print(json.dumps(dict(id=i, **build_report(ALL_SPECS[i]()))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
