"""What a TensorRT AOT plugin (or any other host) needs to compile and launch one kernel.

Each kernel module describes its plugin-ready kernel(s) with an `AotKernel`:
the `@triton.jit` function, the order of its parameters (pointers read,
int32 extras, pointers written, then constexprs), the element type of each
pointer, the constexpr values, `num_warps`, and a grid function of the int32
extras. The grid functions use only `+ - * //` on their arguments, so they
also work on TensorRT's symbolic shape expressions.

The AOT contract (../shared/design/runtime.md): one launch per op, no scratch
memory, parameters ordered inputs, int32 extras, outputs. `compile_ptx`
checks the last part: Triton >= 3.4 appends global/profile scratch pointers
to every kernel, and a plugin kernel must not use them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

TRITON_TYPES = {"fp16": "*fp16", "fp32": "*fp32", "bf16": "*bf16"}


def cdiv(a, b):
    """Ceiling division with `+ - //` only, for ints and TensorRT shape expressions alike."""
    return (a + b - 1) // b


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


@dataclass(frozen=True)
class AotKernel:
    """One kernel launch as a plugin sees it.

    Parameters of `kernel`, in order: `inputs`, `scalars` (int32), `outputs`,
    then the names of `constexprs`. `dtypes` maps each pointer parameter to
    "fp16" / "fp32". `grid(**scalars)` gives the launch grid (up to 3 dims).
    """

    kernel: object
    inputs: tuple[str, ...]
    scalars: tuple[str, ...]
    outputs: tuple[str, ...]
    dtypes: Mapping[str, str]
    constexprs: Mapping[str, object]
    grid: Callable[..., tuple]
    num_warps: int = 4
    notes: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return self.kernel.__name__

    def arg_names(self) -> tuple[str, ...]:
        return self.inputs + self.scalars + self.outputs + tuple(self.constexprs)

    def signature(self) -> dict[str, str]:
        """The `ASTSource` signature: pointers typed, scalars i32, constexprs marked."""
        sig = {name: TRITON_TYPES[self.dtypes[name]] for name in self.inputs}
        sig.update({name: "i32" for name in self.scalars})
        sig.update({name: TRITON_TYPES[self.dtypes[name]] for name in self.outputs})
        sig.update({name: "constexpr" for name in self.constexprs})
        return sig

    def check_parameter_order(self) -> None:
        """Raise unless the jit function's parameters are exactly `arg_names()`, in order."""
        declared = tuple(_arg_names(self.kernel))
        if declared != self.arg_names():
            raise ValueError(f"{self.name}: parameters {declared} != AOT order {self.arg_names()}")

    def compile(self, arch: int = 90, warp_size: int = 32):
        """triton.compile for `cuda:arch` (no GPU needed); the CompiledKernel has .asm["ptx"] and .metadata."""
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        from triton.runtime.jit import JITFunction

        if not isinstance(self.kernel, JITFunction):
            # Under TRITON_INTERPRET=1 every @triton.jit function, Triton's own sigmoid
            # and reductions included, is interpreted and cannot be compiled.
            raise RuntimeError(f"{self.name} is not compile-able in a process with TRITON_INTERPRET=1; "
                               f"compile in a separate process: python -m hida_rt.kernels._plugin_specs")
        self.check_parameter_order()
        src = ASTSource(self.kernel, self.signature(), dict(self.constexprs))
        return triton.compile(src, target=GPUTarget("cuda", arch, warp_size),
                              options={"num_warps": self.num_warps})


def _arg_names(kernel) -> list[str]:
    return list(getattr(kernel, "arg_names"))


def scratch_sizes(compiled) -> dict[str, int]:
    """Global and profile scratch bytes a compiled kernel asks for (0 where this Triton lacks the field)."""
    md = compiled.metadata
    return {name: int(getattr(md, name, 0) or 0) for name in ("global_scratch_size", "profile_scratch_size")}
