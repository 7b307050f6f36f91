"""The Triton APIs hida_rt uses beyond `@triton.jit` and `triton.language`, in one place.

Supported: Triton 3.6 (the GPU image, with torch 2.11) through 3.9 (the CPU
machines, with torch 2.13). Checked on both: `triton.compile(ASTSource(fn,
signature, constexprs), target=GPUTarget(...), options=...)`, the
`KernelMetadata` fields read here and `JITFunction.arg_names` are the same.
What differs is a default: Triton 3.9 warns that FP contraction (fused
multiply-add) stops being on by default in 3.10, so the ahead-of-time builds
ask for it explicitly and the PTX is the same kind whichever Triton built it.
Anything else that moves between versions goes here, nowhere else.
"""
from __future__ import annotations

# Plugin PTX contracts a*b+c into FMA, as every JIT launch under Triton <= 3.9 does by default.
AOT_OPTIONS = {"enable_fp_fusion": True}


def version() -> str:
    import triton
    return triton.__version__


def compilable(kernel) -> bool:
    """True for a `@triton.jit` function Triton can compile; False for the interpreter's stand-in.

    Under TRITON_INTERPRET=1 every `@triton.jit` function (Triton's own sigmoid and reductions
    included) is interpreted and cannot be compiled in that process.
    """
    from triton.runtime.jit import JITFunction
    return isinstance(kernel, JITFunction)


def compile_for_cuda(kernel, signature: dict, constexprs: dict, arch: int, num_warps: int, warp_size: int = 32,
                     ptx_version: int | None = None):
    """`triton.compile` for CUDA compute capability `arch` (no GPU needed); returns the CompiledKernel.

    `ptx_version` (e.g. 84 for PTX ISA 8.4): the `.version` the PTX declares, Triton's own option;
    None is Triton's default, the ISA of the ptxas it bundles for `arch`.
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    src = ASTSource(kernel, signature, dict(constexprs))
    options = {"num_warps": num_warps, **AOT_OPTIONS}
    if ptx_version is not None:
        options["ptx_version"] = int(ptx_version)
    return triton.compile(src, target=GPUTarget("cuda", arch, warp_size), options=options)


def ptxas(arch: int) -> tuple[str, str]:
    """(path, CUDA release) of the ptxas Triton itself assembles sm_<arch> with (its wheel's bin/ folder).

    Triton 3.9 takes `ptxas-blackwell` (CUDA 13.x) from sm_90 up, Triton 3.6 only from sm_100 up.
    """
    from triton.backends.nvidia.compiler import get_ptxas
    tool = get_ptxas(arch)
    return tool.path, tool.version


def gpu_name(arch: int) -> str:
    """The `--gpu-name` Triton assembles for: sm_90a, sm_100a, sm_120a from Hopper up, else sm_<arch>."""
    from triton.backends.nvidia.compiler import sm_arch_from_capability
    return sm_arch_from_capability(arch)


def ptxas_flags() -> list[str]:
    """The options Triton's own cubin step passes to ptxas besides -v and --gpu-name, so that an
    assembly here gives the machine code Triton loads: -lineinfo always, and, from Triton 3.9, the
    register allocator level it pins (`--regAllocOptLevel=2`, a workaround for a ptxas 13 bug)."""
    import inspect

    from triton.backends.nvidia.compiler import CUDABackend
    source = inspect.getsource(CUDABackend.make_cubin)
    return ["-lineinfo"] + (["--regAllocOptLevel=2"] if "--regAllocOptLevel=2" in source else [])


def metadata_int(compiled, name: str) -> int:
    """An integer field of a CompiledKernel's metadata, 0 where this Triton lacks it (scratch sizes: < 3.4)."""
    return int(getattr(compiled.metadata, name, 0) or 0)


def loaded_resources(compiled) -> tuple[int, int]:
    """(registers, spills) the CUDA driver reports for a CompiledKernel's cubin once loaded (needs a GPU).

    Triton loads lazily (`_init_handles`, 3.6 and 3.9 alike) and keeps the driver's answer as `n_regs`
    and `n_spills`; its n_spills is the function's local memory in 4-byte words (LOCAL_SIZE_BYTES / 4),
    i.e. stack frame, not ptxas's spill bytes.
    """
    compiled._init_handles()
    return int(compiled.n_regs), int(compiled.n_spills)


def default_ptx_version(arch: int) -> int:
    """The PTX ISA Triton declares for sm_<arch> when not told (e.g. 94 for 9.4): its own mapping of the
    release of the ptxas it would use (`ptx_get_version`, same in 3.6 and 3.9)."""
    from triton.backends.nvidia.compiler import ptx_get_version
    return int(ptx_get_version(ptxas(arch)[1]))
