"""Record the Triton launches hida_rt.kernels' torch launchers make, deciding tiles and splits as on a GPU.

The tests' launch checks and the SASS report (hida_rt.kernels.sass) share it:
both must see exactly the configurations the triton backend launches.

    with gpu_host_launches(run=True) as launches:
        ida.ida(y, tgb, p1, p2)             # runs (interpreter), and is recorded
    launches[0].grid, launches[0].constexprs, launches[0].scalars, launches[0].num_warps

Inside the context every `@triton.jit` kernel a launcher calls is replaced by
a recorder of what the launcher really passes (`kernel[grid](*args, **kw)`),
and the host-side choices that depend on the device (tile size, split paths)
are made as on a 132-SM GPU (`_common.DEFAULT_SMS`), not as for the CPU
interpreter. `run=False` records without launching, so launchers may be
driven with meta tensors (`fused_launches`: the whole triton backend's
launches for a batch and size, in a second, without a GPU).

`Launch.aot_kernel()` turns a recorded launch into the `AotKernel` an
ahead-of-time compile needs (pointer dtypes from the tensors, int32 extras,
constexprs, warps), so the PTX checks build exactly what the backend launches.
"""
from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass, field

import torch

from . import _aot, _common, deform_conv, ida, meta_acon

KERNEL_MODULES = (ida, meta_acon, deform_conv)
# (dtype, batch, size) the triton backend is exercised at (the GPU session's tests and benchmarks).
BACKEND_CASES = [(torch.float16, b, 256) for b in (1, 3, 4, 6, 8, 32)] + [(torch.float16, 1, 512),
                                                                          (torch.float32, 2, 256)]
_DTYPES = {torch.float16: "fp16", torch.float32: "fp32", torch.bfloat16: "bf16"}


@dataclass(frozen=True)
class Launch:
    kernel: object            # the @triton.jit function (or the interpreter's stand-in)
    grid: tuple
    args: tuple               # positional: tensors (or their dtype names) and ints, in parameter order
    constexprs: dict = field(hash=False)
    num_warps: int = 4

    @property
    def name(self) -> str:
        return self.kernel.__name__

    @property
    def scalars(self) -> tuple:
        return tuple(a for a in self.args if isinstance(a, int))

    def aot_kernel(self) -> _aot.AotKernel:
        """The launch as an AotKernel: leading pointers are inputs, then int32 extras, then outputs."""
        params = list(_aot.param_names(self.kernel))
        names = params[:len(self.args)]
        kinds = ["i32" if isinstance(a, int) else "ptr" for a in self.args]
        first_int = kinds.index("i32") if "i32" in kinds else len(kinds)
        last_int = len(kinds) - 1 - kinds[::-1].index("i32") if "i32" in kinds else len(kinds)
        if "ptr" in kinds[first_int:last_int + 1]:
            raise ValueError(f"{self.name}: pointers between int arguments {kinds}: not an AOT parameter order")
        dtypes = {n: _DTYPES[a.dtype] for n, a in zip(names, self.args) if isinstance(a, torch.Tensor)}
        return _aot.AotKernel(
            kernel=self.kernel, inputs=tuple(names[:first_int]), scalars=tuple(names[first_int:last_int + 1]),
            outputs=tuple(names[last_int + 1:]), dtypes=dtypes,
            constexprs={n: self.constexprs[n] for n in params if n in self.constexprs}, grid=None,
            num_warps=self.num_warps)

    def config_key(self) -> tuple:
        """What decides the compiled kernel: function, pointer dtypes, constexprs, warps."""
        return (self.name, tuple(_DTYPES.get(getattr(a, "dtype", None), "i32") for a in self.args),
                tuple(sorted(self.constexprs.items())), self.num_warps)


class _Recorder:
    """Stands in for one @triton.jit kernel: `rec[grid](*args, **kw)` records, then (run=True) launches."""

    def __init__(self, kernel, log: list, run: bool):
        self.kernel, self.log, self.run = kernel, log, run
        self.__name__ = kernel.__name__

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            kw = dict(kwargs)
            warps = kw.pop("num_warps", 4)
            self.log.append(Launch(self.kernel, tuple(grid), tuple(args), kw, warps))
            if self.run:
                return self.kernel[grid](*args, **kwargs)
            return None
        return launch


def _contiguity_only(*tensors):
    for t in tensors:
        if not t.is_contiguous():
            raise ValueError(f"hida_rt kernels take contiguous NCHW tensors, got strides {t.stride()}")


@contextlib.contextmanager
def gpu_host_launches(run: bool = True):
    """Yield the list of Launch records made inside, with GPU tile and split choices (see module doc)."""
    log: list[Launch] = []
    saved = []

    def patch(obj, name, value):
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    try:
        for mod in KERNEL_MODULES:
            for name, value in list(vars(mod).items()):
                if name.endswith("_kernel") and hasattr(value, "__getitem__") and hasattr(value, "arg_names"):
                    patch(mod, name, _Recorder(value, log, run))
            if hasattr(mod, "interpreting"):
                patch(mod, "interpreting", lambda: False)
            if hasattr(mod, "tile_elements"):
                patch(mod, "tile_elements", lambda: _common.GPU_TILE)
            if not run:  # meta tensors: no device to launch on, nothing to check but layout
                patch(mod, "check_launchable", _contiguity_only)
        yield log
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)


def fused_launches(model, batch: int, size: int) -> list[Launch]:
    """Every Triton launch `model` (a FusedHIDA with use_kernels=True) makes for one call, without a GPU.

    The model is moved to the meta device and run on meta tensors, with the torch launchers called
    directly (the custom ops would answer with their fake implementations there, launching nothing).
    """
    from . import fused_model as fm

    launchers = types.SimpleNamespace(ida=ida.ida, meta_acon=meta_acon.meta_acon, acon_const=meta_acon.acon_const,
                                      deform_conv=deform_conv.deform_conv)
    meta = model.to("meta")
    photo = torch.empty(batch, 3, size, size, device="meta")
    depth = torch.empty(batch, 1, size, size, device="meta")
    style = torch.empty(batch, 3, device="meta")
    original = fm._kernel_ops
    fm._kernel_ops = lambda: launchers
    try:
        with gpu_host_launches(run=False) as log:
            meta(photo, depth, style)
    finally:
        fm._kernel_ops = original
    return list(log)


def backend_kernels(generator, cases=None) -> list[_aot.AotKernel]:
    """The distinct kernel configurations the triton backend launches for `generator` (an eager
    HIDAGenerator) at each (dtype, batch, size) of `cases` (default BACKEND_CASES), in first-seen order."""
    from .fused_model import FusedHIDA

    found = {}
    cases = BACKEND_CASES if cases is None else cases
    for dtype in dict.fromkeys(c[0] for c in cases):
        model = FusedHIDA(generator, dtype, use_kernels=True)
        for _, batch, size in [c for c in cases if c[0] == dtype]:
            for launch in fused_launches(model, batch, size):
                kernel = launch.aot_kernel()
                found.setdefault(kernel.config_key(), kernel)
    return list(found.values())
