"""SASS report: every kernel configuration hida_rt launches, assembled for each NVIDIA architecture, no GPU needed.

    python -m hida_rt.kernels.sass [--arch 80,86,89,90,100,120] [--json FILE]

The configurations are the project's own: the triton backend's launches
(hida_rt.kernels.launch_recorder, at each batch and size of BACKEND_CASES)
and the TensorRT AOT plugins of the FP16 and FP32 engines (the graph passes
of hida_rt.export run on a random-weight export: only the structure decides
a configuration). Each is compiled by Triton for sm_<arch> and assembled
with the ptxas Triton uses for that arch (its wheel's `ptxas` below sm_90,
`ptxas-blackwell` from there; hida_rt.kernels._ptxas), and reported with
registers, spill bytes, stack frame, shared memory and the theoretical
occupancy that follows from them (ARCHS).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Sequence

from hida_rt.errors import MissingDependency

from . import _aot
from ._ptxas import SassStats

DEFAULT_ARCHS = (80, 86, 89, 90, 100, 120)
# The architectures CI holds to zero spills (tests/kernels/test_sass.py).
CI_ARCHS = (80, 89, 90, 120)


@dataclass(frozen=True)
class ArchLimits:
    """Per-SM limits of one compute capability."""

    name: str
    max_warps: int            # resident warps per SM
    max_blocks: int           # resident blocks per SM
    registers: int            # 32-bit registers per SM
    shared: int               # shared memory per SM, bytes
    max_shared_block: int     # shared memory one block may use, bytes


KB = 1024
# NVIDIA, CUDA C++ Programming Guide, "Compute Capabilities", table "Technical Specifications per
# Compute Capability" (CUDA 12.8/13.0 editions). All six: 64 K registers per SM, 255 per thread.
ARCHS = {
    80: ArchLimits("A100", 64, 32, 65536, 164 * KB, 163 * KB),
    86: ArchLimits("RTX 30xx, A10, A40", 48, 16, 65536, 100 * KB, 99 * KB),
    89: ArchLimits("L4, L40S, RTX 40xx", 48, 24, 65536, 100 * KB, 99 * KB),
    90: ArchLimits("H100, H200", 64, 32, 65536, 228 * KB, 227 * KB),
    100: ArchLimits("B200", 64, 32, 65536, 228 * KB, 227 * KB),
    120: ArchLimits("RTX 50xx, RTX PRO 6000", 48, 32, 65536, 128 * KB, 99 * KB),
}
# Same guide, "Multiprocessor level" / occupancy: registers are allocated per warp in units of 256
# (a thread's count rounded up to 8); shared memory in 128-byte units, plus 1 KB per block that the
# system reserves (compute capability 8.0 and later).
REG_UNIT = 256
SHARED_UNIT = 128
SHARED_RESERVED = 1 * KB


def occupancy(arch: int, registers: int, threads: int, shared: int) -> tuple[int, str]:
    """(resident warps per SM, what limits it: "warps", "blocks", "registers" or "shared memory")."""
    lim = ARCHS[arch]
    warps = -(-threads // 32)
    regs_per_warp = -(-max(registers, 1) * 32 // REG_UNIT) * REG_UNIT
    smem = -(-(shared + SHARED_RESERVED) // SHARED_UNIT) * SHARED_UNIT
    blocks = {"warps": lim.max_warps // warps, "blocks": lim.max_blocks,
              "registers": lim.registers // (regs_per_warp * warps),
              "shared memory": lim.shared // smem if shared <= lim.max_shared_block else 0}
    limiter = min(blocks, key=lambda k: (blocks[k], k != "warps"))
    return blocks[limiter] * warps, limiter


@dataclass(frozen=True)
class Row:
    arch: int
    used_by: str              # "triton", "tensorrt" or "triton+tensorrt"
    kernel: str
    dtype: str
    config: str               # constexprs, compact
    num_warps: int
    ptx_isa: str
    ptxas: str
    registers: int
    spill_stores: int
    spill_loads: int
    stack: int
    shared_static: int
    shared_dynamic: int
    warps_per_sm: int
    max_warps_per_sm: int
    limiter: str
    error: str

    @property
    def spills(self) -> int:
        return self.spill_stores + self.spill_loads


def describe(kernel: _aot.AotKernel) -> tuple[str, str]:
    """(data dtype, constexprs as "NAME=value ...") of a configuration."""
    dtypes = sorted(set(kernel.dtypes.values()) - {"fp32"}) or ["fp32"]
    config = " ".join(f"{k}={v}" for k, v in kernel.constexprs.items() if k not in ("EPS",))
    return "/".join(dtypes), config


def backend_kernels(generator) -> list[_aot.AotKernel]:
    from .launch_recorder import backend_kernels as launched
    return launched(generator)


def engine_kernels(trt_models) -> list[_aot.AotKernel]:
    """The plugin kernel configurations of TensorRT ONNX models (e.g. the FP16 and FP32 engines' graphs)."""
    from hida_rt.export.graph_passes import plugin_instances
    from hida_rt.export.plugins.compile import plan_launch

    found = {}
    for model in trt_models:
        for node, dtype, shapes in plugin_instances(model):
            kernel = plan_launch(node.op_type, shapes, dtype).kernel
            found.setdefault(kernel.config_key(), kernel)
    return list(found.values())


def project_kernels() -> dict[str, list[_aot.AotKernel]]:
    """{"triton": backend configurations, "tensorrt": engine plugin configurations}, from freshly
    initialised weights (the network's structure alone decides every configuration)."""
    import torch

    from hida_rt.checkpoint import load_generator
    from hida_rt.export.graph_passes import tensorrt_onnx
    from hida_rt.export.onnx_export import build_onnx_model
    from hida_rt.model import HIDAGenerator

    with tempfile.TemporaryDirectory(prefix="hida_sass_") as tmp:
        weights = os.path.join(tmp, "random.pth")
        torch.save(HIDAGenerator(full=True).state_dict(), weights)  # only the structure decides a config
        generator = load_generator(weights)
        portable = build_onnx_model(weights)
    return {"triton": backend_kernels(generator),
            "tensorrt": engine_kernels([tensorrt_onnx(portable, p)[0] for p in ("fp16", "fp32")])}


def assemble_all(kernels: Sequence[_aot.AotKernel], archs: Sequence[int], python: str | None = None,
                 workers: int = 2) -> dict[int, list[_aot.KernelBuild]]:
    """arch -> builds (with `.sass`) of `kernels` in order; one build process per arch, `workers` at a time."""
    def one(arch):
        return arch, _aot.build_isolated(kernels, arch=arch, python=python, assemble=True, timeout=1800)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(pool.map(one, archs))


def rows(groups: dict[str, list[_aot.AotKernel]], builds: dict[int, list[_aot.KernelBuild]],
         kernels: Sequence[_aot.AotKernel]) -> list[Row]:
    used = {}
    for who, ks in groups.items():
        for k in ks:
            used.setdefault(k.config_key(), []).append(who)
    out = []
    for arch, built in builds.items():
        for kernel, b in zip(kernels, built):
            s = SassStats.from_report(b.sass)
            dtype, config = describe(kernel)
            warps, limiter = occupancy(arch, s.registers, kernel.num_warps * 32, s.shared + b.shared)
            out.append(Row(arch=arch, used_by="+".join(used.get(kernel.config_key(), [])), kernel=kernel.name,
                           dtype=dtype, config=config, num_warps=kernel.num_warps, ptx_isa=b.ptx_isa,
                           ptxas=s.ptxas, registers=s.registers, spill_stores=s.spill_stores,
                           spill_loads=s.spill_loads, stack=s.stack, shared_static=s.shared,
                           shared_dynamic=b.shared, warps_per_sm=0 if s.error else warps,
                           max_warps_per_sm=ARCHS[arch].max_warps, limiter=limiter, error=s.error))
    return out


def table(report: list[Row]) -> str:
    head = ("arch", "used by", "kernel", "dtype", "config", "warps", "regs", "spill st/ld", "stack", "smem",
            "occupancy")
    lines = []
    for r in report:
        occ = f"{r.warps_per_sm}/{r.max_warps_per_sm} ({r.limiter})" if not r.error else f"ERROR: {r.error}"
        lines.append((f"sm_{r.arch}", r.used_by, r.kernel.removesuffix("_kernel"), r.dtype, r.config,
                      str(r.num_warps), str(r.registers), f"{r.spill_stores}/{r.spill_loads}", str(r.stack),
                      str(r.shared_static + r.shared_dynamic), occ))
    widths = [max(len(h), *(len(ln[i]) for ln in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*ln) for ln in lines]
    return "\n".join(out)


def summary(report: list[Row]) -> str:
    lines = []
    for arch in dict.fromkeys(r.arch for r in report):
        rs = [r for r in report if r.arch == arch]
        spilling = [r for r in rs if r.spills]
        failed = [r for r in rs if r.error]
        ptxas = ",".join(sorted({r.ptxas for r in rs}))
        lines.append(f"sm_{arch} ({ARCHS[arch].name}; ptxas {ptxas}): {len(rs)} configurations, "
                     f"{len(spilling)} spill, {len(failed)} fail to assemble, "
                     f"max {max((r.registers for r in rs), default=0)} registers")
    return "\n".join(lines)


def parse_archs(text: str) -> tuple[int, ...]:
    try:
        archs = tuple(int(a.strip().removeprefix("sm_")) for a in text.split(",") if a.strip())
    except ValueError:
        archs = ()
    unknown = [a for a in archs if a not in ARCHS]
    if not archs or unknown:
        raise argparse.ArgumentTypeError(f"--arch takes a comma list of {','.join(map(str, ARCHS))}, got {text!r}")
    return archs


def build_parser() -> argparse.ArgumentParser:
    from hida_rt.cli import prog_name

    parser = argparse.ArgumentParser(
        prog=prog_name("kernels.sass"),
        description="Assemble every kernel configuration hida_rt launches (triton backend and TensorRT "
                    "plugins) for NVIDIA architectures and report registers, spills, shared memory and "
                    "occupancy. Needs Triton (the test or gpu extra), not a GPU. Exit 1 when a "
                    "configuration spills or fails to assemble.",
        epilog="Example: hida-rt sass --arch 80,90 --json sass.json")
    parser.add_argument("--arch", type=parse_archs, default=DEFAULT_ARCHS,
                        help=f"compute capabilities, comma-separated (default {','.join(map(str, DEFAULT_ARCHS))})")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from hida_rt.cli import atomic_path

    args = build_parser().parse_args(argv)
    if importlib.util.find_spec("triton") is None:
        raise MissingDependency("the SASS report needs Triton: pip install 'hida_rt[gpu]' (or the test extra)")
    groups = project_kernels()
    kernels = list({k.config_key(): k for ks in groups.values() for k in ks}.values())
    report = rows(groups, assemble_all(kernels, args.arch), kernels)
    print(table(report))
    print()
    print(summary(report))
    if args.json:
        with atomic_path(args.json) as tmp:
            with open(tmp, "w") as f:
                json.dump({"rows": [asdict(r) for r in report],
                           "archs": {a: asdict(ARCHS[a]) for a in args.arch}}, f, indent=1)
    return 1 if any(r.error or r.spills for r in report) else 0


if __name__ == "__main__":
    from hida_rt.cli import run_cli

    sys.exit(run_cli(main, prog="hida_rt.kernels.sass"))
