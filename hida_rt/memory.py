"""Whether a network size and batch fit in this machine's memory, checked before any work.

The generator's activations grow with the pixels of a batch: ACTIVATION_BYTES_PER_PIXEL
(per image pixel, float32, eager on a CPU; docs/model.md, "Memory") is the estimate,
rounded up from the measured peak so that a run it lets through does not fail
half-way. An input over what the machine has available is refused in one line
naming the largest size that fits, and an allocation that fails anyway becomes
one line too (allocation_failure, used by hida_rt.cli.run_cli).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from .errors import InputError

# Peak activation memory per input pixel of one image (the model's weights not included).
ACTIVATION_BYTES_PER_PIXEL = 1536
GiB = 1 << 30


def activation_bytes(height: int, width: int, batch: int = 1) -> int:
    """Estimated peak activation memory of one forward pass of `batch` images of height x width."""
    return ACTIVATION_BYTES_PER_PIXEL * height * width * batch


def host_available_bytes() -> int | None:
    """Memory the host can still give without swapping (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gpu_free_bytes() -> int | None:
    """The free memory of the emptiest CUDA GPU, or None without one.

    Asked of nvidia-smi unless this process already holds a CUDA context: creating one here (in a
    tool's argument checks) would take GPU memory and make a later fork unsafe.
    """
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_initialized():
            return max(torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count()))
        if not shutil.which("nvidia-smi"):
            return None
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return max(int(line) for line in out.split()) * (1 << 20)  # MiB
    except Exception:  # noqa: BLE001 (no usable GPU or no answer: the host's memory is the bound)
        return None


def available_bytes() -> int | None:
    """The most memory one forward pass can use here: the host's, or a CUDA GPU's free memory if larger."""
    known = [b for b in (host_available_bytes(), gpu_free_bytes()) if b]
    return max(known) if known else None


def largest_side(batch: int, available: int, multiple: int) -> int:
    """The largest square side, a multiple of `multiple`, whose activations for `batch` fit in `available`."""
    side = int((available / (ACTIVATION_BYTES_PER_PIXEL * batch)) ** 0.5)
    return side // multiple * multiple


def check_fits(height: int, width: int, batch: int = 1, *, option: str = "--size", multiple: int = 256,
               available: int | None = None) -> None:
    """InputError (one line, naming the limit) if `batch` images of height x width would not fit in memory.

    `option` names what the user set, `multiple` the step of the network's sizes (hida_rt.model.SIZE_MULTIPLE),
    `available` overrides the measured memory.
    """
    available = available_bytes() if available is None else available
    if available is None:
        return  # nothing to compare with; an allocation failure still ends in one line
    need = activation_bytes(height, width, batch)
    if need <= available:
        return
    side = largest_side(batch, available, multiple)
    fits = f"the largest that fits is {side}x{side}" if side else f"not even one {multiple}x{multiple} image fits"
    per = f" with a batch of {batch}" if batch > 1 else ""
    raise InputError(f"{option}: {height}x{width}{per} needs about {need / GiB:.1f} GiB of memory for the network, "
                     f"this machine has {available / GiB:.1f} GiB available; {fits}")


def allocation_failure(e: BaseException) -> str | None:
    """The one-line message for an exception that is a failed memory allocation, or None if it is not one."""
    if isinstance(e, MemoryError):
        return "out of memory; use a smaller --size or --batch-size"
    torch = sys.modules.get("torch")  # only a run that imported torch can fail in its allocator
    if torch is not None and isinstance(e, getattr(torch, "OutOfMemoryError", ())):
        return "out of GPU memory; use a smaller --size or --batch-size"
    if isinstance(e, RuntimeError) and ("can't allocate memory" in str(e) or "out of memory" in str(e).lower()):
        return "out of memory; use a smaller --size or --batch-size"
    return None


__all__ = ["ACTIVATION_BYTES_PER_PIXEL", "activation_bytes", "allocation_failure", "available_bytes", "check_fits"]
