"""Every kernel configuration the triton backend launches compiles to sm_90 PTX, under each supported Triton.

The configurations are the backend's own: the fused network is driven on meta
tensors with its torch launchers deciding tiles and splits as on a 132-SM
GPU (testutils.kernel_launches), at every batch and size the GPU session
runs, FP16 and FP32. Each distinct one is built ahead of time
(`triton.compile` for sm_90, no GPU needed, in a separate process because
this session may interpret) with the installed Triton and with Triton 3.6,
the GPU image's, and checked against the AOT contract: PTX parameters in the
declared order (pointers, int32 extras, pointers, then only Triton's hidden
scratch pointers) and no scratch memory.
"""
from __future__ import annotations

import pytest
from testutils.kernel_launches import KERNEL_MODULES, backend_kernels as launched_kernels
from testutils.tritons import TRITONS, expected_version, python_for

from hida_rt.kernels import _aot, ida


def jit_kernels() -> set[str]:
    """Every `@triton.jit` kernel function of the kernel modules (their helpers are inlined into these)."""
    return {name for mod in KERNEL_MODULES for name, value in vars(mod).items()
            if name.endswith("_kernel") and hasattr(value, "arg_names")}


@pytest.fixture(scope="module")
def backend_kernels(spread_model) -> list[_aot.AotKernel]:
    """The distinct kernel configurations of the triton backend's launches over BACKEND_CASES."""
    return launched_kernels(spread_model)


@pytest.fixture(scope="module", params=TRITONS, ids=lambda t: f"triton-{t}")
def backend_builds(request, backend_kernels):
    python = python_for(request.param)
    return request.param, _aot.build_isolated(backend_kernels, arch=90, python=python, timeout=900)


def test_the_backend_launches_every_kernel(backend_kernels):
    """So the PTX checks below cover each kernel: the split paths and split-K included."""
    assert {k.name for k in backend_kernels} == jit_kernels()
    splits = [k for k in backend_kernels if k.name == "deform_conv_kernel" and k.constexprs["SPLIT_K"] > 1]
    assert splits, "no split-K deformable conv launch at batch 1"


@pytest.mark.slow
def test_every_backend_kernel_builds_for_sm90_in_the_aot_contract(backend_kernels, backend_builds):
    which, builds = backend_builds
    assert len(builds) == len(backend_kernels)
    problems = []
    for kernel, built in zip(backend_kernels, builds):
        assert built.triton == expected_version(which)
        assert built.name == kernel.name and f".entry {built.kernel_name}(" in built.ptx
        for p in _aot.contract_violations(kernel, built, arch=90):
            problems.append(f"{kernel.name} {dict(kernel.constexprs)} {dict(kernel.dtypes)}: {p}")
    assert not problems, "\n".join(problems)


def test_signature_order_is_inputs_scalars_outputs_constexprs():
    sig = ida.aot_kernel("fp16", 16384).signature()
    assert list(sig) == ["y_ptr", "tgb_ptr", "p1_ptr", "p2_ptr", "n_rows", "C", "HW", "out_ptr",
                         "ROWS", "BLOCK", "SINGLE_TILE", "EPS"]
    assert (sig["y_ptr"], sig["p1_ptr"], sig["n_rows"], sig["BLOCK"]) == ("*fp16", "*fp32", "i32", "constexpr")


def test_contract_check_catches_a_wrong_order():
    """contract_violations reads the PTX's parameter types: a pointer where an int32 extra is declared fails."""
    kernel = ida.aot_kernel("fp16", 64)
    built = _aot.KernelBuild(name=kernel.name, kernel_name=kernel.name, target="sm_90a", ptx="", num_warps=4,
                             ptx_params=("ptr",) * 3 + ("u32", "ptr", "u32", "u32", "ptr", "ptr", "ptr"),
                             shared=0, global_scratch_size=0, profile_scratch_size=16, triton="x")
    problems = _aot.contract_violations(kernel, built, arch=90)
    assert any("PTX parameters" in p for p in problems) and any("scratch" in p for p in problems)
