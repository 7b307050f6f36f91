"""The sketch CLI end to end: real sample photos, files on disk.

One run is `python -m hida_rt.sketch` as a user types it; the others call the
same entry point in-process (testutils.cli), which is where argument and input
handling live.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from testutils.cli import assert_one_line_error, run_in_process, run_module

from hida_rt import images
from hida_rt.styles import parse_style


def run(*args, backend="eager"):
    """The CLI in-process; eager unless asked (these tests are about the CLI, not backends)."""
    extra = [] if "--help" in args else ["--backend", backend]
    return run_in_process("hida_rt.sketch", [*args, *extra])


def test_sketch_of_sample_photo_matches_in_process_eager(tmp_path, spread_ckpt, spread_model, sample_pair):
    photo_path, depth_path = sample_pair
    out = tmp_path / "out.png"
    r = run_module("hida_rt.sketch", photo_path, "--depth", depth_path, "--weights", spread_ckpt, "--style", "3",
                   "-o", out, "--backend", "eager")
    assert r.returncode == 0, r.stderr
    assert "wrote 1 sketch" in r.stdout
    got = np.asarray(Image.open(out))
    photo = Image.open(photo_path)
    assert got.shape == (photo.height, photo.width) and got.dtype == np.uint8
    with torch.no_grad():
        y = spread_model(images.photo_to_tensor(photo), images.depth_to_tensor(Image.open(depth_path)),
                         parse_style("3")[None])
    want = np.asarray(images.sketch_to_image(y[0], photo.size))
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert got.std() > 10  # a real picture, not a flat grey


def test_batch_of_photos_mix_style_and_resize_back(tmp_path, spread_ckpt, sample_pair):
    photo_path, depth_path = sample_pair
    big = tmp_path / "big.jpg"
    Image.open(photo_path).resize((300, 300)).save(big)
    outdir = tmp_path / "sketches"
    r = run(photo_path, big, samples_grace := photo_path.parent / "grace_hopper_photo.png",
            "--depth", depth_path, depth_path, photo_path.parent / "grace_hopper_depth.png",
            "--weights", spread_ckpt, "--style", "0.5,0,0.5", "--batch-size", "2", "-o", outdir)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in outdir.iterdir())
    assert names == ["astronaut_photo_sketch.png", "big_sketch.png", "grace_hopper_photo_sketch.png"]
    assert Image.open(outdir / "big_sketch.png").size == (300, 300)
    assert Image.open(outdir / "grace_hopper_photo_sketch.png").mode == "L"
    assert samples_grace.exists()


def test_lightning_checkpoint_works(tmp_path, lightning_ckpt, sample_pair):
    r = run(sample_pair[0], "--depth", sample_pair[1], "--weights", lightning_ckpt, "-o", tmp_path / "s.png", "-q")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and (tmp_path / "s.png").exists()


@pytest.mark.parametrize("case", ["missing_weights", "corrupt_weights", "bad_photo", "depth_count",
                                  "bad_size", "bad_style", "aspect"])
def test_bad_input_one_line_and_no_output(tmp_path, spread_ckpt, sample_pair, case):
    photo, depth = sample_pair
    out = tmp_path / "out"
    args = [photo, "--depth", depth, "--weights", spread_ckpt, "-o", out]
    expect = {
        "missing_weights": "no such file",
        "corrupt_weights": "not a PyTorch checkpoint",
        "bad_photo": "cannot read as an image",
        "depth_count": "give one --depth per photo",
        "bad_size": "not a positive multiple of 256",
        "bad_style": "style must be 1, 2 or 3",
        "aspect": "must show the same aligned face",
    }[case]
    if case == "missing_weights":
        args[4] = tmp_path / "none.ckpt"
    elif case == "corrupt_weights":
        (tmp_path / "c.ckpt").write_text("garbage")
        args[4] = tmp_path / "c.ckpt"
    elif case == "bad_photo":
        (tmp_path / "p.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        args[0] = tmp_path / "p.png"
    elif case == "depth_count":
        args = [photo, photo, "--depth", depth, "--weights", spread_ckpt, "-o", out]
    elif case == "bad_size":
        args += ["--size", "300"]
    elif case == "bad_style":
        args += ["--style", "7"]
    elif case == "aspect":
        Image.open(depth).resize((256, 128)).save(tmp_path / "wide.png")
        args[2] = tmp_path / "wide.png"
    r = run(*args)
    assert_one_line_error(r, expect, code=2, prog="hida_rt.sketch")
    assert not out.exists() or not any(out.iterdir())


def test_help_explains_usage():
    r = run("--help")
    assert r.returncode == 0
    for word in ("--weights", "--depth", "--style", "--backend", "sparse outlines"):
        assert word in r.stdout
