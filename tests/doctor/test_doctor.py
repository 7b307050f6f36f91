"""python -m hida_rt.doctor (hida_rt/doctor.py) and the driver facts it reports (hida_rt/gpu_info.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from testutils.cli import run_in_process
from testutils.gpu import ON_GPU

from hida_rt import gpu_info
from hida_rt import self_check as verdicts

cpu_only = pytest.mark.skipif(ON_GPU, reason="checks what the doctor says on a machine without a GPU")


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HIDA_RT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(verdicts, "_probed", set())
    return tmp_path / "cache"


@cpu_only
def test_says_plainly_no_gpu_and_onnxruntime(cache):
    proc = subprocess.run([sys.executable, "-m", "hida_rt.doctor"], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "HIDA_RT_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "GPU          none: no NVIDIA GPU is present" in out
    assert "auto picks   onnxruntime: no NVIDIA GPU is present, so onnxruntime runs on the CPU" in out
    assert f"torch        {torch.__version__}" in out and f"Python       {sys.version.split()[0]}" in out
    for label in ("Triton", "onnxruntime", "TensorRT", "MediaPipe", "PyAV"):
        assert any(line.startswith(label) for line in out.splitlines()), label
    assert "  triton       no: no CUDA GPU" in out and "  eager        usable" in out
    assert "none cached" in out and proc.stderr == ""
    assert len(out.splitlines()) <= 25  # one screen


@cpu_only
def test_json_for_scripts(cache):
    r = run_in_process("hida_rt.doctor", ["--json"])
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["gpus"] == [] and report["auto"]["backend"] == "onnxruntime" and report["exit_code"] == 0
    assert report["backends"]["triton"]["usable"] is False and "no CUDA GPU" in report["backends"]["triton"]["reason"]
    assert report["backends"]["onnxruntime"] == {"usable": True, "reason": None}
    assert report["torch"]["version"] == torch.__version__ and set(report["driver"]) == {"driver", "cuda", "ptx_isa"}
    assert report["self_checks"] == [] and report["cache"] == str(cache / "self_check")


@cpu_only
def test_probe_without_a_gpu_says_there_is_nothing_to_probe(cache):
    r = run_in_process("hida_rt.doctor", ["--probe"])
    assert r.returncode == 0, r.stderr
    assert "probe        nothing to probe: the triton backend cannot run here (no CUDA GPU" in r.stdout
    assert not (cache / "self_check").exists()


def test_cached_verdicts_are_listed_with_their_figures(cache):
    failing = verdicts.Verdict(
        backend="triton", passed=False, created="2026-01-02T03:04:05Z", seconds=2.5, note="seed 7",
        key=dict(gpu="NVIDIA H100 80GB HBM3", compute_capability="9.0", driver="570.124.06", driver_cuda="12.8",
                 torch="2.11.0", triton="3.6.0", hida_rt="0.1.0", dtype="fp16"),
        checks=[dict(name="ida (1, 128, 64, 64) float16", kind="kernel", passed=False,
                     figures={"max_abs": 0.25, "worst_of_limit": 24.0, "nonfinite": 0},
                     limits="|d| <= 0.01 + 0.005 |ref|")])
    verdicts.store(failing)
    r = run_in_process("hida_rt.doctor", [])
    assert r.returncode == 0, r.stderr
    assert ("  triton fp16: FAILED on NVIDIA H100 80GB HBM3 (driver 570.124.06, torch 2.11.0, Triton 3.6.0, "
            "hida_rt 0.1.0), 2026-01-02T03:04:05Z, 2.5 s") in r.stdout
    assert "    ida (1, 128, 64, 64) float16: max_abs 0.25, worst_of_limit 24, nonfinite 0 (limit |d| <= 0.01 + " \
           "0.005 |ref|) FAILED" in r.stdout
    report = json.loads(run_in_process("hida_rt.doctor", ["--json"]).stdout)
    assert report["self_checks"][0]["checks"][0]["figures"]["max_abs"] == 0.25


@cpu_only
def test_auto_names_the_fallback_when_triton_failed_here(cache, monkeypatch):
    """With the triton backend usable and a failing verdict cached for this device, auto names eager and why."""
    from hida_rt.kernels.triton_backend import TritonBackend, probe_key
    monkeypatch.setattr(TritonBackend, "unavailable_reason", classmethod(lambda cls, **options: None))
    verdicts.store(verdicts.Verdict(backend="triton", passed=False, key=probe_key(torch.device("cpu"), "fp16"),
                                    checks=[dict(name="deform_conv", passed=False, figures={"max_abs": 1.0})],
                                    created=verdicts.now()))
    r = run_in_process("hida_rt.doctor", ["--device", "cpu"])
    assert r.returncode == 0, r.stderr
    assert "auto picks   eager FP32: triton did not pass its self-check (failed on CPU (Triton interpreter)" in r.stdout
    assert "deform_conv: max_abs 1 FAILED" in r.stdout


@cpu_only
def test_auto_says_the_check_is_still_to_run(cache, monkeypatch):
    from hida_rt.kernels.triton_backend import TritonBackend
    monkeypatch.setattr(TritonBackend, "unavailable_reason", classmethod(lambda cls, **options: None))
    r = run_in_process("hida_rt.doctor", ["--device", "cpu", "--json"])
    report = json.loads(r.stdout)
    assert report["auto"]["backend"] == "triton" and "runs on first use" in report["auto"]["why"]
    assert report["self_checks"] == []  # the doctor did not probe without --probe


def test_bad_device_is_one_line_exit_2(cache):
    r = run_in_process("hida_rt.doctor", ["--device", "tpu"])
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == ["hida_rt.doctor: error: --device 'tpu' is not a device; "
                                             "use cpu, cuda or cuda:N"]


def test_the_driver_line_names_its_cuda_and_ptx_isa(cache, monkeypatch):
    from hida_rt.export.plugins import ptx_isa
    monkeypatch.setattr(ptx_isa, "driver_cuda_version", lambda: "12.8")
    monkeypatch.setattr(gpu_info, "driver_version", lambda: "570.124.06")
    r = run_in_process("hida_rt.doctor", [])
    assert "driver       570.124.06, CUDA 12.8, accepts PTX ISA up to 8.7" in r.stdout, r.stdout


def test_driver_version_from_the_kernel_module_line(monkeypatch, tmp_path):
    text = ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.124.06  Release Build  "
            "(dvs-builder@U16-I3-B03-4-3)  Tue Mar  4 00:53:27 UTC 2025\nGCC version:  gcc version 12.2.0\n")
    real = gpu_info.Path

    def fake_path(p):
        return real(tmp_path / "version") if p == "/proc/driver/nvidia/version" else real(p)
    (tmp_path / "version").write_text(text)
    monkeypatch.setattr(gpu_info, "Path", fake_path)
    assert gpu_info.driver_version() == "570.124.06"
