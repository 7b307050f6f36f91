"""Fixtures of the batch tests: one photo set, the sketch CLI's outputs for it, one clean batch run.

The set: 12 photo/depth pairs from the samples (testutils.photo_set), plus
- photos/broken.png: not an image (its depth map is fine): a failure line;
- photos/lonely.jpg: a good photo with no depth map of its stem: a failure line;
- photos/notes.txt and photos/.hidden.png: not listed at all.
Runs use the eager backend (no ONNX export) on the spread checkpoint.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from testutils.cli import run_in_process
from testutils.photo_set import PhotoSet, make_photo_set

from hida_rt.cli import run_cli

COUNT = 12
BAD = {"broken.png": "cannot read as an image", "lonely.jpg": "no depth map named lonely.*"}


def grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


def sketch_names(root: Path) -> set[str]:
    """Every file under root, relative, hidden ones included (a left-over temp must show)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def run_batch(argv: list[str]) -> tuple[int, str, str]:
    return run_in_process("hida_rt.batch.__main__", argv)


@dataclass(frozen=True)
class BatchData:
    set: PhotoSet
    weights: Path
    expected: set[str]            # relative output paths of the good photos

    def argv(self, output: Path, *extra: str, source: str | None = None) -> list[str]:
        return [source or str(self.set.photos), str(output), "--weights", str(self.weights),
                "--depth", str(self.set.depth), "--backend", "eager", *extra]


@pytest.fixture(scope="session")
def batch_data(tmp_path_factory, spread_ckpt) -> BatchData:
    root = tmp_path_factory.mktemp("batch_set")
    photo_set = make_photo_set(root, COUNT)
    (photo_set.photos / "broken.png").write_bytes(b"this is not a PNG file")
    Image.open(photo_set.depth / "astronaut_00.png").save(photo_set.depth / "broken.png")
    Image.open(photo_set.pairs[0][0]).save(photo_set.photos / "lonely.jpg")
    (photo_set.photos / "notes.txt").write_text("not an image")
    Image.open(photo_set.pairs[0][0]).save(photo_set.photos / ".hidden.png")
    expected = {photo_set.rel(p).with_name(p.stem + "_sketch.png").as_posix() for p, _ in photo_set.pairs}
    return BatchData(photo_set, spread_ckpt, expected)


@pytest.fixture(scope="session")
def cli_reference(batch_data, tmp_path_factory) -> dict[str, Path]:
    """relative output path -> the sketch CLI's output for that photo (same weights, backend, style)."""
    from hida_rt.sketch import main as sketch_main
    out = tmp_path_factory.mktemp("cli_reference")
    pairs = batch_data.set.pairs
    argv = [*(str(p) for p, _ in pairs), "--depth", *(str(d) for _, d in pairs), "--weights",
            str(batch_data.weights), "--backend", "eager", "-o", str(out), "-q"]
    assert run_cli(sketch_main, argv) == 0
    return {batch_data.set.rel(p).with_name(p.stem + "_sketch.png").as_posix(): out / f"{p.stem}_sketch.png"
            for p, _ in pairs}


@dataclass(frozen=True)
class CleanRun:
    output: Path
    code: int
    summary: dict
    stderr: str


@pytest.fixture(scope="session")
def clean_run(batch_data, tmp_path_factory) -> CleanRun:
    """One uninterrupted in-process batch run over the whole set (the reference of the resume tests)."""
    out = tmp_path_factory.mktemp("clean_run") / "sketches"
    code, stdout, stderr = run_batch(batch_data.argv(out, "--json", "-q"))
    return CleanRun(out, code, json.loads(stdout), stderr)


@pytest.fixture
def batch_tools():
    """The helpers above, for test modules (a conftest is not importable under importlib mode)."""
    return type("BatchTools", (), {"grey": staticmethod(grey), "names": staticmethod(sketch_names),
                                   "run": staticmethod(run_batch), "bad": BAD})
