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


def compile_for_cuda(kernel, signature: dict, constexprs: dict, arch: int, num_warps: int, warp_size: int = 32):
    """`triton.compile` for CUDA compute capability `arch` (no GPU needed); returns the CompiledKernel."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    src = ASTSource(kernel, signature, dict(constexprs))
    return triton.compile(src, target=GPUTarget("cuda", arch, warp_size),
                          options={"num_warps": num_warps, **AOT_OPTIONS})


def metadata_int(compiled, name: str) -> int:
    """An integer field of a CompiledKernel's metadata, 0 where this Triton lacks it (scratch sizes: < 3.4)."""
    return int(getattr(compiled.metadata, name, 0) or 0)
