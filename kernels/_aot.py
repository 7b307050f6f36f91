"""Ahead-of-time builds of the Triton kernels: what a host that is not Triton's JIT needs, and the one PTX harness.

`AotKernel` describes one kernel launch as a TensorRT AOT plugin (or any
other ahead-of-time host) sees it: the `@triton.jit` function, its parameters
in order (pointers read, int32 extras, pointers written, then constexprs),
the element type of each pointer, the constexpr values, `num_warps`, and a
grid function of the int32 extras (`+ - * //` only, so it also works on
TensorRT's symbolic shape expressions).

`build(kernel, arch)` compiles it for `sm_<arch>` (no GPU needed) into a
`KernelBuild`: PTX, entry name, the PTX parameter types in order, warps,
shared memory, scratch sizes. `contract_violations` checks the AOT contract
(docs/architecture.md): parameters in the declared order (pointers, then 32-bit
extras, then pointers), nothing after them but Triton's hidden scratch
pointers (Triton >= 3.4 appends global and profile scratch pointers to every
kernel; TensorRT's AOT launch is not known to pass them), and no scratch.

A process with TRITON_INTERPRET=1 (the CPU test sessions) cannot compile:
`build_isolated` runs `python -m hida_rt.kernels._aot` in a fresh process,
optionally another Python (a second Triton version), with the kernels as
JSON requests on stdin (`AotKernel.request()`), one JSON report per line out.
"""
from __future__ import annotations

import functools
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping, Sequence

from . import _triton_compat

TRITON_TYPES = {"fp16": "*fp16", "fp32": "*fp32", "bf16": "*bf16"}
# Triton's hidden trailing parameters: global and profile scratch pointers.
MAX_HIDDEN_PARAMS = 2
# The PTX type of an int32 extra (Triton declares i32 parameters .u32).
PTX_I32 = "u32"


def cdiv(a, b):
    """Ceiling division with `+ - //` only, for ints and TensorRT shape expressions alike."""
    return (a + b - 1) // b


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def param_names(kernel) -> list[str]:
    """The parameter names of a `@triton.jit` function (compiled or interpreted), in order."""
    return list(getattr(kernel, "arg_names"))


def kernel_path(kernel) -> str:
    """"module:name" of a `@triton.jit` function, importable in another process."""
    fn = getattr(kernel, "fn", kernel)
    return f"{fn.__module__}:{fn.__name__}"


