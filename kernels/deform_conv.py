"""Modulated deformable 3x3 convolution (DCNv2) as an implicit GEMM with on-the-fly bilinear sampling.

Reference: `hida_rt.model.ops.dcn_from_offset_mask_conv(x, om, weight, bias)`:
stride 1, padding 1, dilation 1, G deformable groups, reading the raw
offset/mask conv output `om` (N, 3*G*9, H, W): channels [0, 2*G*9) are the
offsets (channel 2*(g*9+k) the row shift and 2*(g*9+k)+1 the column shift of
tap k = 3*i + j of group g), channels 2*G*9 + g*9 + k the mask logits. The
split, concat and sigmoid of DCNv2's `DCN` module are folded into the loads.

GEMM view: M = output pixels (N*H*W, flattened), N = Cout, K = Cin * 9. A
program owns a BLOCK_P x BLOCK_CO output tile and walks the K dimension tap
by tap: for each (group, tap) it computes the FP32 sampling positions,
bilinear corner weights and mask of its BLOCK_P pixels once, then for each
BLOCK_CI slice of the group's input channels gathers the four corners,
blends them in FP32, rounds the A tile to the data dtype and multiplies it
by the weight slice on the tensor cores with an FP32 accumulator. Bias is
added in the epilogue. A sample at row <= -1 or >= H (column likewise) is 0,
and corners outside the image count as 0 (DCNv2 / torchvision semantics).

The weight is read as `kcc_weight(weight)`: (9, Cin, Cout), so that a
(tap, channel slice) row block of B is contiguous along Cout. Hosts make
this layout once at build time (the TensorRT graph pass stores the
transposed constant).

SPLIT_K > 1 (torch host only, for tiny M: the DOG layers at batch 1 have
4-16 output pixels and 4.7-9.4 MB of weights, so Cout / BLOCK_CO programs
alone leave most SMs idle): program (p, co, s) takes taps s, s + SPLIT_K,
... and writes an FP32 partial to plane s of `out`; the host sums the planes.
The plugin kernel is SPLIT_K = 1: one launch, no scratch.

Plugin contract: inputs x (N,Cin,H,W), om (N,3*G*9,H,W), w (9,Cin,Cout),
bias (Cout); x/om/w one dtype (fp16 or fp32), bias fp32; int32 extras N,
C_in, H, W, C_out; output out (N,Cout,H,W) of x's dtype; all contiguous;
x and w under 2**31 elements (the gathers use 32-bit offsets).
Grid (cdiv(N*H*W, BLOCK_P), cdiv(C_out, BLOCK_CO), 1).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from hida_rt.model.ops import kcc_weight  # noqa: F401  (the layout this kernel reads; re-exported)

from ._aot import AotKernel, cdiv, next_pow2
from ._common import check_launchable, interpreting, num_sms

TAPS = 9
GROUPS = 2


@triton.jit
def deform_conv_kernel(x_ptr, om_ptr, w_ptr, b_ptr, N, C_in, H, W, C_out, out_ptr,
                       GROUPS: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_CO: tl.constexpr,
                       BLOCK_CI: tl.constexpr, SPLIT_K: tl.constexpr):
    HW = H * W
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    p_ok = p < N * HW
    # Rows past the end read pixel N*HW - 1 (in bounds) with zero weights: the gathers need no row mask.
    p_in = tl.minimum(p, N * HW - 1)
    n = (p_in // HW).to(tl.int64)
    hw = p_in % HW
    ho = hw // W
    wo = hw % W
    co = tl.program_id(1) * BLOCK_CO + tl.arange(0, BLOCK_CO)
    co_ok = co < C_out
    c_group = C_in // GROUPS
    om_pix = om_ptr + n * (3 * GROUPS * 9) * HW + hw
    # 32-bit offsets into x (the launcher checks x has < 2**31 elements): the gather addresses are
    # formed at each load from 32-bit values, never held as 64-bit pointer tiles.
    x_img = (p_in // HW) * C_in * HW
    ci_r = tl.arange(0, BLOCK_CI)
    data_ty = x_ptr.dtype.element_ty
    acc = tl.zeros([BLOCK_P, BLOCK_CO], dtype=tl.float32)
    for gk in range(tl.program_id(2), GROUPS * 9, SPLIT_K):
        g = gk // 9
        k = gk % 9
        # Sampling position, corner weights and mask of each pixel: FP32 whatever the data dtype.
        dy = tl.load(om_pix + (2 * gk) * HW).to(tl.float32)
        dx = tl.load(om_pix + (2 * gk + 1) * HW).to(tl.float32)
        mk = tl.sigmoid(tl.load(om_pix + (2 * GROUPS * 9 + gk) * HW).to(tl.float32))
        py = (ho + k // 3 - 1).to(tl.float32) + dy
        px = (wo + k % 3 - 1).to(tl.float32) + dx
        inside = p_ok & (py > -1.0) & (px > -1.0) & (py < H) & (px < W)
        y0f = tl.floor(py)
        x0f = tl.floor(px)
        ly = py - y0f
        lx = px - x0f
        y0 = y0f.to(tl.int32)
        x0 = x0f.to(tl.int32)
        ok_y0 = inside & (y0 >= 0)
        ok_y1 = inside & (y0 + 1 <= H - 1)
        ok_x0 = x0 >= 0
        ok_x1 = x0 + 1 <= W - 1
        # The A tile is gathered transposed, (channels, pixels): Triton 3.9 then lays it out with a
        # warp's threads along the pixels, so the per-pixel vectors below are spread over the threads
        # instead of replicated in each (Triton 3.6 still replicates them: hence config's small tiles).
        w00 = tl.where(ok_y0 & ok_x0, (1.0 - ly) * (1.0 - lx) * mk, 0.0)[None, :]
        w01 = tl.where(ok_y0 & ok_x1, (1.0 - ly) * lx * mk, 0.0)[None, :]
        w10 = tl.where(ok_y1 & ok_x0, ly * (1.0 - lx) * mk, 0.0)[None, :]
        w11 = tl.where(ok_y1 & ok_x1, ly * lx * mk, 0.0)[None, :]
        # Corners clamped into the image: a corner outside it has weight 0, so every gather is in bounds
        # and only the channel tail is masked. Only per-pixel vectors and scalars live across the channel
        # loop: no pointer tiles, which spilled.
        r0 = tl.minimum(tl.maximum(y0, 0), H - 1) * W
        r1 = tl.minimum(tl.maximum(y0 + 1, 0), H - 1) * W
        c0_ = tl.minimum(tl.maximum(x0, 0), W - 1)
        c1_ = tl.minimum(tl.maximum(x0 + 1, 0), W - 1)
        x00 = (x_img + (r0 + c0_))[None, :]
        x01 = (x_img + (r0 + c1_))[None, :]
        x10 = (x_img + (r1 + c0_))[None, :]
        x11 = (x_img + (r1 + c1_))[None, :]
        w_tap = (k * C_in + g * c_group) * C_out
        for c0 in tl.range(0, c_group, BLOCK_CI, num_stages=1):
            ci = c0 + ci_r
            ci_ok = ci < c_group
            cm = ci_ok[:, None]
            x_off = ((g * c_group + ci) * HW)[:, None]
            a_t = tl.load(x_ptr + (x00 + x_off), mask=cm, other=0.0).to(tl.float32) * w00
            a_t += tl.load(x_ptr + (x01 + x_off), mask=cm, other=0.0).to(tl.float32) * w01
            a_t += tl.load(x_ptr + (x10 + x_off), mask=cm, other=0.0).to(tl.float32) * w10
            a_t += tl.load(x_ptr + (x11 + x_off), mask=cm, other=0.0).to(tl.float32) * w11
            b = tl.load(w_ptr + (w_tap + (ci * C_out)[:, None] + co[None, :]), mask=cm & co_ok[None, :],
                        other=0.0)
            acc = tl.dot(tl.trans(a_t.to(data_ty)), b, acc, input_precision="ieee")
    bias = tl.load(b_ptr + co, mask=co_ok, other=0.0).to(tl.float32)
    acc += tl.where(tl.program_id(2) == 0, bias, 0.0)[None, :]
    plane = tl.program_id(2).to(tl.int64) * N * C_out * HW
    offs = plane + (n * C_out)[:, None] * HW + co.to(tl.int64)[None, :] * HW + hw[:, None]
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=p_ok[:, None] & co_ok[None, :])


def config(n_pixels: int, c_in: int, c_out: int, groups: int = GROUPS, interpreter: bool = False) -> dict:
    """Tile shape for M = n_pixels (16 is the smallest tensor-core M tile).

    The interpreter pays per operation, not per element: there, wide channel
    tiles (up to 256) keep a full-size DOG layer to seconds. At the small test
    shapes both choices coincide.

    On a GPU the gathered A tile (BLOCK_CI x BLOCK_P) is kept to 1 K elements:
    with Triton 3.6 the per-pixel sampling state is replicated across a
    warp's threads, and larger tiles spill on sm_90. Every
    tile here assembles without a spill on sm_80/89/90/120 under Triton 3.9
    and on sm_90 under 3.6 (tests/tensorrt/test_sass.py; registers and
    occupancy in docs/proof.md).
    """
    block_p = min(64, max(16, next_pow2(n_pixels)))
    wide = 256 if interpreter else 64
    block_co = min(wide if interpreter else (64 if block_p >= 64 else 32), max(16, next_pow2(c_out)))
    block_ci = min(wide if interpreter else min(32, 1024 // block_p), max(16, next_pow2(c_in // groups)))
    # 8 warps for the 64 x 64 tiles: about 120 registers a thread instead of 200-255 (the edge of
    # spilling under Triton 3.6 on sm_90), and 16 resident warps per SM instead of 8.
    return dict(GROUPS=groups, BLOCK_P=block_p, BLOCK_CO=block_co, BLOCK_CI=block_ci,
                num_warps=8 if block_p >= 64 else 4)


def grid(N, C_in, H, W, C_out, BLOCK_P, BLOCK_CO, SPLIT_K=1):
    return (cdiv(N * H * W, BLOCK_P), cdiv(C_out, BLOCK_CO), SPLIT_K)


def aot_kernel(dtype: str, c_in: int, c_out: int, n_pixels: int = 16, groups: int = GROUPS,
               split_k: int = 1) -> AotKernel:
    """The plugin kernel (SPLIT_K = 1). `n_pixels` (N*H*W at the profile's typical batch) picks BLOCK_P.

    split_k > 1 describes the torch host's split-K launch (FP32 partial planes as output), for
    compile checks only: it is not a plugin kernel.
    """
    cfg = config(n_pixels, c_in, c_out, groups)
    num_warps = cfg.pop("num_warps")
    cfg["SPLIT_K"] = split_k
    return AotKernel(
        kernel=deform_conv_kernel,
        inputs=("x_ptr", "om_ptr", "w_ptr", "b_ptr"),
        scalars=("N", "C_in", "H", "W", "C_out"),
        outputs=("out_ptr",),
        dtypes={"x_ptr": dtype, "om_ptr": dtype, "w_ptr": dtype, "b_ptr": "fp32",
                "out_ptr": dtype if split_k == 1 else "fp32"},
        constexprs=cfg,
        grid=lambda N, C_in, H, W, C_out: grid(N, C_in, H, W, C_out, cfg["BLOCK_P"], cfg["BLOCK_CO"], split_k),
        num_warps=num_warps,
        notes="DCNv2 3x3 s1 p1 from the raw offset/mask conv output; weight as (9, Cin, Cout).",
    )


def pick_split_k(n_pixels: int, c_out: int, cfg: dict, sms: int) -> int:
    """Split the 9*G taps when the output tiles alone cannot occupy the GPU."""
    tiles = cdiv(n_pixels, cfg["BLOCK_P"]) * cdiv(c_out, cfg["BLOCK_CO"])
    taps = 9 * cfg["GROUPS"]
    if tiles >= sms:
        return 1
    want = cdiv(2 * sms, tiles)
    return max(d for d in range(1, taps + 1) if taps % d == 0 and d <= want)


def deform_conv(x: torch.Tensor, om: torch.Tensor, w_kcc: torch.Tensor, bias: torch.Tensor,
                groups: int = GROUPS, split_k: int | None = None, out: torch.Tensor | None = None,
                **tile) -> torch.Tensor:
    """DCNv2 3x3 from the raw offset/mask conv output; `w_kcc` from `kcc_weight`. Returns x's dtype.

    `tile` may override BLOCK_P / BLOCK_CO / BLOCK_CI (tests use it to reach
    the channel loop and its masks at small sizes).
    """
    n, c_in, h, w = x.shape
    taps, c_in_w, c_out = w_kcc.shape
    if (taps, c_in_w) != (TAPS, c_in) or om.shape != (n, 3 * groups * TAPS, h, w):
        raise ValueError(f"deform_conv: x {tuple(x.shape)}, om {tuple(om.shape)}, w {tuple(w_kcc.shape)} "
                         f"do not fit {groups} groups of 3x3 taps")
    if c_in % groups:
        raise ValueError(f"deform_conv: {c_in} input channels do not split into {groups} groups")
    if om.dtype != x.dtype or w_kcc.dtype != x.dtype:
        raise ValueError(f"deform_conv: x, om and w must share a dtype, got {x.dtype}, {om.dtype}, {w_kcc.dtype}")
    check_launchable(x, om, w_kcc)
    if max(x.numel(), w_kcc.numel()) >= 2**31:
        raise ValueError(f"deform_conv: x {tuple(x.shape)} or w {tuple(w_kcc.shape)} has 2**31 elements or "
                         f"more (the kernel gathers with 32-bit offsets); split the batch")
    bias = bias.reshape(c_out).float().contiguous()
    cfg = dict(config(n * h * w, c_in, c_out, groups, interpreter=interpreting()), **tile)
    if split_k is None:
        split_k = 1 if interpreting() else pick_split_k(n * h * w, c_out, cfg, num_sms(x.device))
    if (9 * groups) % split_k:
        raise ValueError(f"deform_conv: split_k {split_k} must divide {9 * groups} taps")
    if out is None:
        out = torch.empty(n, c_out, h, w, device=x.device, dtype=x.dtype)
    g = grid(n, c_in, h, w, c_out, cfg["BLOCK_P"], cfg["BLOCK_CO"], split_k)
    if split_k == 1:
        deform_conv_kernel[g](x, om, w_kcc, bias, n, c_in, h, w, c_out, out, SPLIT_K=1, **cfg)
        return out
    partial = torch.empty(split_k, n, c_out, h, w, device=x.device, dtype=torch.float32)
    deform_conv_kernel[g](x, om, w_kcc, bias, n, c_in, h, w, c_out, partial, SPLIT_K=split_k, **cfg)
    return out.copy_(partial.sum(0))
