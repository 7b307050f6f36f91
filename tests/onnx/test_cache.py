"""The onnxruntime backend as users meet it: the sketch CLI, the ONNX cache in the user cache folder."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import onnx
import pytest
from PIL import Image
from testutils.cli import assert_one_line_error, run_in_process

from hida_rt.backends import create_backend
from hida_rt.checkpoint import file_sha256
from hida_rt.errors import InputError
from hida_rt.export import onnx_cache
from hida_rt.export.onnx_export import model_metadata


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.int16)


def test_sketch_cli_onnxruntime_equals_eager_on_a_fresh_cache(sketch_runs):
    assert "exporting" in sketch_runs.ort_stderr, "the first onnxruntime run should have exported the ONNX"
    eager, ort = pixels(sketch_runs.eager_png), pixels(sketch_runs.ort_png)
    assert eager.shape == ort.shape
    assert eager.std() > 20, "the spread weights should give a sketch with real contrast"
    assert np.abs(eager - ort).max() <= 1, "onnxruntime's PNG differs from eager's by more than 1 grey level"
    stamp = json.loads(sketch_runs.onnx.with_name(sketch_runs.onnx.name + ".json").read_text())
    assert stamp["sha256"] == file_sha256(sketch_runs.weights)


def test_cache_is_reused(sketch_runs, random_inputs, capsys):
    before = sketch_runs.onnx.stat().st_mtime_ns
    backend = create_backend("onnxruntime", sketch_runs.weights, device="cpu")
    out = backend.run(*random_inputs(1, 256, 256, seed=5))
    assert out.shape == (1, 1, 256, 256)
    assert "exporting" not in capsys.readouterr().err
    assert sketch_runs.onnx.stat().st_mtime_ns == before


def test_the_cache_lives_in_the_user_cache_folder_not_beside_the_weights(sketch_runs, user_cache):
    assert sketch_runs.onnx.parent == user_cache / "onnx" == onnx_cache.cache_folder()
    sha = file_sha256(sketch_runs.weights)
    assert sketch_runs.onnx.name == f"{sketch_runs.weights.stem}-{sha[:16]}.256x256.onnx"  # content and size
    assert sorted(p.name for p in sketch_runs.weights.parent.iterdir()) == sorted(
        [sketch_runs.weights.name, sketch_runs.eager_png.name, sketch_runs.ort_png.name])


def test_copied_or_touched_weights_reuse_the_export(sketch_runs, spread_ckpt, tmp_path):
    weights = tmp_path / sketch_runs.weights.name
    shutil.copy2(spread_ckpt, weights)  # same bytes elsewhere: the same entry
    assert onnx_cache.cache_path(weights, 256, 256) == sketch_runs.onnx
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert onnx_cache.cache_path(weights, 256, 256) == sketch_runs.onnx
    assert onnx_cache.is_fresh(sketch_runs.onnx, weights, 256, 256)
    assert not onnx_cache.is_fresh(sketch_runs.onnx, weights, 512, 256)  # other settings: another entry
    with open(weights, "r+b") as f:  # same size, one byte changed
        f.seek(st.st_size // 2)
        byte = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert onnx_cache.cache_path(weights, 256, 256) != sketch_runs.onnx
    assert not onnx_cache.is_fresh(sketch_runs.onnx, weights, 256, 256)


def test_changed_weights_get_their_own_export(sketch_runs, lightning_ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HIDA_RT_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / sketch_runs.weights.name
    weights.symlink_to(lightning_ckpt)
    old_inode = sketch_runs.onnx.stat().st_ino
    onnx_path = onnx_cache.cached_onnx(weights, 256, 256)
    assert "exporting" in capsys.readouterr().err
    sha = file_sha256(lightning_ckpt)
    assert onnx_path == tmp_path / "cache" / "onnx" / f"{weights.stem}-{sha[:16]}.256x256.onnx"
    assert sketch_runs.onnx.stat().st_ino == old_inode  # the session's entry is untouched
    assert model_metadata(onnx.load(str(onnx_path), load_external_data=False))["weights_sha256"] == sha
    assert json.loads(onnx_path.with_name(onnx_path.name + ".json").read_text())["sha256"] == sha
    assert onnx_cache.is_fresh(onnx_path, weights, 256, 256)
    assert [p.name for p in onnx_path.parent.iterdir() if p.name.startswith(".")] == []  # no temp files left
    assert onnx_cache.cached_onnx(weights, 256, 256) == onnx_path  # reused
    assert "exporting" not in capsys.readouterr().err


def test_bad_weights_fail_before_any_export_is_announced(tmp_path, sample_pair, monkeypatch):
    monkeypatch.setenv("HIDA_RT_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "text.png"
    bad.write_bytes(b"not a checkpoint at all")
    r = run_in_process("hida_rt.sketch", [sample_pair[0], "--depth", sample_pair[1], "--weights", bad,
                                          "--backend", "onnxruntime", "-o", tmp_path / "out.png"])
    assert_one_line_error(r, f"{bad}: not a PyTorch checkpoint", prog="hida_rt.sketch")
    assert "exporting" not in r.stderr and not (tmp_path / "cache").exists()


def test_an_unwritable_cache_folder_is_one_line(spread_ckpt, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("HIDA_RT_CACHE", str(blocker / "cache"))
    with pytest.raises(InputError, match="cannot create the ONNX cache folder .* set HIDA_RT_CACHE"):
        onnx_cache.cached_onnx(spread_ckpt, 256, 256, progress=False)


def test_given_onnx_must_fit_the_input_size(ort_backend, random_inputs):
    with pytest.raises(InputError, match=r"exported for 256x256 inputs, these are 512x256"):
        ort_backend.run(*random_inputs(1, 512, 256, seed=1))


def test_given_onnx_from_other_weights_is_refused(exported_onnx, lightning_ckpt):
    with pytest.raises(InputError, match="exported from other weights"):
        create_backend("onnxruntime", lightning_ckpt, device="cpu", onnx=str(exported_onnx))


def test_unavailable_reason(monkeypatch):
    import importlib.util

    import onnxruntime

    from hida_rt.backends import unavailable_reason
    assert unavailable_reason("onnxruntime", device="cpu") is None
    cuda_reason = unavailable_reason("onnxruntime", device="cuda")
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert cuda_reason is None
    else:
        assert "CUDAExecutionProvider" in cuda_reason and "onnxruntime-gpu" in cuda_reason
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))
    assert "onnxruntime is not installed" in unavailable_reason("onnxruntime")
