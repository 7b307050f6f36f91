"""L5: build the engine with TensorRT, run it, compare with eager FP32 (docs/proof.md precision targets).

Runs wherever TensorRT >= 10.9 and a CUDA GPU are present, and skips
elsewhere saying which is missing. One command does the same by hand:

    python -m hida_rt.build --weights hida.pth -o engines/hida_fp16.plan --verify
"""
from __future__ import annotations


import numpy as np
import pytest
import torch
from testutils.cli import run_in_process

from hida_rt.backends import create_backend
from hida_rt.checkpoint import file_sha256, load_generator
from hida_rt.errors import InputError
from hida_rt.export import trt_parity
from hida_rt.export.manifest import manifest_path, read_manifest
from hida_rt.export.tensorrt_builder import environment, missing_for_build

pytestmark = pytest.mark.gpu
MISSING = missing_for_build()
if MISSING:
    pytest.skip(f"L5 builds a TensorRT engine, and here {MISSING}; on a machine with TensorRT >= 10.9 and a GPU run "
                f"python -m pytest tests/tensorrt/test_l5_engine.py", allow_module_level=True)

MAX_BATCH = 4


@pytest.fixture(scope="module")
def built(tmp_path_factory, spread_ckpt):
    plan = tmp_path_factory.mktemp("engine") / "hida_fp16.plan"
    r = run_in_process("hida_rt.build", ["--weights", spread_ckpt, "-o", plan, "--max-batch", MAX_BATCH, "--verify"])
    assert r.returncode == 0, r.stderr[-3000:]
    return plan


@pytest.fixture(scope="module")
def eager_gpu(spread_ckpt):
    return load_generator(spread_ckpt, "cuda")


def test_build_writes_engine_manifest_and_verified_figures(built):
    m = read_manifest(manifest_path(built))
    env = environment()
    assert m.status == "built" and m.engine_sha256 == file_sha256(built)
    assert (m.tensorrt_version, m.gpu_name, m.compute_capability) == (env.tensorrt_version, env.gpu_name,
                                                                     env.compute_capability)
    assert m.batch == {"min": 1, "opt": 1, "max": MAX_BATCH}
    assert {t["name"]: t["dtype"] for t in m.inputs} == {"photo": "float32", "depth": "float32", "style": "float32"}
    assert m.parity["engine"]["passed"] and m.parity["reference_evaluator"]["passed"], m.parity
    assert built.with_name("hida_fp16.timing.cache").stat().st_size > 0


@pytest.mark.parametrize("batch", [1, 3, MAX_BATCH + 2])  # the last runs in two chunks
def test_engine_matches_eager(built, eager_gpu, random_inputs, batch):
    backend = create_backend("tensorrt", None, engine=str(built))
    photo, depth, style = (t.cuda() for t in random_inputs(batch, 256, 256))
    with torch.no_grad():
        want = eager_gpu(photo, depth, style)
    got = backend.run(photo, depth, style)
    assert got.shape == want.shape and got.dtype == torch.float32 and got.device == photo.device
    figures = trt_parity.compare(got, want)
    assert trt_parity.meets(figures, "fp16"), figures


def test_cuda_graph_replays_the_same_engine(built, random_inputs):
    plain = create_backend("tensorrt", None, engine=str(built))
    graphed = create_backend("tensorrt", None, engine=str(built), cuda_graph=True)
    for seed in (1, 2):  # the second call replays the captured graph on fresh inputs
        photo, depth, style = (t.cuda() for t in random_inputs(2, 256, 256, seed=seed))
        torch.testing.assert_close(graphed.run(photo, depth, style), plain.run(photo, depth, style),
                                   atol=1e-3, rtol=0)


def test_numpy_in_numpy_out(built, random_inputs):
    backend = create_backend("tensorrt", None, engine=str(built))
    photo, depth, style = (t.numpy() for t in random_inputs(1, 256, 256))
    out = backend.run(photo, depth, style)
    assert isinstance(out, np.ndarray) and out.shape == (1, 1, 256, 256) and np.isfinite(out).all()


def test_other_sizes_are_refused(built, random_inputs):
    backend = create_backend("tensorrt", None, engine=str(built))
    with pytest.raises(InputError, match="built for 256x256"):
        backend.run(*random_inputs(1, 512, 512))
