"""hida::tensorrt's host-side code, which needs neither TensorRT nor a GPU, run on CPU.

TensorRT cannot be installed on this project's machines, so the TensorRT
backend itself is only compiled where TensorRT is present. What it does before
and around TensorRT is proven here through tests/cpp/trt_host_checks.cpp:
- the manifest checks: manifests written by export/manifest.py (the Python
  writer, so the two sides cannot drift apart) are read; an engine built with
  another TensorRT release or for another compute capability, or never built,
  is refused with one line saying so;
- the FP16 conversions used for engines with FP16 inputs/outputs equal numpy's
  float16 (round to nearest even) for every tested float and every half value;
- the batch buckets (one execution context per bucket, its shape never changed)
  are the Python backend's, and every batch runs in the smallest bucket that holds it.
"""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from hida_rt.export.manifest import Manifest, write_manifest

TRT_10_9_0 = 100900  # getInferLibVersion() of TensorRT 10.9.0: major * 10000 + minor * 100 + patch


def built_manifest(**changes) -> Manifest:
    """A built engine's manifest as python -m hida_rt.build writes it (export/manifest.py)."""
    fields = dict(
        status="built", engine="hida_fp16.plan", trt_onnx="hida_fp16.trt.onnx", precision="fp16",
        height=256, width=256, batch={"min": 1, "opt": 1, "max": 8},
        inputs=[{"name": "photo", "dtype": "float32", "shape": [-1, 3, 256, 256]}],
        outputs=[{"name": "sketch", "dtype": "float32", "shape": [-1, 1, 256, 256]}],
        weights_sha256="ab" * 32, trt_onnx_sha256="cd" * 32, hida_rt_version="0.1.0", created="2026-11-21T00:00:00",
        engine_sha256="ef" * 32, tensorrt_version="10.9.0.34", cuda_version="12.8", gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0")
    fields.update(changes)
    return Manifest(**fields)


def check(driver, path, version=TRT_10_9_0, cc=(9, 0)) -> subprocess.CompletedProcess:
    return subprocess.run([str(driver), "manifest", str(path), str(version), str(cc[0]), str(cc[1])],
                          capture_output=True, text=True)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stdout + result.stderr
    return lines[0]


def test_built_manifest_from_python_is_accepted(trt_host_checks, tmp_path):
    path = write_manifest(built_manifest(), tmp_path / "hida_fp16.plan.json")
    result = check(trt_host_checks, path)
    assert (result.returncode, result.stdout.strip()) == (0, f"ok NVIDIA H100 80GB HBM3|{'ab' * 32}")


@pytest.mark.parametrize("version, cc, message", [
    (101300, (9, 0), "engine.plan: built with TensorRT 10.9.0.34, this is TensorRT 10.13.0 "
                     "(engines run only under the version that built them); rebuild it here"),
    (100901, (9, 0), "engine.plan: built with TensorRT 10.9.0.34, this is TensorRT 10.9.1"),
    (TRT_10_9_0, (8, 9), "engine.plan: built for NVIDIA H100 80GB HBM3 (compute capability 9.0), "
                         "this GPU is this GPU (compute capability 8.9)"),
])
def test_mismatch_is_refused(trt_host_checks, tmp_path, version, cc, message):
    path = write_manifest(built_manifest(), tmp_path / "hida_fp16.plan.json")
    assert one_line(check(trt_host_checks, path, version, cc)).startswith(message)


def test_unbuilt_engine_is_refused_with_the_finish_command(trt_host_checks, tmp_path):
    unbuilt = built_manifest(status="unbuilt", engine_sha256=None, tensorrt_version=None, compute_capability=None,
                             missing="TensorRT is not installed",
                             finish_command="python -m hida_rt.build --from-onnx hida_fp16.trt.onnx")
    path = write_manifest(unbuilt, tmp_path / "hida_fp16.plan.json")
    assert one_line(check(trt_host_checks, path)) == (
        f"{path}: the engine was never built (TensorRT is not installed); finish the build on a machine with "
        f"TensorRT and a GPU: python -m hida_rt.build --from-onnx hida_fp16.trt.onnx")


@pytest.mark.parametrize("edit, message", [
    (lambda d: "{not json", "unreadable manifest, not valid JSON"),
    (lambda d: {**d, "format": "other"}, "not a hida_rt.tensorrt_engine manifest"),
    (lambda d: {**d, "format_version": 2}, "manifest format version is not 1"),
    (lambda d: {**d, "tensorrt_version": "ten"}, 'unreadable "tensorrt_version"'),
    (lambda d: {**d, "compute_capability": "sm90"}, 'unreadable "compute_capability"'),
    (lambda d: {k: v for k, v in d.items() if k != "compute_capability"}, 'missing or unreadable "compute_capability"'),
])
def test_bad_manifest_is_refused(trt_host_checks, tmp_path, edit, message):
    data = edit(json.loads(built_manifest().to_json()))
    path = tmp_path / "hida_fp16.plan.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    line = one_line(check(trt_host_checks, path))
    assert line.startswith(f"{path}: ") and message in line


def test_missing_manifest_is_refused(trt_host_checks, tmp_path):
    line = one_line(check(trt_host_checks, tmp_path / "none.plan.json"))
    assert "no manifest beside the engine (python -m hida_rt.build writes <engine>.json)" in line


def test_fp16_conversions_match_numpy(trt_host_checks, tmp_path):
    rng = np.random.default_rng(0)
    halves = np.arange(65536, dtype=np.uint16).view(np.float16)
    finite = halves[np.isfinite(halves)].astype(np.float32)
    # Every half, the midpoints between neighbours (ties to even), random floats over the whole
    # half range and beyond (overflow to inf, underflow to subnormals and zero), and the specials.
    ordered = np.sort(np.unique(finite))
    values = np.concatenate([
        finite, (ordered[:-1].astype(np.float64) + ordered[1:]) / 2,
        rng.standard_normal(20000) * np.exp2(rng.uniform(-30, 20, 20000)),
        [np.inf, -np.inf, 65520.0, 65519.99, 2.0**-25, 2.0**-25 * 1.0001, 1e-30, -0.0]]).astype(np.float32)
    src, out, back = tmp_path / "in.f32", tmp_path / "out.u16", tmp_path / "back.f32"
    values.tofile(src)
    result = subprocess.run([str(trt_host_checks), "half", str(src), str(out), str(back)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    with np.errstate(over="ignore"):  # the overflow to inf is one of the cases under test
        expected_halves = values.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(np.fromfile(out, dtype=np.uint16), expected_halves)
    expected = halves.astype(np.float32)
    got = np.fromfile(back, dtype=np.float32)
    nan = np.isnan(expected)
    assert np.isnan(got[nan]).all()
    np.testing.assert_array_equal(got[~nan].view(np.uint32), expected[~nan].view(np.uint32))


@pytest.mark.parametrize("max_batch", [1, 2, 3, 8, 12, 32])
def test_batch_buckets_are_the_python_backends(trt_host_checks, max_batch):
    from hida_rt.export.tensorrt_backend import batch_buckets, bucket_for

    out = subprocess.run([str(trt_host_checks), "buckets", "1", str(max_batch)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    buckets, chosen = ([int(v) for v in line.split()] for line in out.stdout.splitlines())
    assert tuple(buckets) == batch_buckets(max_batch)
    assert chosen == [bucket_for(n, batch_buckets(max_batch)) for n in range(1, max_batch + 1)]
    assert all(b >= n and (i == 0 or buckets[i - 1] < n) for n, b in zip(range(1, max_batch + 1), chosen)
               for i in [buckets.index(b)])


def test_an_engine_whose_profile_starts_above_one_has_no_smaller_bucket(trt_host_checks):
    out = subprocess.run([str(trt_host_checks), "buckets", "3", "8"], capture_output=True, text=True)
    assert out.stdout.splitlines() == ["4 8 ", "4 4 8 8 8 8 "]
