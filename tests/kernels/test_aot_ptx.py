"""Each plugin kernel compiles to sm_90 PTX with the signature a TensorRT AOT plugin uses.

No GPU needed: `triton.compile(ASTSource(fn, signature, constexprs),
target=GPUTarget("cuda", 90, 32))`, run in a separate process because this
session may interpret (see hida_rt/kernels/_plugin_specs.py). Triton >= 3.4
appends global and profile scratch pointers to every kernel; TensorRT's AOT
launch is not known to pass them, so a plugin kernel must ask for no scratch.
"""
from __future__ import annotations

import pytest

from hida_rt.kernels import _plugin_specs, deform_conv, ida, meta_acon


@pytest.fixture(scope="module")
def reports():
    return _plugin_specs.compile_in_subprocess()


@pytest.mark.parametrize("spec_id", list(_plugin_specs.SPECS))
def test_plugin_kernel_compiles_to_sm90_without_scratch(reports, spec_id):
    spec = _plugin_specs.SPECS[spec_id]()
    spec.check_parameter_order()
    r = reports[spec_id]
    assert r["target"].startswith("sm_90"), r
    assert r["global_scratch_size"] == 0 and r["profile_scratch_size"] == 0, r
    # Triton may append hidden scratch pointers after the declared ones (unused: sizes 0 above).
    assert r["ptx_params"] >= r["runtime_args"], r
    assert r["num_warps"] == spec.num_warps


@pytest.mark.parametrize("spec_id", list(_plugin_specs.HOST_SPECS))
def test_host_only_kernel_compiles_to_sm90(reports, spec_id):
    _plugin_specs.HOST_SPECS[spec_id]().check_parameter_order()
    assert reports[spec_id]["target"].startswith("sm_90")


def test_signature_order_is_inputs_scalars_outputs_constexprs():
    sig = ida.aot_kernel("fp16", 16384).signature()
    assert list(sig) == ["y_ptr", "tgb_ptr", "p1_ptr", "p2_ptr", "n_rows", "C", "HW", "out_ptr",
                         "ROWS", "BLOCK", "SINGLE_TILE", "EPS"]
    assert (sig["y_ptr"], sig["p1_ptr"], sig["n_rows"], sig["BLOCK"]) == ("*fp16", "*fp32", "i32", "constexpr")


def test_plugin_grids_match_the_torch_launchers():
    """The grid a plugin computes from its int32 extras is the one the torch launcher uses on a GPU."""
    n, c, hw = 3, 64, 128 * 128
    spec = ida.aot_kernel("fp16", hw)
    assert spec.grid(n_rows=n * c, C=c, HW=hw) == ida.row_grid(n * c, ida.row_config(hw)["ROWS"])
    spec = deform_conv.aot_kernel("fp16", 1024, 512, n_pixels=n * 16)
    cfg = deform_conv.config(n * 16, 1024, 512)
    assert spec.grid(N=n, C_in=1024, H=4, W=4, C_out=512) == \
        deform_conv.grid(n, 1024, 4, 4, 512, cfg["BLOCK_P"], cfg["BLOCK_CO"], 1)
    spec = meta_acon.aot_apply_kernel("fp16", c, hw, 16)
    cfg = meta_acon.apply_config(c, hw, 16)
    assert spec.grid(N=n, C=c, HW=hw, HID=16) == meta_acon.apply_grid(n, c, hw, cfg["BLOCK_C"], cfg["BLOCK_HW"])
