"""One ONNX export per session, made the way a user first meets it.

`sketch_runs` runs the sketch CLI on the astronaut sample twice in-process,
eager and onnxruntime, the latter on an empty cache: it exports the spread
checkpoint to `<weights>.256x256.onnx`. Every other L1 test reuses that file,
so the suite pays for a single export (plus one rebuild in test_cache).
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import onnx
import pytest

from hida_rt.cli import run_cli
from hida_rt.sketch import main as sketch_main

WEIGHTS_NAME = "hida_spread.pth"


@dataclass(frozen=True)
class SketchRuns:
    weights: Path        # a link to the spread checkpoint, alone in its folder
    onnx: Path           # the cache the onnxruntime run exported
    eager_png: Path
    ort_png: Path
    ort_stderr: str


def run_cli_captured(main, argv: list[str]) -> tuple[int, str, str]:
    """Run a CLI entry point in-process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli(main, argv, prog="test")
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def run_captured():
    """run_cli_captured, for test modules (conftest itself is not importable under importlib mode)."""
    return run_cli_captured


@pytest.fixture(scope="session")
def sketch_runs(tmp_path_factory, spread_ckpt, sample_pair) -> SketchRuns:
    folder = tmp_path_factory.mktemp("ort_cache")
    weights = folder / WEIGHTS_NAME
    weights.symlink_to(spread_ckpt)
    photo, depth = sample_pair
    common = [str(photo), "--depth", str(depth), "--weights", str(weights), "--style", "3"]
    outputs = {}
    for backend in ("eager", "onnxruntime"):
        out = folder / f"sketch_{backend}.png"
        code, _, err = run_cli_captured(sketch_main, common + ["--backend", backend, "-o", str(out)])
        assert code == 0, f"sketch --backend {backend} failed: {err}"
        outputs[backend] = (out, err)
    return SketchRuns(weights=weights, onnx=folder / f"{WEIGHTS_NAME}.256x256.onnx",
                      eager_png=outputs["eager"][0], ort_png=outputs["onnxruntime"][0],
                      ort_stderr=outputs["onnxruntime"][1])


@pytest.fixture(scope="session")
def exported_onnx(sketch_runs) -> Path:
    assert sketch_runs.onnx.is_file(), f"the onnxruntime run left no cache at {sketch_runs.onnx}"
    return sketch_runs.onnx


@pytest.fixture(scope="session")
def exported_model(exported_onnx) -> onnx.ModelProto:
    return onnx.load(str(exported_onnx))


@pytest.fixture(scope="session")
def ort_backend(spread_ckpt, exported_onnx):
    from hida_rt.backends import create_backend
    return create_backend("onnxruntime", spread_ckpt, device="cpu", onnx=str(exported_onnx))
