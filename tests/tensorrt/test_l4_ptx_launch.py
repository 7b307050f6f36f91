"""L4: the PTX each AOT plugin hands TensorRT, launched the way TensorRT launches it, equals the reference.

No TensorRT involved: `compile_plugin` (what `aot_impl` returns to TensorRT)
gives the PTX, kernel name, grid, block, shared memory and argument order;
the PTX is loaded with the CUDA driver API (cuda-python, or CuPy) and
launched with exactly those, arguments packed as TensorRT's AOT launch packs
them: input pointers, int32 extras, output pointers, then a null pointer for
each hidden scratch parameter Triton appends (the kernels use no scratch:
test_plugin_ptx.py). Outputs start as NaN, so an element the grid misses
fails. Tolerances are the kernels' own (hida_rt.kernels._tolerances).

Needs a CUDA GPU; skips elsewhere (the CPU machines prove the PTX builds).
"""
from __future__ import annotations

import ctypes
import os
import tempfile

import numpy as np
import pytest
import torch

from hida_rt.export.plugins import compile as pc
from hida_rt.export.plugins.specs import plugin_spec
from hida_rt.kernels._tolerances import tolerance

pytestmark = pytest.mark.gpu
if not torch.cuda.is_available():
    pytest.skip("L4 launches the plugins' PTX on a CUDA GPU and this machine has none (the CPU tests prove the "
                "PTX builds for sm_90: test_plugin_ptx.py)", allow_module_level=True)

KERNEL_TOLERANCE = {"ida": "ida", "meta_acon_mean": "meta_acon", "meta_acon_apply": "meta_acon",
                    "acon_const": "acon_const", "deform_conv": "deform_conv"}
DEFAULT_MAX_SHARED = 48 * 1024
BATCH = 2


# ---------------------------------------------------------------- loading and launching PTX

class DriverLauncher:
    """cuda-python's driver API: cuModuleLoadData + cuLaunchKernel with an explicit parameter array."""

    def __init__(self):
        try:
            from cuda.bindings import driver  # cuda-python >= 12.6
        except ImportError:
            from cuda import cuda as driver   # older cuda-python
        self.cu = driver
        self._check(driver.cuInit(0))

    def _check(self, result):
        err = result[0] if isinstance(result, tuple) else result
        if err != self.cu.CUresult.CUDA_SUCCESS:
            raise RuntimeError(f"CUDA driver call failed: {err}")
        return result[1] if isinstance(result, tuple) and len(result) > 1 else None

    def __call__(self, launch, values: list, types: list):
        cu = self.cu
        image = np.frombuffer(launch["ptx"].encode() + b"\0", dtype=np.uint8)
        module = self._check(cu.cuModuleLoadData(image.ctypes.data))
        fn = self._check(cu.cuModuleGetFunction(module, launch["kernel_name"].encode()))
        if launch["shared_mem"] > DEFAULT_MAX_SHARED:
            self._check(cu.cuFuncSetAttribute(
                fn, cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, launch["shared_mem"]))
        # One host cell per parameter, and an array of pointers to them: cuLaunchKernel's kernelParams.
        cells = [np.array([v], dtype=np.uint64 if t == "ptr" else np.int32) for v, t in zip(values, types)]
        params = np.array([c.ctypes.data for c in cells], dtype=np.uint64)
        stream = cu.CUstream(torch.cuda.current_stream().cuda_stream)
        self._check(cu.cuLaunchKernel(fn, *launch["grid"], *launch["block"], launch["shared_mem"], stream,
                                      params.ctypes.data, 0))
        torch.cuda.current_stream().synchronize()
        self._check(cu.cuModuleUnload(module))


class CupyLauncher:
    """CuPy: RawModule(path=<ptx file>) and a launch with NumPy-typed arguments (uint64 pointers, int32)."""

    def __init__(self):
        import cupy
        self.cupy = cupy

    def __call__(self, launch, values: list, types: list):
        with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
            f.write(launch["ptx"])
        try:
            fn = self.cupy.RawModule(path=f.name).get_function(launch["kernel_name"])
            args = tuple(np.uint64(v) if t == "ptr" else np.int32(v) for v, t in zip(values, types))
            with self.cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
                fn(tuple(launch["grid"]), tuple(launch["block"]), args, shared_mem=launch["shared_mem"])
            torch.cuda.current_stream().synchronize()
        finally:
            os.unlink(f.name)


@pytest.fixture(scope="module")
def launcher():
    for kind in (DriverLauncher, CupyLauncher):
        try:
            return kind()
        except ImportError:
            continue
    pytest.skip("L4 needs cuda-python (cuda-bindings) or CuPy to load PTX")


def compile_here(name: str, shapes, dtype: str) -> dict:
    major, minor = torch.cuda.get_device_capability()
    arch = 10 * major + minor
    if os.environ.get("TRITON_INTERPRET") == "1":  # this session interprets: compile in a clean process
        return pc.compile_isolated([{"plugin": name, "shapes": [list(s) for s in shapes], "dtype": dtype}],
                                   arch=arch)[0]
    return pc.compile_plugin(name, shapes, dtype, arch=arch).report()


