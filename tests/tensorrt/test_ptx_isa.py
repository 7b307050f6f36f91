"""The PTX ISA of the engine's plugin PTX: chosen at build time for the driver, recorded, checked at load.

(That PTX of each ISA assembles with CUDA 12.9's ptxas: test_plugin_ptx.py.)
"""
from __future__ import annotations

import pytest

from hida_rt.errors import InputError
from hida_rt.export.manifest import EngineMismatch, Environment, check_runnable
from hida_rt.export.plugins import ptx_isa
from hida_rt.export.trt_build import EngineRequest, finish_command

H100 = dict(tensorrt_version="10.9.0.34", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")


@pytest.mark.parametrize("cuda, isa", [("12.4", "8.4"), ("12.6", "8.5"), ("12.8", "8.7"), ("12.9", "8.8"),
                                       ("13.0", "9.0"), ("13.3", "9.3"), ("13.4", "9.4"),
                                       ("13.9", "9.4"), ("11.0", None)])
def test_isa_of_a_cuda_release(cuda, isa):
    assert ptx_isa.isa_for_cuda(cuda) == isa


def test_the_build_takes_the_drivers_newest_isa_capped_at_tritons():
    assert ptx_isa.choose(90, None, "12.8", "9.4") == "8.7"        # R570 driver: 8.7, not Triton's 9.4
    assert ptx_isa.choose(90, None, "13.4", "8.8") == "8.8"        # never above what Triton emits
    assert ptx_isa.choose(90, None, None, "9.4") == "9.4"          # no driver to ask: Triton's
    assert ptx_isa.choose(90, "8.4", "13.0", "9.4") == "8.4"       # --ptx-isa wins
    assert ptx_isa.isa_number("8.4") == 84


@pytest.mark.parametrize("arch, requested, driver, match", [
    (90, "7.8", None, r"cannot target sm_90 \(it needs 8.0"),     # wgmma-era Hopper needs ISA 8.0
    (120, None, "12.6", r"cannot target sm_120 \(it needs 8.7"),  # a CUDA 12.6 driver cannot run Blackwell PTX
    (90, "9.9", None, "newer than this Triton emits"),
])
def test_impossible_isas_are_refused_in_one_line(arch, requested, driver, match):
    with pytest.raises(InputError, match=match) as e:
        ptx_isa.choose(arch, requested, driver, "9.4")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text", ["8", "v8.4", "8.44", ""])
def test_a_malformed_ptx_isa_option_is_refused(text):
    with pytest.raises(InputError, match="--ptx-isa takes a PTX ISA version such as 8.4"):
        ptx_isa.parse_isa(text)


def test_the_option_is_checked_and_kept_for_the_finishing_command(tmp_path):
    weights = tmp_path / "w.pth"
    request = EngineRequest(weights=str(weights), ptx_isa="v9")
    with pytest.raises(InputError, match="--ptx-isa"):
        request.check()  # before the weights are even looked at
    assert finish_command(EngineRequest(weights="hida.pth", ptx_isa="8.4")).endswith("--ptx-isa 8.4")
    assert "--ptx-isa" not in finish_command(EngineRequest(weights="hida.pth"))


def test_an_engine_whose_ptx_the_driver_cannot_assemble_is_refused(built_manifest):
    manifest = built_manifest(ptx_isa="8.8")
    with pytest.raises(EngineMismatch) as e:
        check_runnable(manifest, Environment(**H100, driver_cuda_version="12.4"), "hida_fp16.plan")
    line = str(e.value)
    assert "\n" not in line and "ISA 8.8" in line and "CUDA 12.4" in line and "8.4" in line
    assert "--ptx-isa 8.4" in line and "update the NVIDIA driver" in line
    assert check_runnable(manifest, Environment(**H100, driver_cuda_version="12.9")) == []
    assert check_runnable(manifest, Environment(**H100)) == []                       # driver unknown: TensorRT says
    assert check_runnable(built_manifest(), Environment(**H100, driver_cuda_version="12.0")) == []  # no ISA recorded
