"""Shared fixtures: random checkpoints and the portable ONNX export (each made once per session), sample inputs.

Two checkpoints: `lightning_ckpt` is the authors' layout and init (gain 0.02,
whose sketches are nearly flat grey), `spread_ckpt` a plain state dict with
gain 1.0 whose sketches span [-1, 1], so parity tests compare real signal.

One ONNX export per session, made the way a user first meets it:
`sketch_runs` runs the sketch CLI on the astronaut sample twice in-process,
eager and onnxruntime, the latter on an empty cache, which exports the spread
checkpoint into the ONNX cache (export/onnx_cache.py). The user cache folder
(`HIDA_RT_CACHE`) is a fresh temporary one for the whole session: tests never
read or write the real one. The ONNX tests (tests/onnx), the
graph passes (tests/tensorrt: `portable_model`) and the build CLI test reuse
that export; only test_cache's rebuild on changed weights exports again.

Also here, for every folder: Triton's interpreter switch, and the skip of
tests marked `gpu` on machines without CUDA (testutils.gpu).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from testutils import early_jobs, gpu, inputs

# Triton kernels run in Triton's interpreter on CPU-only machines. The switch is read when triton is first
# imported, so it is set here, before any test module (whichever folder runs first) imports hida_rt.kernels.
# The ahead-of-time PTX builds need it off: hida_rt.kernels._aot.build_isolated runs them in a child process
# without it.
if not gpu.ON_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from hida_rt.random_weights import random_generator_state, random_lightning_checkpoint  # noqa: E402
from testutils.cli import run_in_process  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SPREAD_NAME = "hida_spread.pth"


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip on a machine without CUDA, with their mark's reason (testutils.gpu)."""
    if gpu.ON_GPU:
        return
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(pytest.mark.skip(reason=gpu.skip_reason(item)))


def pytest_collection_finish(session):
    """Start the slow preparations of late tests now, beside the first tests (testutils.early_jobs)."""
    if not session.config.option.collectonly:
        early_jobs.start(session.items, SPREAD_NAME, write_spread)


def pytest_sessionfinish(session):
    early_jobs.stop()


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory) -> Path:
    """HIDA_RT_CACHE for the session: an empty folder. Set when the session starts, after collection, so
    testutils.tritons has already found the prepared Triton 3.6 venv in the machine's real cache."""
    from hida_rt.cache_dir import ENV

    folder = tmp_path_factory.mktemp("user_cache")
    before = os.environ.get(ENV)
    os.environ[ENV] = str(folder)
    yield folder
    if before is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = before


@pytest.fixture(scope="session")
def lightning_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "hida_random.ckpt"
    torch.save(random_lightning_checkpoint(seed=0), path)
    return path


@pytest.fixture(scope="session")
def spread_ckpt(tmp_path_factory) -> Path:
    early = early_jobs.spread_checkpoint()  # written at collection when an early job needed it
    if early is not None:
        return early
    path = tmp_path_factory.mktemp("weights") / SPREAD_NAME
    write_spread(path)
    return path


def write_spread(path: Path) -> None:
    torch.save(random_generator_state(seed=1, gain=1.0), path)


@pytest.fixture(scope="session")
def spread_model(spread_ckpt):
    from hida_rt.checkpoint import load_generator
    return load_generator(spread_ckpt)


@pytest.fixture
def random_inputs():
    """random_inputs(n=1, h=256, w=256, seed=None): photo, depth, style (testutils.inputs; fresh seed if None)."""
    return inputs.random_inputs


@pytest.fixture(scope="session")
def sample_pair():
    """The astronaut sample: (photo path, depth path)."""
    return SAMPLES / "astronaut_photo.png", SAMPLES / "astronaut_depth.png"


@dataclass(frozen=True)
class SketchRuns:
    weights: Path        # a link to the spread checkpoint, alone in its folder
    onnx: Path           # the cache the onnxruntime run exported
    eager_png: Path
    ort_png: Path
    ort_stderr: str


@pytest.fixture(scope="session")
def sketch_runs(tmp_path_factory, spread_ckpt, sample_pair) -> SketchRuns:
    folder = tmp_path_factory.mktemp("ort_cache")
    weights = folder / SPREAD_NAME
    weights.symlink_to(spread_ckpt)
    photo, depth = sample_pair
    common = [photo, "--depth", depth, "--weights", weights, "--style", "3"]
    outputs = {}
    for backend in ("eager", "onnxruntime"):
        out = folder / f"sketch_{backend}.png"
        r = run_in_process("hida_rt.sketch", common + ["--backend", backend, "-o", out])
        assert r.returncode == 0, f"sketch --backend {backend} failed: {r.stderr}"
        outputs[backend] = (out, r.stderr)
    from hida_rt.export.onnx_cache import cache_path

    return SketchRuns(weights=weights, onnx=cache_path(weights, 256, 256),
                      eager_png=outputs["eager"][0], ort_png=outputs["onnxruntime"][0],
                      ort_stderr=outputs["onnxruntime"][1])


@pytest.fixture(scope="session")
def exported_onnx(sketch_runs) -> Path:
    """The session's portable ONNX of the spread checkpoint at 256x256 (a file)."""
    assert sketch_runs.onnx.is_file(), f"the onnxruntime run left no cache at {sketch_runs.onnx}"
    return sketch_runs.onnx


@pytest.fixture(scope="session")
def exported_model(exported_onnx):
    """The same export as an onnx.ModelProto (read-only: copy it before changing it)."""
    import onnx
    return onnx.load(str(exported_onnx))