def launch_plugin(launcher, name: str, inputs: list[torch.Tensor], dtype: str) -> torch.Tensor:
    """Compile as aot_impl does, then launch exactly as described: returns the output tensor."""
    spec = plugin_spec(name)
    shapes = [tuple(t.shape) for t in inputs]
    launch = compile_here(name, shapes, dtype)
    _, out_dtype = spec.dtypes(dtype)
    out = torch.full(spec.output_shape(shapes), float("nan"), device="cuda",
                     dtype=torch.float16 if out_dtype == "fp16" else torch.float32)
    by_name = {f"{n}_ptr": t for n, t in zip(spec.inputs, inputs)}
    scalars = dict(launch["scalars"])
    values, types = [], []
    for arg in launch["args"]:
        if arg in scalars:
            values.append(int(scalars[arg]))
            types.append("i32")
        else:
            values.append((by_name[arg] if arg in by_name else out).data_ptr())
            types.append("ptr")
    hidden = launch["ptx_params"] - len(launch["args"])
    values += [0] * hidden           # Triton's global/profile scratch pointers: null, unused
    types += ["ptr"] * hidden
    launcher(launch, values, types)
    return out


# ---------------------------------------------------------------- cases at the network's layer shapes

def data(g, *shape, scale=1.0, dtype=torch.float32):
    return (torch.randn(*shape, generator=g) * scale).to("cuda", dtype)


def make_inputs(name: str, shape: tuple, dtype: torch.dtype, g) -> list[torch.Tensor]:
    n, c, h, w = shape
    f32 = torch.float32
    if name == "ida":
        return [data(g, n, c, h, w, dtype=dtype), data(g, n, 3 * c, h, w, dtype=dtype), data(g, c), data(g, c)]
    if name == "meta_acon_mean":
        return [data(g, n, c, h, w, dtype=dtype) + 0.5]
    if name == "meta_acon_apply":
        hid = max(16, c // 16)
        x = data(g, n, c, h, w, dtype=dtype)
        mean = x.float().mean(dim=(2, 3))
        return [x, mean, data(g, hid, c, scale=0.3), data(g, hid), data(g, c, hid, scale=0.3), data(g, c),
                data(g, c), data(g, c)]
    if name == "acon_const":
        return [data(g, n, c, h, w, dtype=dtype), data(g, c), data(g, c), torch.rand(c, generator=g).cuda()]
    if name == "deform_conv":
        cout = 512
        return [data(g, n, c, h, w, dtype=dtype), data(g, n, 54, h, w, scale=1.5, dtype=dtype),
                data(g, 9, c, cout, scale=c ** -0.5, dtype=dtype), data(g, cout, dtype=f32)]
    raise KeyError(name)


CASES = [
    ("ida", (BATCH, 64, 128, 128)),      # up6: rows longer than one tile
    ("ida", (BATCH, 512, 2, 2)),         # up0: tiny rows, many per program
    ("meta_acon_mean", (BATCH, 128, 128, 128)),
    ("meta_acon_mean", (BATCH, 1, 64, 64)),
    ("meta_acon_apply", (BATCH, 512, 2, 2)),
    ("meta_acon_apply", (BATCH, 1, 128, 128)),
    ("meta_acon_apply", (BATCH, 128, 128, 128)),
    ("acon_const", (BATCH, 256, 64, 64)),
    ("deform_conv", (BATCH, 512, 2, 2)),   # up0
    ("deform_conv", (BATCH, 1024, 4, 4)),  # up1
]


@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
@pytest.mark.parametrize("name, shape", CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in CASES])
def test_plugin_ptx_launch_matches_reference(launcher, name, shape, dtype):
    seed = int(np.random.randint(2**31))
    g = torch.Generator().manual_seed(seed)
    inputs = make_inputs(name, shape, torch.float16 if dtype == "fp16" else torch.float32, g)
    out = launch_plugin(launcher, name, inputs, dtype)
    with torch.no_grad():
        ref = plugin_spec(name).reference(*inputs)
    what = f"{name} {dtype} {shape} (seed {seed})"
    bad = ~torch.isfinite(out)
    assert not bad.any(), f"{what}: {int(bad.sum())} of {out.numel()} outputs unwritten or not finite"
    atol, rtol = tolerance(KERNEL_TOLERANCE[name], torch.float16 if dtype == "fp16" else torch.float32)
    torch.testing.assert_close(out.float(), ref.float(), atol=atol, rtol=rtol, msg=lambda m: f"{what}: {m}")


def test_driver_packing_is_what_cuda_expects():
    """The parameter cells are 8-byte pointers and 4-byte ints, as the PTX .param declarations say."""
    assert np.array([1], dtype=np.uint64).itemsize == ctypes.sizeof(ctypes.c_void_p)
    assert np.array([1], dtype=np.int32).itemsize == 4
