"""The onnxruntime backend as users meet it: the sketch CLI, the ONNX cache beside the weights."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import onnx
import pytest
from PIL import Image

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


def copy_cache(sketch_runs, folder, weights_source):
    """A cache folder holding the session's export and stamp, next to weights taken from `weights_source`."""
    folder.mkdir()
    os.link(sketch_runs.onnx, folder / sketch_runs.onnx.name)  # same bytes, no 300 MB copy
    stamp = sketch_runs.onnx.name + onnx_cache.STAMP_SUFFIX
    shutil.copy(sketch_runs.onnx.with_name(stamp), folder / stamp)
    weights = folder / sketch_runs.weights.name
    weights_source(weights)
    return weights, folder / sketch_runs.onnx.name


def test_touched_weights_cost_a_hash_not_an_export(sketch_runs, spread_ckpt, tmp_path):
    weights, onnx_path = copy_cache(sketch_runs, tmp_path / "c", lambda w: shutil.copy2(spread_ckpt, w))
    assert onnx_cache.is_fresh(onnx_path, weights, 256, 256)
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert onnx_cache.is_fresh(onnx_path, weights, 256, 256)  # same bytes: re-hashed, re-stamped
    stamp = json.loads(onnx_path.with_name(onnx_path.name + ".json").read_text())
    assert stamp["mtime_ns"] == st.st_mtime_ns + 10**9
    assert not onnx_cache.is_fresh(onnx_path, weights, 512, 256)  # other settings: another cache entry
    with open(weights, "r+b") as f:  # same size, one byte changed
        f.seek(st.st_size // 2)
        byte = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert not onnx_cache.is_fresh(onnx_path, weights, 256, 256)


def test_changed_weights_rebuild_the_cache(sketch_runs, lightning_ckpt, tmp_path, capsys):
    weights, onnx_path = copy_cache(sketch_runs, tmp_path / "c", lambda w: w.symlink_to(lightning_ckpt))
    old_inode = onnx_path.stat().st_ino
    assert onnx_cache.cached_onnx(weights, 256, 256) == onnx_path
    assert "exporting" in capsys.readouterr().err
    assert onnx_path.stat().st_ino != old_inode  # replaced (atomically), not edited in place
    assert sketch_runs.onnx.stat().st_ino == old_inode  # the session's cache is untouched
    sha = file_sha256(lightning_ckpt)
    assert model_metadata(onnx.load(str(onnx_path), load_external_data=False))["weights_sha256"] == sha
    assert json.loads(onnx_path.with_name(onnx_path.name + ".json").read_text())["sha256"] == sha
    assert onnx_cache.is_fresh(onnx_path, weights, 256, 256)
    assert [p.name for p in onnx_path.parent.iterdir() if p.name.startswith(".")] == []  # no temp files left


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
