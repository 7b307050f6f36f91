"""The "triton" backend and its fused graph (kernels/triton_backend.py, kernels/fused_model.py).

On CPU: the fused graph's torch path in FP32 equals eager FP32 (proves the
merged conv and the folded MetaACON switches), the same graph with the
Triton kernels run by the interpreter equals eager FP32, and the backend
says why it cannot run. On a GPU: the backend (FP16, CUDA graphs) against
eager FP32 on the sample faces and random inputs.
"""
from __future__ import annotations

import pytest
import torch
from testutils.gpu import ON_GPU

from hida_rt.backends import create_backend, unavailable_reason
from hida_rt.errors import BackendUnavailable
from hida_rt.kernels.fused_model import FusedHIDA

needs_gpu = pytest.mark.gpu(reason="the triton backend needs a CUDA GPU")  # skipped by tests/conftest.py
FP32_MAX_ABS = 1e-4  # docs/proof.md: FP32 paths, max |d| on the sketch
FP16_MEAN_ABS, FP16_MIN_PSNR = 5e-3, 40.0  # FP16 paths, on the sketch mapped to [0, 1]


def sketch_errors(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float, float]:
    """(max |d|, mean |d|, PSNR dB) of two sketches after mapping [-1, 1] to [0, 1]."""
    d = (out.float().cpu() - ref.float().cpu()) / 2
    mse = float((d ** 2).mean())
    psnr = float("inf") if mse == 0 else -10 * torch.log10(torch.tensor(mse)).item()
    return float(d.abs().max()) * 2, float(d.abs().mean()), psnr


def test_fused_torch_path_fp32_equals_eager(spread_model, random_inputs):
    photo, depth, style = random_inputs(1, 256, 256)
    with torch.no_grad():
        want = spread_model(photo, depth, style)
    got = FusedHIDA(spread_model, torch.float32, use_kernels=False)(photo, depth, style)
    max_abs = (got - want).abs().max().item()
    assert max_abs <= FP32_MAX_ABS, f"fused graph (torch ops) vs eager: max |d| {max_abs:.2e}"


@pytest.mark.skipif(ON_GPU, reason="the GPU tests below cover the kernels on the device")
def test_fused_kernels_interpreted_fp32_equal_eager(spread_model, random_inputs):
    """The whole fused graph with every Triton kernel in the CPU interpreter (8-30 s at 256x256 on 2 cores)."""
    from hida_rt.kernels import ida
    if type(ida.ida_row_kernel).__name__ != "InterpretedFunction":
        pytest.skip("hida_rt.kernels was imported before TRITON_INTERPRET=1 could be set (tests/conftest.py sets it)")
    photo, depth, style = random_inputs(1, 256, 256)
    with torch.no_grad():
        want = spread_model(photo, depth, style)
    got = FusedHIDA(spread_model, torch.float32, use_kernels=True)(photo, depth, style)
    assert torch.isfinite(got).all()
    max_abs = (got - want).abs().max().item()
    assert max_abs <= FP32_MAX_ABS, f"fused graph (interpreted kernels) vs eager: max |d| {max_abs:.2e}"


@pytest.mark.skipif(ON_GPU, reason="checks the message on a machine without CUDA")
def test_unavailable_without_gpu_says_why(spread_ckpt):
    reason = unavailable_reason("triton", weights=spread_ckpt)
    assert reason and "no CUDA GPU" in reason
    with pytest.raises(BackendUnavailable, match="no CUDA GPU"):
        create_backend("triton", spread_ckpt)


# ---------------------------------------------------------------- GPU

def sample_batch():
    """The sample faces (photo, depth) with the three pure styles: N = 2 faces x 3 styles."""
    from pathlib import Path

    from hida_rt.images import depth_to_tensor, photo_to_tensor, read_image
    from hida_rt.styles import one_hot
    root = Path(__file__).resolve().parents[2] / "samples"
    photos, depths, styles = [], [], []
    for face in ("astronaut", "grace_hopper"):
        for s in (1, 2, 3):
            photos.append(photo_to_tensor(read_image(root / f"{face}_photo.png", "RGB")))
            depths.append(depth_to_tensor(read_image(root / f"{face}_depth.png", "L")))
            styles.append(one_hot(s)[None])
    return torch.cat(photos), torch.cat(depths), torch.cat(styles)


def eager_fp32_on_gpu(ckpt, photo, depth, style):
    """The reference: eager FP32 with cuDNN in full FP32 (PyTorch's default allows TF32)."""
    from hida_rt.kernels.triton_backend import ieee_fp32_convs
    from hida_rt.checkpoint import load_generator
    model = load_generator(ckpt, "cuda")
    with torch.no_grad(), ieee_fp32_convs(True):
        return model(photo.cuda(), depth.cuda(), style.cuda()).cpu()


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("ckpt_name", ["spread_ckpt", "lightning_ckpt"])
@pytest.mark.parametrize("inputs", ["samples", "random"])
def test_triton_fp16_matches_eager_fp32(request, ckpt_name, inputs, random_inputs):
    ckpt = request.getfixturevalue(ckpt_name)
    photo, depth, style = sample_batch() if inputs == "samples" else random_inputs(4, 256, 256)
    want = eager_fp32_on_gpu(ckpt, photo, depth, style)
    backend = create_backend("triton", ckpt)
    got = backend(photo, depth, style)
    assert torch.isfinite(got).all()
    _, mean_abs, psnr = sketch_errors(got, want)
    assert mean_abs <= FP16_MEAN_ABS and psnr >= FP16_MIN_PSNR, \
        f"triton fp16 vs eager fp32 ({ckpt_name}, {inputs}): mean |d| {mean_abs:.2e}, PSNR {psnr:.1f} dB"


@needs_gpu
@pytest.mark.gpu
def test_triton_fp32_matches_eager_fp32(spread_ckpt, random_inputs):
    photo, depth, style = random_inputs(2, 256, 256)
    want = eager_fp32_on_gpu(spread_ckpt, photo, depth, style)
    got = create_backend("triton", spread_ckpt, dtype="fp32")(photo, depth, style)
    max_abs, _, _ = sketch_errors(got, want)
    assert max_abs <= FP32_MAX_ABS, f"triton fp32 vs eager fp32: max |d| {max_abs:.2e}"


@needs_gpu
@pytest.mark.gpu
def test_cuda_graph_replays_fresh_inputs_at_each_size(spread_ckpt, random_inputs):
    """One graph per (batch, H, W); a replay on new inputs equals the same graph run without capture."""
    with_graphs = create_backend("triton", spread_ckpt)
    without = create_backend("triton", spread_ckpt, cuda_graphs=False)
    for n, size in ((1, 256), (3, 256), (1, 512), (1, 256)):
        photo, depth, style = random_inputs(n, size, size)
        got, want = with_graphs(photo, depth, style), without(photo, depth, style)
        assert got.shape == (n, 1, size, size) and torch.isfinite(got).all()
        torch.testing.assert_close(got, want, atol=2e-3, rtol=0)
    assert set(with_graphs._graphs) == {(1, 256, 256), (3, 256, 256), (1, 512, 512)}
