"""The C++ library (engines/cpp) with its AOTInductor backend, built and run on CPU.

Packages the spread checkpoint with `python -m hida_rt.export --format pt2`
(fixed batch 1; the suite's one run of the real packaging, so the CLI path is
the one proven), builds hida::core, hida::aoti and the hida_sketch example
with CMake against the installed torch wheel's LibTorch, runs the example on two faces in
one batch and compares with the eager model in Python:

- the network input C++ computes (stb decoding, Pillow-exact bilinear resize,
  Pillow's RGB -> grey weights, float mapping, the depth map's 5x5 Gaussian
  blur) equals hida_rt.images' exactly;
- the raw sketch is within 1e-4 of eager (the FP32 target of docs/proof.md);
- the PNGs, resized back to each photo's size, are within 1 grey level.

The package and the build (conftest.py) are made once per session, both in
the background from the session's start when these tests were collected
(testutils.early_jobs).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from testutils import early_jobs
from testutils.cli import run_in_process

from hida_rt import images, styles

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
# docs/proof.md: FP32 paths within 1e-4 of eager on the sketch.
RAW_TOLERANCE = 1e-4
STYLE = "0.2,0.3,0.5"

pytestmark = pytest.mark.slow


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="session")
def aoti_package(spread_ckpt, tmp_path_factory) -> Path:
    job = early_jobs.get("aoti")
    if job is not None:  # started with the session, on the spread checkpoint itself (testutils.early_jobs)
        assert job.outputs["weights"] == spread_ckpt
        out = job.outputs["package"]
        code, stdout, stderr = job.wait(900)
    else:
        out = tmp_path_factory.mktemp("aoti") / "hida_spread_b1.pt2"
        result = run([sys.executable, "-m", "hida_rt.export", "--format", "pt2", "--weights", spread_ckpt, "-o", out,
                      "--quiet"])
        code, stdout, stderr = result.returncode, result.stdout, result.stderr
    assert code == 0, f"packaging failed: {stderr[-2000:]}"
    assert stdout.startswith(f"wrote {out}") and "batch 1" in stdout
    return out


@pytest.fixture(scope="session")
def two_faces(tmp_path_factory) -> list[tuple[Path, Path]]:
    """The astronaut as shipped (256 x 256, grey depth) and Grace Hopper at 300 x 300 with an
    RGB depth map: the second exercises the resize and the RGB -> grey conversion."""
    folder = tmp_path_factory.mktemp("faces")
    photo, depth = folder / "hopper_300.png", folder / "hopper_300_depth_rgb.png"
    Image.open(SAMPLES / "grace_hopper_photo.png").resize((300, 300), Image.LANCZOS).save(photo)
    Image.open(SAMPLES / "grace_hopper_depth.png").convert("RGB").resize((300, 300), Image.LANCZOS).save(depth)
    return [(SAMPLES / "astronaut_photo.png", SAMPLES / "astronaut_depth.png"), (photo, depth)]


def test_cpp_example_matches_eager(cpp_build, aoti_package, cpp_example, two_faces, spread_model, tmp_path):
    # Fixture order matters: the C++ build runs in the background while the package compiles.
    outputs = [tmp_path / "astronaut_sketch.png", tmp_path / "hopper_sketch.png"]
    raw, dumped = tmp_path / "sketch.f32", tmp_path / "input.f32"
    cmd = [cpp_example, "--model", aoti_package, "--style", STYLE, "--raw", raw, "--dump-input", dumped]
    for (photo, depth), out in zip(two_faces, outputs):
        cmd += [photo, depth, out]
    result = run(cmd, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "aoti-cpu, 2 image(s) at 256x256" in result.stdout and " ms" in result.stdout

    photos = [images.read_image(p, "RGB") for p, _ in two_faces]
    photo = torch.cat([images.photo_to_tensor(im) for im in photos]).contiguous()
    depth = torch.cat([images.depth_to_tensor(images.read_image(d, "L")) for _, d in two_faces]).contiguous()
    style = styles.parse_style(STYLE).expand(2, 3).contiguous()

    n, plane = 2, 256 * 256
    cpp_input = np.fromfile(dumped, dtype=np.float32)
    assert cpp_input.size == n * 4 * plane
    np.testing.assert_array_equal(cpp_input[:n * 3 * plane].reshape(n, 3, 256, 256), photo.numpy())
    np.testing.assert_array_equal(cpp_input[n * 3 * plane:].reshape(n, 1, 256, 256), depth.numpy())

    with torch.no_grad():
        reference = spread_model(photo, depth, style)
    sketch = np.fromfile(raw, dtype=np.float32).reshape(n, 1, 256, 256)
    diff = float(np.abs(sketch - reference.numpy()).max())
    assert diff <= RAW_TOLERANCE, f"C++ sketch differs from eager by {diff:.2e}"
    assert float(reference.max() - reference.min()) > 1.0  # real signal, not a flat image

    for im, out, ref in zip(photos, outputs, reference):
        written = np.asarray(Image.open(out), dtype=np.int16)
        expected = np.asarray(images.sketch_to_image(ref, im.size), dtype=np.int16)
        assert written.shape == expected.shape == (im.height, im.width)
        assert int(np.abs(written - expected).max()) <= 1


@pytest.mark.parametrize("args, message", [
    (["--style", "4"], "--style takes 1, 2 or 3"),
    (["--model", "missing.pt2"], "missing.pt2: no such file"),
    (["--model", "model.onnx"], "unknown model type"),
    (["--photo-missing"], "unknown option --photo-missing"),
])
def test_cpp_example_errors_are_one_line(cpp_example, two_faces, tmp_path, args, message):
    (photo, depth), out = two_faces[0], tmp_path / "out.png"
    cmd = [cpp_example, "--model", "missing.pt2", *args, photo, depth, out]
    result = run(cmd, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith("hida_sketch: error: ") and message in first
    assert not out.exists()


def test_cpp_example_unreadable_image(cpp_example, aoti_package, tmp_path):
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"not a png")
    result = run([cpp_example, "--model", aoti_package, bad, bad, tmp_path / "out.png"], timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"hida_sketch: error: {bad}: cannot read as an image (")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["-o", "model.onnx"], "names a .onnx file but --format is pt2"),
    (["-o", "m.pt2", "--height", "300"], "--height 300 is not a positive multiple of 256"),
    (["-o", "m.pt2", "--max-batch", "1"], "--max-batch must be at least 2"),
])
def test_packaging_cli_errors(spread_ckpt, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)  # relative -o names land here
    result = run_in_process("hida_rt.export.__main__", ["--format", "pt2", "--weights", spread_ckpt, *args],
                            prog="hida_rt.export")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hida_rt.export: error: ") and message in lines[0]
    assert not list(tmp_path.iterdir())
