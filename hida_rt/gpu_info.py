"""This machine's NVIDIA GPUs and driver version, asked without an extra dependency.

The driver's version comes from /proc/driver/nvidia/version, else
nvidia-smi; the GPUs from PyTorch. The CUDA version the driver supports and
the PTX ISA it accepts are hida_rt.export.plugins.ptx_isa's (the AOT build
chooses its ISA from them).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

def driver_version() -> str | None:
    """The NVIDIA display driver's version, e.g. "570.124.06", or None."""
    proc_file = Path("/proc/driver/nvidia/version")
    try:
        m = re.search(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)", proc_file.read_text())
        if m:
            return m.group(1)
    except OSError:
        pass
    if shutil.which("nvidia-smi"):
        try:
            q = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        lines = q.stdout.strip().splitlines()
        if q.returncode == 0 and lines:
            return lines[0].strip()
    return None


def gpus() -> list[dict]:
    """The CUDA GPUs PyTorch sees: index, name, compute capability, memory (GiB), SMs."""
    try:
        import torch
        if not torch.cuda.is_available():
            return []
        found = []
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            found.append(dict(index=i, name=p.name, compute_capability=f"{p.major}.{p.minor}",
                              memory_gib=round(p.total_memory / 2**30, 1), sms=p.multi_processor_count))
        return found
    except Exception:  # a broken CUDA install reads as "no GPU", which the callers then say
        return []


__all__ = ["driver_version", "gpus"]
