"""Inputs users really have: 16-bit depth maps, rotated phone photos, odd option orders, bad paths."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from testutils.cli import assert_one_line_error, run_in_process
from testutils.gpu import ON_GPU

from hida_rt import images
from hida_rt.backends import create_backend
from hida_rt.errors import BackendUnavailable, InputError


def sketch_cli(*args):
    return run_in_process("hida_rt.sketch", args)


def test_16bit_depth_reads_like_its_8bit_version(tmp_path, sample_pair):
    grey = np.asarray(Image.open(sample_pair[1]).convert("L"))
    deep = tmp_path / "depth16.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(deep)  # the full 16-bit range
    assert Image.open(deep).mode.startswith("I")
    np.testing.assert_array_equal(np.asarray(images.read_image(deep, "L")), grey)


def test_float_depth_is_refused(tmp_path):
    path = tmp_path / "depth.tif"
    Image.fromarray(np.random.rand(8, 8).astype(np.float32), mode="F").save(path)
    with pytest.raises(InputError, match="floating-point"):
        images.read_image(path, "L")


def test_exif_rotation_is_applied(tmp_path, sample_pair):
    upright = Image.open(sample_pair[0]).convert("RGB").resize((256, 128))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a phone stores, sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif, quality=100)
    got = images.read_image(path, "RGB")
    assert got.size == (256, 128)
    assert np.abs(np.asarray(got, dtype=int) - np.asarray(upright, dtype=int)).mean() < 8


def test_directory_and_empty_images(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="is a directory"):
        images.read_image(tmp_path, "RGB")
    with pytest.raises(InputError, match="empty"):
        images.read_image(tmp_path / "empty.png", "RGB")


@pytest.mark.parametrize("device", ["foo", "cuda:x", "meta"])
def test_bad_device_is_one_line(spread_ckpt, device):
    with pytest.raises(BackendUnavailable, match="cpu, cuda or cuda:N"):
        create_backend("eager", spread_ckpt, device=device)


@pytest.mark.parametrize("backend", ["auto", "triton", "onnxruntime", "eager"])
def test_bad_device_on_a_gpu_machine_is_one_line(monkeypatch, spread_ckpt, sample_pair, tmp_path, backend):
    # As on a GPU machine, where auto considers triton first: its device check must not raise torch's error.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    out = tmp_path / "out.png"
    r = sketch_cli(sample_pair[0], "--depth", sample_pair[1], "--weights", spread_ckpt, "-b", backend,
                   "--device", "cuda:x", "-o", out, "-q")
    assert_one_line_error(r, "--device 'cuda:x' is not a device; use cpu, cuda or cuda:N", prog="hida_rt.sketch")
    assert r.stdout == ""
    assert not out.exists()


@pytest.mark.skipif(ON_GPU, reason="checks the message on a machine without CUDA")
def test_auto_with_an_engine_says_why_tensorrt_cannot_run(spread_ckpt, tmp_path):
    with pytest.raises(BackendUnavailable, match="--engine .* was given, but the tensorrt backend cannot run"):
        create_backend("auto", spread_ckpt, engine=str(tmp_path / "x.plan"))


def test_unwritable_output_fails_before_inference_in_one_line(spread_ckpt, sample_pair):
    r = sketch_cli(sample_pair[0], "--depth", sample_pair[1], "--weights", spread_ckpt, "-b", "eager",
                   "-o", "/proc/hida_rt_test/x.png")
    assert_one_line_error(r, "cannot write there", prog="hida_rt.sketch")


def test_style_before_photo_and_unknown_extension(tmp_path, spread_ckpt, sample_pair):
    out = tmp_path / "s.png"
    r = sketch_cli("--style", "3", sample_pair[0], "--depth", sample_pair[1], "--weights", spread_ckpt,
                   "-b", "eager", "-o", out)
    assert r.returncode == 0, r.stderr
    assert out.exists()
    r = sketch_cli(sample_pair[0], "--depth", sample_pair[1], "--weights", spread_ckpt, "-o", tmp_path / "x.txt")
    assert_one_line_error(r, "unknown image extension", prog="hida_rt.sketch")
    assert not (tmp_path / "x.txt").exists()
