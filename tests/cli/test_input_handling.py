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


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_16bit_and_float_images_read_like_their_8bit_version(tmp_path, sample_pair, mode):
    """Photos and depth maps alike: the full range is scaled to 8 bits, not clipped to white."""
    grey = np.asarray(Image.open(sample_pair[0]).convert("L"))
    deep, floating = tmp_path / "photo16.png", tmp_path / "photo.tif"
    Image.fromarray(grey.astype(np.uint16) * 257).save(deep)
    Image.fromarray(grey.astype(np.float32) / 255, mode="F").save(floating)
    want = np.asarray(Image.fromarray(grey, mode="L").convert(mode))
    for path in (deep, floating):
        got = np.asarray(images.read_image(path, mode))
        assert np.abs(got.astype(int) - want).max() <= 1, path.name
        assert (got == 255).mean() < 0.2, f"{path.name}: most pixels clipped to white"
    # The service, batch jobs and the stream decode bytes through the same function.
    got = np.asarray(images.decode_image(deep.read_bytes(), mode, "photo", formats=("PNG",)))
    assert np.abs(got.astype(int) - want).max() <= 1


def test_float_images_outside_0_1_are_refused(tmp_path):
    path = tmp_path / "depth.tif"
    Image.fromarray(np.random.rand(8, 8).astype(np.float32) * 300, mode="F").save(path)
    with pytest.raises(InputError, match="floating-point image with values outside"):
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


def damaged_images(tmp_path, sample_pair) -> dict[str, tuple[bytes, str]]:
    """Files that cannot be read, each with the reason every tool must give for it."""
    png = sample_pair[0].read_bytes()
    return {"truncated.png": (png[:len(png) // 2], "image file is truncated"),
            "corrupt.png": (png[:8] + np.random.default_rng(0).bytes(300), "broken PNG file"),
            "text.png": (b"hello, not an image" * 4, "not an image format Pillow reads")}


def test_unreadable_images_get_one_wording_in_every_tool(tmp_path, sample_pair, spread_ckpt):
    for name, (data, reason) in damaged_images(tmp_path, sample_pair).items():
        path = tmp_path / name
        path.write_bytes(data)
        expected = f"{path}: cannot read as an image ({reason})"
        r = sketch_cli(path, "--depth", sample_pair[1], "--weights", spread_ckpt, "-o", tmp_path / "out.png")
        assert_one_line_error(r, expected, prog="hida_rt.sketch")
        with pytest.raises(InputError) as e:  # the service and batch jobs decode bytes
            images.decode_image(data, "RGB", str(path), formats=("PNG", "JPEG"))
        assert str(e.value) == expected
    assert not (tmp_path / "out.png").exists()


def test_a_mismatched_depth_map_is_named_once(sample_pair):
    photo = Image.open(sample_pair[0])
    with pytest.raises(InputError) as e:
        images.pair_to_tensors(photo, Image.new("L", (512, 256)), (256, 256), "photo", "depth")
    assert str(e.value).startswith(f"depth: depth map is 512x256 but photo is {photo.width}x{photo.height};")


def test_a_size_over_the_machines_memory_is_refused_naming_the_limit(tmp_path, sample_pair, spread_ckpt):
    from hida_rt import memory

    out = tmp_path / "out.png"
    for size in (8192, 262144):
        r = sketch_cli(sample_pair[0], "--depth", sample_pair[1], "--weights", spread_ckpt, "--size", size, "-o", out)
        line = assert_one_line_error(r, f"--size: {size}x{size} needs about", "GiB available; the largest that fits is",
                                     prog="hida_rt.sketch")
        side = int(line.split("the largest that fits is ")[1].split("x")[0])
        assert side % 256 == 0 and side < size
    r = sketch_cli(sample_pair[0], "--whole-frame", "--net-height", 16384, "--weights", spread_ckpt, "-o", out)
    assert_one_line_error(r, f"{sample_pair[0]} at --whole-frame: 16384x", "the largest that fits is",
                          prog="hida_rt.sketch")
    assert not out.exists()
    with pytest.raises(InputError, match=r"--size: 512x512 with a batch of 4 needs about 1\.5 GiB.*1\.0 GiB available; "
                                         r"the largest that fits is 256x256"):
        memory.check_fits(512, 512, 4, available=1 << 30)


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:119] data. "
                                                               "DefaultCPUAllocator: can't allocate memory: you tried "
                                                               "to allocate 274877906944 bytes. Error code 12"),
                                   torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")])
def test_an_allocation_failure_anywhere_is_one_line(error):
    def main(argv):
        raise error
    r = run_in_process(main, [], prog="hida-rt sketch")
    assert_one_line_error(r, "out of", "memory; use a smaller --size or --batch-size", prog="hida-rt sketch")


def test_a_bug_keeps_its_traceback():
    def main(argv):
        raise RuntimeError("a bug")
    with pytest.raises(RuntimeError, match="a bug"):
        run_in_process(main, [])


def test_running_out_of_memory_in_the_network_is_one_line_and_no_file(tmp_path, sample_pair, spread_ckpt):
    """A real allocation failure: the process may address 3 GiB, a 2048x2048 forward pass needs more."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    out = tmp_path / "out.png"
    r = subprocess.run([sys.executable, "-m", "hida_rt.sketch", sample_pair[0], "--depth", sample_pair[1],
                        "--weights", spread_ckpt, "-b", "eager", "--size", "2048", "-o", out],
                       capture_output=True, text=True, preexec_fn=limit, timeout=300)
    assert_one_line_error(r, "out of memory; use a smaller --size or --batch-size", prog="hida_rt.sketch")
    assert not out.exists()


def test_a_gpus_free_memory_bounds_the_size_when_larger(tmp_path, monkeypatch):
    """Without a CUDA context in this process, the GPUs' free memory comes from nvidia-smi (here a stand-in
    printing what the real one prints for two GPUs), so the argument checks create none."""
    import os

    from hida_rt import memory

    if torch.cuda.is_initialized():
        pytest.skip("this process holds a CUDA context, so the GPU itself is asked, not nvidia-smi")
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf '1024\\n143000\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert memory.gpu_free_bytes() == 143000 << 20
    assert memory.available_bytes() >= 143000 << 20
    memory.check_fits(4096, 4096, 4)  # 96 GiB: fits in that GPU's memory
    with pytest.raises(InputError, match="the largest that fits is"):
        memory.check_fits(8192, 8192, 4)
