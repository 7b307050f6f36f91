"""Which PTX ISA version the AOT plugin PTX declares, so that the user's driver can assemble it.

TensorRT's AOT plugins hand TensorRT PTX; it is assembled on the machine that
runs the engine, by the driver's JIT (or the PTX compiler of TensorRT's CUDA),
and neither accepts a `.version` newer than its own CUDA release. Triton
stamps the ISA of the ptxas it bundles (Triton 3.9: 9.4, CUDA 13.4's, for
sm_90 and up), newer than most installed drivers. So the build chooses:

- by default, the highest ISA the installed driver accepts (its CUDA version,
  `driver_cuda_version`), but never above the ISA Triton would use anyway;
- `--ptx-isa X.Y` (python -m hida_rt.build) overrides it, e.g. to build for
  older drivers than the build machine's;
- never below what the target needs (`MIN_ISA_FOR_ARCH`): such a request is
  refused in one line.

The choice goes to Triton as its own `ptx_version` option and is recorded in
the engine manifest (`ptx_isa`); loading an engine whose ISA the driver
cannot assemble is refused (export.manifest.check_runnable).
"""
from __future__ import annotations

import contextlib
import ctypes
import re
from typing import Iterator

from hida_rt.errors import InputError

# The PTX ISA each CUDA release introduced: NVIDIA, "PTX ISA" (Parallel Thread Execution ISA) reference,
# section "Release Notes" (the CUDA release / PTX ISA version table). CUDA 12.6 and 12.7 kept 8.5.
CUDA_PTX_ISA = {
    (11, 8): "7.8",
    (12, 0): "8.0", (12, 1): "8.1", (12, 2): "8.2", (12, 3): "8.3", (12, 4): "8.4", (12, 5): "8.5",
    (12, 6): "8.5", (12, 8): "8.7", (12, 9): "8.8",
    (13, 0): "9.0", (13, 1): "9.1", (13, 2): "9.2", (13, 3): "9.3", (13, 4): "9.4",
}
# The ISA that introduced each target (same reference, "PTX ISA Notes" of each .target sm_XX[a]).
MIN_ISA_FOR_ARCH = {80: "7.0", 86: "7.1", 87: "7.4", 89: "7.8", 90: "8.0", 100: "8.6", 120: "8.7"}


def parse_isa(text: str) -> str:
    """"8.4" -> "8.4"; anything else is an InputError naming the form."""
    match = re.fullmatch(r"\s*(\d+)\.(\d)\s*", str(text))
    if not match:
        raise InputError(f"--ptx-isa takes a PTX ISA version such as 8.4, got {text!r}")
    return f"{int(match.group(1))}.{match.group(2)}"


def isa_number(isa: str) -> int:
    """"8.4" -> 84, Triton's `ptx_version` form."""
    major, minor = parse_isa(isa).split(".")
    return 10 * int(major) + int(minor)


def isa_for_cuda(cuda: str) -> str | None:
    """The newest PTX ISA CUDA release `cuda` ("12.8") accepts; None for a release older than the table.

    A release newer than the table gets the table's newest ISA (a driver takes every older ISA)."""
    try:
        key = tuple(int(p) for p in str(cuda).split(".")[:2])
    except ValueError:
        return None
    known = [k for k in sorted(CUDA_PTX_ISA) if k <= key]
    return CUDA_PTX_ISA[known[-1]] if known else None


def driver_cuda_version() -> str | None:
    """The CUDA version of the installed driver ("12.8"), from cuDriverGetVersion; None without a driver."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        version = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(version)) == 0 and version.value:
            return f"{version.value // 1000}.{version.value % 1000 // 10}"
    return None


def min_isa(arch: int) -> str:
    known = [a for a in sorted(MIN_ISA_FOR_ARCH) if a <= arch]
    return MIN_ISA_FOR_ARCH[known[-1]] if known else "7.0"


def choose(arch: int, requested: str | None, driver_cuda: str | None, triton_isa: str) -> str:
    """The PTX ISA to build for sm_<arch>: `requested`, else the driver's newest capped at `triton_isa`
    (the ISA Triton would stamp by default). Raises InputError when that is below what the arch needs."""
    if requested is not None:
        isa = parse_isa(requested)
        if isa_number(isa) > isa_number(triton_isa):
            raise InputError(f"--ptx-isa {isa} is newer than this Triton emits for sm_{arch} ({triton_isa})")
    else:
        driver_isa = isa_for_cuda(driver_cuda) if driver_cuda else None
        isa = triton_isa if driver_isa is None else min(driver_isa, triton_isa, key=isa_number)
    if isa_number(isa) < isa_number(min_isa(arch)):
        raise InputError(f"PTX ISA {isa} cannot target sm_{arch} (it needs {min_isa(arch)} or newer); "
                         f"update the driver or pass --ptx-isa {min_isa(arch)} or newer")
    return isa


def triton_default_isa(arch: int) -> str:
    """The ISA Triton stamps for sm_<arch> without a `ptx_version`: that of the ptxas it bundles."""
    from hida_rt.kernels._triton_compat import default_ptx_version
    version = default_ptx_version(arch)
    return f"{version // 10}.{version % 10}"


def driver_refusal(engine_isa: str | None, driver_cuda: str | None) -> str | None:
    """Why a driver of CUDA `driver_cuda` cannot assemble PTX of ISA `engine_isa` (one line), or None."""
    if not engine_isa or not driver_cuda:
        return None
    driver_isa = isa_for_cuda(driver_cuda)
    if driver_isa is not None and isa_number(driver_isa) >= isa_number(engine_isa):
        return None
    accepts = f"PTX ISA {driver_isa} at most" if driver_isa else "no PTX ISA this build knows"
    return (f"its plugins' PTX is ISA {engine_isa}, and this driver (CUDA {driver_cuda}) accepts {accepts}; "
            f"update the NVIDIA driver, or rebuild with python -m hida_rt.build --ptx-isa "
            f"{driver_isa or '8.0'}")


_CURRENT: list[str | None] = [None]


@contextlib.contextmanager
def building_with(isa: str | None) -> Iterator[None]:
    """Inside the block, the plugins' aot_impl builds PTX of ISA `isa` (None: Triton's default)."""
    saved, _CURRENT[0] = _CURRENT[0], isa
    try:
        yield
    finally:
        _CURRENT[0] = saved


def current() -> int | None:
    """Triton's `ptx_version` for the build in progress (building_with), or None."""
    return isa_number(_CURRENT[0]) if _CURRENT[0] else None