def load_kernel(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


class AotContractError(RuntimeError):
    """A kernel build breaks the AOT contract (parameter order, hidden parameters, scratch memory)."""


@dataclass(frozen=True)
class AotKernel:
    """One kernel launch as an ahead-of-time host sees it.

    Parameters of `kernel`, in order: `inputs`, `scalars` (int32), `outputs`,
    then the names of `constexprs`. `dtypes` maps each pointer parameter to
    "fp16" / "fp32". `grid(**scalars)` gives the launch grid (up to 3 dims);
    None where only the build matters.
    """

    kernel: object
    inputs: tuple[str, ...]
    scalars: tuple[str, ...]
    outputs: tuple[str, ...]
    dtypes: Mapping[str, str]
    constexprs: Mapping[str, object]
    grid: Callable[..., tuple] | None
    num_warps: int = 4
    notes: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return self.kernel.__name__

    def arg_names(self) -> tuple[str, ...]:
        return self.inputs + self.scalars + self.outputs + tuple(self.constexprs)

    def runtime_args(self) -> tuple[str, ...]:
        """What the host passes at launch: input pointers, int32 extras, output pointers."""
        return self.inputs + self.scalars + self.outputs

    def signature(self) -> dict[str, str]:
        """The `ASTSource` signature: pointers typed, scalars i32, constexprs marked."""
        sig = {name: TRITON_TYPES[self.dtypes[name]] for name in self.inputs}
        sig.update({name: "i32" for name in self.scalars})
        sig.update({name: TRITON_TYPES[self.dtypes[name]] for name in self.outputs})
        sig.update({name: "constexpr" for name in self.constexprs})
        return sig

    def expected_ptx_params(self) -> list[str]:
        """The PTX parameter types the declared order implies, before Triton's hidden pointers."""
        return ["ptr"] * len(self.inputs) + [PTX_I32] * len(self.scalars) + ["ptr"] * len(self.outputs)

    def check_parameter_order(self) -> None:
        """Raise unless the jit function's parameters are exactly `arg_names()`, in order."""
        declared = tuple(param_names(self.kernel))
        if declared != self.arg_names():
            raise AotContractError(f"{self.name}: parameters {declared} != AOT order {self.arg_names()}")

    def config_key(self) -> str:
        """What decides the compiled kernel (function, dtypes, constexprs, warps), as one string."""
        return json.dumps(self.request())

    def request(self) -> dict:
        """This kernel as a JSON-able build request (everything but the grid)."""
        return dict(kernel=kernel_path(self.kernel), inputs=list(self.inputs), scalars=list(self.scalars),
                    outputs=list(self.outputs), dtypes=dict(self.dtypes), constexprs=dict(self.constexprs),
                    num_warps=self.num_warps)

    @classmethod
    def from_request(cls, req: dict) -> "AotKernel":
        return cls(kernel=load_kernel(req["kernel"]), inputs=tuple(req["inputs"]), scalars=tuple(req["scalars"]),
                   outputs=tuple(req["outputs"]), dtypes=dict(req["dtypes"]), constexprs=dict(req["constexprs"]),
                   grid=None, num_warps=int(req["num_warps"]))

    def compile(self, arch: int = 90, warp_size: int = 32, ptx_version: int | None = None):
        """triton.compile for `cuda:arch` (no GPU needed); the CompiledKernel has .asm["ptx"] and .metadata.

        `ptx_version`: the PTX ISA to declare, e.g. 84 for 8.4 (None: Triton's default)."""
        if not _triton_compat.compilable(self.kernel):
            raise RuntimeError(f"{self.name} is not compile-able in a process with TRITON_INTERPRET=1; "
                               f"compile in a separate process (hida_rt.kernels._aot.build_isolated)")
        self.check_parameter_order()
        return _triton_compat.compile_for_cuda(self.kernel, self.signature(), self.constexprs, arch,
                                               self.num_warps, warp_size, ptx_version)


@dataclass(frozen=True)
class KernelBuild:
    """One kernel compiled ahead of time: the PTX and what a launch and the contract checks need."""

    name: str                  # the @triton.jit function
    kernel_name: str           # the PTX .entry
    target: str                # e.g. "sm_90a"
    ptx: str
    ptx_params: tuple          # type of each PTX parameter in order: "ptr", "u32", ...
    num_warps: int
    shared: int                # bytes of dynamic shared memory per block
    global_scratch_size: int
    profile_scratch_size: int
    triton: str                # the Triton version that built it
    sass: dict | None = None   # ptxas -v of the PTX for `target` (hida_rt.kernels._ptxas), where asked for

    @property
    def ptx_isa(self) -> str:
        """The PTX ISA version the PTX declares (`.version`), e.g. "8.4"."""
        return ptx_isa(self.ptx)

    def report(self) -> dict:
        return asdict(self)

    @classmethod
    def from_report(cls, d: dict) -> "KernelBuild":
        return cls(**{**d, "ptx_params": tuple(d["ptx_params"])})


def ptx_param_types(ptx: str, entry: str) -> tuple[str, ...]:
    """The types of the .entry's parameters in order ("ptr" for pointers, else the PTX type, e.g. "u32")."""
    match = re.search(rf"\.entry\s+{re.escape(entry)}\s*\((.*?)\)", ptx, re.S)
    if not match:
        raise AotContractError(f"{entry}: no .entry in the PTX Triton produced")
    types = []
    for decl in re.findall(r"\.param\s+([^,]*)", match.group(1)):
        words = decl.split()
        types.append("ptr" if ".ptr" in words else words[0].lstrip("."))
    return tuple(types)


def ptx_isa(ptx: str) -> str:
    """The `.version` directive of a PTX module, e.g. "9.4"."""
    match = re.search(r"^\s*\.version\s+(\d+\.\d+)", ptx, re.M)
    if not match:
        raise AotContractError("no .version directive in the PTX")
    return match.group(1)


def _build(kernel: AotKernel, arch: int, ptx_version: int | None = None) -> KernelBuild:
    compiled = kernel.compile(arch=arch, ptx_version=ptx_version)
    md = compiled.metadata
    ptx = compiled.asm["ptx"]
    target = re.search(r"\.target\s+(\S+)", ptx)
    return KernelBuild(name=kernel.name, kernel_name=md.name, target=target.group(1) if target else "", ptx=ptx,
                       ptx_params=ptx_param_types(ptx, md.name), num_warps=int(md.num_warps),
                       shared=int(md.shared),
                       global_scratch_size=_triton_compat.metadata_int(compiled, "global_scratch_size"),
                       profile_scratch_size=_triton_compat.metadata_int(compiled, "profile_scratch_size"),
                       triton=_triton_compat.version())


@functools.lru_cache(maxsize=None)
def _build_cached(key: str, arch: int, ptx_version: int | None) -> KernelBuild:
    return _build(AotKernel.from_request(json.loads(key)), arch, ptx_version)


def build(kernel: AotKernel, arch: int = 90, ptx_version: int | None = None) -> KernelBuild:
    """Compile `kernel` for sm_<arch> in this process, once per configuration (TensorRT asks per profile).

    `ptx_version`: the PTX ISA the PTX declares, e.g. 88 for 8.8 (None: Triton's default, its ptxas's)."""
    kernel.check_parameter_order()
    return _build_cached(kernel.config_key(), arch, ptx_version)


def contract_violations(kernel: AotKernel, built: KernelBuild, arch: int = 90) -> list[str]:
    """What about `built` breaks the AOT contract for `kernel` (empty: none)."""
    problems = []
    if not built.target.startswith(f"sm_{arch}"):
        problems.append(f"target {built.target!r}, not sm_{arch}")
    scratch = {"global": built.global_scratch_size, "profile": built.profile_scratch_size}
    if any(scratch.values()):
        problems.append(f"asks for scratch memory {scratch}: an AOT launch cannot provide it")
    want = kernel.expected_ptx_params()
    got, hidden = list(built.ptx_params[:len(want)]), list(built.ptx_params[len(want):])
    if got != want:
        problems.append(f"PTX parameters {got} != declared {kernel.runtime_args()} ({want})")
    if len(hidden) > MAX_HIDDEN_PARAMS or any(t != "ptr" for t in hidden):
        problems.append(f"after the declared parameters the PTX has {hidden}, not only Triton's scratch pointers")
    if built.num_warps != kernel.num_warps:
        problems.append(f"compiled with {built.num_warps} warps, declared {kernel.num_warps}")
    return problems


def check_contract(kernel: AotKernel, built: KernelBuild, arch: int = 90) -> None:
    problems = contract_violations(kernel, built, arch)
    if problems:
        raise AotContractError(f"{kernel.name}: " + "; ".join(problems))


def kernels_dir() -> str:
    return os.path.dirname(os.path.abspath(__file__))


def build_isolated(kernels: Sequence[AotKernel], arch: int = 90, python: str | None = None,
                   timeout: float = 900, ptx_version: int | None = None, assemble: bool = False) -> list[KernelBuild]:
    """build() of each kernel in a fresh process without TRITON_INTERPRET, in request order.

    `python`: the interpreter to run (default this one), e.g. a venv with another Triton; it must
    import this same hida_rt checkout (checked). `assemble`: also run that Triton's ptxas -v on each
    PTX (`KernelBuild.sass`, see hida_rt.kernels._ptxas).
    """
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    payload = json.dumps({"arch": arch, "ptx_version": ptx_version, "assemble": assemble,
                          "kernels": [k.request() for k in kernels]})
    # A neutral cwd: `-m` puts it first on sys.path, where a checkout root would shadow the package mapping.
    proc = subprocess.run([python or sys.executable, "-m", __name__], input=payload, env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=tempfile.gettempdir())
    if proc.returncode:
        raise RuntimeError(f"PTX build failed ({python or sys.executable}):\n{proc.stderr[-4000:]}")
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    header, reports = lines[0], lines[1:]
    if os.path.realpath(header["kernels_dir"]) != os.path.realpath(kernels_dir()):
        raise RuntimeError(f"{python} imports hida_rt.kernels from {header['kernels_dir']}, not {kernels_dir()}")
    return [KernelBuild.from_report(r) for r in reports]


def main() -> int:
    """stdin: {"arch": 90, "ptx_version": null, "assemble": false, "kernels": [AotKernel.request(), ...]};
    stdout: a header line, then one report each, in request order."""
    from concurrent.futures import ThreadPoolExecutor

    from . import _ptxas

    req = json.load(sys.stdin)
    arch, ptx_version = int(req["arch"]), req.get("ptx_version")
    print(json.dumps({"kernels_dir": kernels_dir(), "triton": _triton_compat.version()}), flush=True)
    # ptxas runs beside the next compile (two at a time at most: CI machines have few cores).
    with ThreadPoolExecutor(max_workers=1) as pool:
        jobs = []
        for r in req["kernels"]:
            built = build(AotKernel.from_request(r), arch, ptx_version)
            jobs.append((built, pool.submit(_ptxas.assemble, built.ptx, arch) if req.get("assemble") else None))
        for built, job in jobs:
            report = built.report()
            if job is not None:
                report["sass"] = job.result().report()
            print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
