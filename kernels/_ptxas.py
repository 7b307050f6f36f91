"""Assemble PTX to machine code (SASS) with the ptxas Triton itself uses, and read what `ptxas -v` reports.

    stats = assemble(built.ptx, 90)     # in a process that imports the Triton which built the PTX
    stats.registers, stats.spill_stores, stats.spill_loads, stats.stack, stats.shared, stats.error

The assembler and its options are Triton's own (`_triton_compat.ptxas`,
`ptxas_flags`): the cubin measured here is the one Triton would load. An
assembly error is reported, not raised (`error`: ptxas's first error line),
so a report covers every configuration.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass

from . import _triton_compat


@dataclass(frozen=True)
class SassStats:
    gpu_name: str             # --gpu-name, e.g. "sm_90a"
    ptxas: str                # the CUDA release of the assembler, e.g. "13.4"
    registers: int = 0        # per thread
    spill_stores: int = 0     # bytes per thread
    spill_loads: int = 0      # bytes per thread
    stack: int = 0            # stack frame, bytes per thread
    shared: int = 0           # static shared memory (smem) the machine code declares, bytes per block
    error: str = ""           # ptxas's error, one line; "" when the PTX assembled

    @property
    def spills(self) -> int:
        return self.spill_stores + self.spill_loads

    def report(self) -> dict:
        return asdict(self)

    @classmethod
    def from_report(cls, d: dict) -> "SassStats":
        return cls(**d)


def parse(log: str, entry: str | None = None) -> dict:
    """The figures of `ptxas -v` output (of `entry`, or of the one function it compiled)."""
    if entry:
        start = log.find(f"Compiling entry function '{entry}'")
        log = log[start:] if start >= 0 else log
    out = {}
    regs = re.search(r"Used (\d+) registers", log)
    frame = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", log)
    smem = re.search(r"(\d+) bytes smem", log)
    if regs:
        out["registers"] = int(regs.group(1))
    if frame:
        out["stack"], out["spill_stores"], out["spill_loads"] = map(int, frame.groups())
    if smem:
        out["shared"] = int(smem.group(1))
    return out


def assemble(ptx: str, arch: int, ptxas: str | None = None, gpu_name: str | None = None) -> SassStats:
    """`ptxas -v` of `ptx` for sm_<arch> (Triton's assembler and options unless `ptxas` names another)."""
    path, release = _triton_compat.ptxas(arch)
    if ptxas:
        path, release = ptxas, _release(ptxas)
    name = gpu_name or _triton_compat.gpu_name(arch)
    with tempfile.TemporaryDirectory(prefix="hida_ptxas_") as tmp:
        src = os.path.join(tmp, "kernel.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        cmd = [path, *_triton_compat.ptxas_flags(), "-v", f"--gpu-name={name}", src, "-o", src + ".cubin"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    log = proc.stderr + proc.stdout
    if proc.returncode:
        lines = [ln.strip() for ln in log.splitlines() if "error" in ln.lower()] or [log.strip() or "failed"]
        return SassStats(gpu_name=name, ptxas=release, error=lines[0][:300])
    return SassStats(gpu_name=name, ptxas=release, **parse(log))


def _release(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"release (\d+\.\d+)", out)
    return match.group(1) if match else "?"
