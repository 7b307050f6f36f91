"""hida::tensorrt's host-side code, which needs neither TensorRT nor a GPU, run on CPU.

TensorRT cannot be installed on this project's machines, so the TensorRT
backend itself is only compiled where TensorRT is present. What it does before
and around TensorRT is proven here through tests/cpp/trt_host_checks.cpp:
- the manifest (<engine>.json) checks: an engine built with another TensorRT
  release or for another compute capability is refused with one line saying so;
- the FP16 conversions used for engines with FP16 inputs/outputs equal numpy's
  float16 (round to nearest even) for every tested float and every half value.
"""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

TRT_10_9_0 = 100900  # getInferLibVersion() of TensorRT 10.9.0: major * 10000 + minor * 100 + patch
MANIFEST = {"tensorrt_version": "10.9.0.34", "gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"},
            "weights_sha256": "ab" * 32, "inputs": {"photo": [-1, 3, 256, 256]}}


def check(driver, tmp_path, manifest, version=TRT_10_9_0, cc=(9, 0)) -> subprocess.CompletedProcess:
    path = tmp_path / "engine.json"
    path.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return subprocess.run([str(driver), "manifest", str(path), str(version), str(cc[0]), str(cc[1])],
                          capture_output=True, text=True)


def test_matching_manifest_is_accepted(trt_host_checks, tmp_path):
    result = check(trt_host_checks, tmp_path, MANIFEST)
    assert (result.returncode, result.stdout.strip()) == (0, f"ok NVIDIA H100 80GB HBM3|{'ab' * 32}")


@pytest.mark.parametrize("capability", ["9.0", [9, 0], 9.0])
def test_capability_spellings(trt_host_checks, tmp_path, capability):
    top_level = {"tensorrt_version": "10.9.0", "compute_capability": capability}
    assert check(trt_host_checks, tmp_path, top_level).returncode == 0


@pytest.mark.parametrize("version, cc, message", [
    (101300, (9, 0), "engine built with TensorRT 10.9.0 but this program runs TensorRT 10.13.0; rebuild it"),
    (100901, (9, 0), "engine built with TensorRT 10.9.0 but this program runs TensorRT 10.9.1"),
    (TRT_10_9_0, (8, 9), "engine built for compute capability 9.0 (NVIDIA H100 80GB HBM3) but this GPU is 8.9"),
])
def test_mismatch_is_refused(trt_host_checks, tmp_path, version, cc, message):
    result = check(trt_host_checks, tmp_path, MANIFEST, version, cc)
    assert result.returncode == 2
    assert result.stdout.strip().startswith(f"engine.plan: {message}")
    assert len(result.stdout.strip().splitlines()) == 1


@pytest.mark.parametrize("manifest, message", [
    ("{not json", "not valid JSON"),
    ({"gpu": {"compute_capability": "9.0"}}, 'missing or unreadable "tensorrt_version"'),
    ({"tensorrt_version": "ten", "compute_capability": "9.0"}, 'missing or unreadable "tensorrt_version"'),
    ({"tensorrt_version": "10.9.0"}, 'missing or unreadable GPU "compute_capability"'),
    ({"tensorrt_version": "10.9.0", "gpu": {"compute_capability": "sm90"}}, 'unreadable GPU "compute_capability"'),
])
def test_bad_manifest_is_refused(trt_host_checks, tmp_path, manifest, message):
    result = check(trt_host_checks, tmp_path, manifest)
    assert result.returncode == 2
    assert result.stdout.strip() .startswith(str(tmp_path / "engine.json")) and message in result.stdout


def test_missing_manifest_is_refused(trt_host_checks, tmp_path):
    result = subprocess.run([str(trt_host_checks), "manifest", str(tmp_path / "none.json"), "100900", "9", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "engine manifest not found" in result.stdout


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
    np.testing.assert_array_equal(np.fromfile(out, dtype=np.uint16), values.astype(np.float16).view(np.uint16))
    expected = halves.astype(np.float32)
    got = np.fromfile(back, dtype=np.float32)
    nan = np.isnan(expected)
    assert np.isnan(got[nan]).all()
    np.testing.assert_array_equal(got[~nan].view(np.uint32), expected[~nan].view(np.uint32))
