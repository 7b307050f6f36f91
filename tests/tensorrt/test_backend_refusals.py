"""Every way the tensorrt backend refuses to run, each in one line that says what to do.

File-level refusals (no engine, missing plan, missing/corrupt/unbuilt
manifest) come before any TensorRT import, so they are checked here on any
machine. Machine-level ones (no TensorRT, no GPU, other TensorRT version,
other GPU) are `check_runnable` of the manifest against an `Environment`,
the running machine's versions as the backend probes them.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from hida_rt.backends import create_backend, resolve, unavailable_reason
from hida_rt.cli import run_cli
from hida_rt.errors import BackendUnavailable
from hida_rt.export.manifest import (EngineMismatch, Environment, check_engine_file, check_runnable, manifest_path,
                                     write_manifest)
from hida_rt.export.tensorrt_builder import environment, missing_for_build, tensorrt_version
from hida_rt.sketch import main as sketch_main

# Not find_spec("tensorrt"): with pytest's pythonpath=tests, this folder itself is a namespace package of that name.
HAS_TENSORRT = tensorrt_version() is not None
H100 = Environment(tensorrt_version="10.9.0.34", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")


def reason(**options) -> str:
    r = unavailable_reason("tensorrt", **options)
    assert r is not None and "\n" not in r
    return r


@pytest.fixture
def engine(tmp_path, built_manifest):
    """A plan file with a built manifest beside it (the bytes are not an engine: no test here loads it)."""
    plan = tmp_path / "hida_fp16.plan"
    plan.write_bytes(b"not really a plan")
    write_manifest(built_manifest(engine=plan.name), manifest_path(plan))
    return plan


def test_no_engine_given():
    assert "no engine given" in reason() and "python -m hida_rt.build" in reason(engine=None)


def test_cpu_device_is_refused(engine):
    assert "CUDA GPU" in reason(engine=str(engine), device="cpu")


def test_missing_engine_file(tmp_path):
    assert "no such engine file" in reason(engine=str(tmp_path / "absent.plan"))


def test_engine_without_manifest(engine):
    manifest_path(engine).unlink()
    assert "no manifest" in reason(engine=str(engine))


def test_corrupt_manifest(engine):
    manifest_path(engine).write_text("{ truncated")
    assert "unreadable manifest" in reason(engine=str(engine))


def test_unbuilt_engine_says_how_to_finish(tmp_path, built_manifest):
    plan = tmp_path / "hida_fp16.plan"
    cmd = "python -m hida_rt.build --weights w.pth -o hida_fp16.plan --max-batch 8 --height 256 --width 256"
    write_manifest(built_manifest(status="unbuilt", engine_sha256=None, tensorrt_version=None, gpu_name=None,
                                  compute_capability=None, missing="TensorRT is not installed",
                                  finish_command=cmd), manifest_path(plan))
    r = reason(engine=str(plan))
    assert "never built" in r and "TensorRT is not installed" in r and cmd in r


@pytest.mark.skipif(HAS_TENSORRT, reason="this machine has TensorRT; the refusal below is for machines without it")
def test_no_tensorrt_here(engine):
    assert "TensorRT is not installed" in reason(engine=str(engine))


@pytest.mark.parametrize("env, message", [
    (replace(H100, tensorrt_version=None), "TensorRT is not installed"),
    (replace(H100, gpu_name=None, compute_capability=None), "no CUDA GPU"),
    (replace(H100, tensorrt_version="10.13.0.35"), "built with TensorRT 10.9.0.34, this is TensorRT 10.13.0.35"),
    (replace(H100, tensorrt_version="11.1.0.2"), "built with TensorRT 10.9.0.34, this is TensorRT 11.1.0.2"),
    (Environment("10.9.0.34", "NVIDIA A100-SXM4-80GB", "8.0"), "compute capability 9.0), this GPU is NVIDIA A100"),
])
def test_machine_mismatches_are_refused(built_manifest, env, message):
    with pytest.raises(EngineMismatch, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        check_runnable(built_manifest(), env, "hida_fp16.plan")
    assert "\n" not in str(e.value)


def test_same_gpu_generation_runs_with_a_warning(built_manifest):
    assert check_runnable(built_manifest(), H100) == []
    warnings = check_runnable(built_manifest(), replace(H100, gpu_name="NVIDIA H200"))
    assert len(warnings) == 1 and "NVIDIA H200" in warnings[0]


def test_replaced_plan_bytes_are_refused(engine, built_manifest):
    with pytest.raises(EngineMismatch, match="SHA-256 differs"):
        check_engine_file(engine, built_manifest())


def test_create_backend_and_auto_never_pick_an_unusable_engine(engine):
    with pytest.raises(BackendUnavailable, match="cannot run here"):
        create_backend("tensorrt", None, engine=None)
    assert resolve("auto", weights=None, engine=None, device="cpu") != "tensorrt"
    if environment().tensorrt_version is None:
        # An engine the user named but that cannot run is refused with the reason, not silently swapped.
        with pytest.raises(BackendUnavailable, match="was given, but the tensorrt backend cannot run here"):
            resolve("auto", weights=None, engine=str(engine), device="cpu")


def test_sketch_cli_reports_the_refusal_in_one_line(capsys, sample_pair, spread_ckpt, tmp_path):
    photo, depth = sample_pair
    code = run_cli(sketch_main, [str(photo), "--depth", str(depth), "--weights", str(spread_ckpt), "--backend",
                                 "tensorrt", "-o", str(tmp_path / "out.png"), "-q"], prog="hida_rt.sketch")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no engine given" in err
    assert not (tmp_path / "out.png").exists()


def test_build_requirements_are_named():
    assert "not installed" in missing_for_build(replace(H100, tensorrt_version=None))
    assert "older than 10.9" in missing_for_build(replace(H100, tensorrt_version="10.8.0.43"))
    assert "no CUDA GPU" in missing_for_build(replace(H100, gpu_name=None, compute_capability=None))
    assert missing_for_build(H100) is None
    assert missing_for_build(replace(H100, tensorrt_version="11.1.0.2")) is None
