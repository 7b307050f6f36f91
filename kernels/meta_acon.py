"""MetaACON-C: ACON with a per-(sample, channel) switch from a tiny MLP over channel means.

Reference: `hida_rt.model.ops.meta_acon` (live mean) and `ops.acon` with a
per-channel beta (constant switch):

    beta = sigmoid(fc2(fc1(mean_hw(x))))      fc1: C -> HID, fc2: HID -> C, 1x1, no activation
    out  = (p1 - p2) x * sigmoid(beta (p1 - p2) x) + p2 x

Constant-beta variant (`acon_const`): where x is an InstanceNorm output
(down3..down8), mean_hw(x) = 0 and beta = sigmoid(fc2(fc1(0))) is fixed at
build time; the op is then elementwise, one read and one write.

Live-mean variant: the MLP mixes channels, so no program can finish before
every channel mean of its sample is known. Two launches, each plugin-ready:
`meta_acon_mean_kernel` (row means, FP32, N x C) and `meta_acon_apply_kernel`
(each program recomputes the tiny MLP for its sample and channel block from
the means, ~C*HID multiply-adds, then applies ACON to its tile). Means,
MLP and ACON run in FP32 whatever the data dtype.

Plugin contracts (all contiguous; x/out fp16 or fp32, parameters fp32):
- mean:  in x (N,C,H,W); int32 n_rows=N*C, HW; out mean (N*C) fp32;
         grid (cdiv(n_rows, ROWS),)
- apply: in x, mean (N*C), fc1_w (HID,C), fc1_b (HID), fc2_w (C,HID), fc2_b (C),
         p1 (C), p2 (C); int32 N, C, HW, HID; out (N,C,H,W);
         grid (N * cdiv(C, BLOCK_C), cdiv(HW, BLOCK_HW))
- const: in x, p1, p2, beta (C); int32 n_rows=N*C, C, HW; out (N,C,H,W);
         grid (cdiv(n_rows, ROWS), cdiv(HW, BLOCK))
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from hida_rt.model.ops import constant_beta  # noqa: F401  (the acon_const switch; re-exported)

from ._aot import AotKernel, cdiv, next_pow2
from ._common import GPU_TILE, check_launchable, tile_elements

# MLP chunk over input channels in the apply kernel.
BLOCK_K = 64


@triton.jit
def _acon(x, p1, p2, beta):
    dpx = (p1 - p2) * x
    return dpx * tl.sigmoid(beta * dpx) + p2 * x


@triton.jit
def meta_acon_mean_kernel(x_ptr, n_rows, HW, mean_ptr, ROWS: tl.constexpr, BLOCK: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_ok = rows < n_rows
    base = rows.to(tl.int64)[:, None] * HW
    cols = tl.arange(0, BLOCK)[None, :]
    acc = tl.zeros([ROWS, BLOCK], dtype=tl.float32)
    for start in range(0, HW, BLOCK):
        m = row_ok[:, None] & (start + cols < HW)
        acc += tl.load(x_ptr + base + start + cols, mask=m, other=0.0).to(tl.float32)
    tl.store(mean_ptr + rows, tl.sum(acc, axis=1) / HW, mask=row_ok)


@triton.jit
def meta_acon_apply_kernel(x_ptr, mean_ptr, fc1_w_ptr, fc1_b_ptr, fc2_w_ptr, fc2_b_ptr, p1_ptr, p2_ptr,
                           N, C, HW, HID, out_ptr,
                           BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, BLOCK_HID: tl.constexpr,
                           BLOCK_K: tl.constexpr):
    c_blocks = (C + BLOCK_C - 1) // BLOCK_C
    n = tl.program_id(0) // c_blocks
    cs = (tl.program_id(0) % c_blocks) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_ok = cs < C
    # hidden = fc1_w @ mean[n] + fc1_b, over all C input channels of sample n
    j = tl.arange(0, BLOCK_HID)
    j_ok = j < HID
    hid = tl.zeros([BLOCK_HID], dtype=tl.float32)
    for k0 in range(0, C, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        k_ok = k < C
        m_k = tl.load(mean_ptr + n * C + k, mask=k_ok, other=0.0)
        w1 = tl.load(fc1_w_ptr + j[:, None] * C + k[None, :], mask=j_ok[:, None] & k_ok[None, :], other=0.0)
        hid += tl.sum(w1 * m_k[None, :], axis=1)
    hid += tl.load(fc1_b_ptr + j, mask=j_ok, other=0.0)
    # beta = sigmoid(fc2_w[cs] @ hidden + fc2_b[cs])
    w2 = tl.load(fc2_w_ptr + cs[:, None] * HID + j[None, :], mask=c_ok[:, None] & j_ok[None, :], other=0.0)
    beta = tl.sigmoid(tl.sum(w2 * hid[None, :], axis=1) + tl.load(fc2_b_ptr + cs, mask=c_ok, other=0.0))
    p1 = tl.load(p1_ptr + cs, mask=c_ok, other=0.0)
    p2 = tl.load(p2_ptr + cs, mask=c_ok, other=0.0)
    cols = tl.program_id(1) * BLOCK_HW + tl.arange(0, BLOCK_HW)
    m = c_ok[:, None] & (cols < HW)[None, :]
    offs = (n * C + cs).to(tl.int64)[:, None] * HW + cols[None, :]
    x = tl.load(x_ptr + offs, mask=m, other=0.0).to(tl.float32)
    out = _acon(x, p1[:, None], p2[:, None], beta[:, None])
    tl.store(out_ptr + offs, out.to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def acon_const_kernel(x_ptr, p1_ptr, p2_ptr, beta_ptr, n_rows, C, HW, out_ptr,
                      ROWS: tl.constexpr, BLOCK: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_ok = rows < n_rows
    c = rows % C
    p1 = tl.load(p1_ptr + c, mask=row_ok, other=0.0)[:, None]
    p2 = tl.load(p2_ptr + c, mask=row_ok, other=0.0)[:, None]
    beta = tl.load(beta_ptr + c, mask=row_ok, other=0.0)[:, None]
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    m = row_ok[:, None] & (cols < HW)[None, :]
    offs = rows.to(tl.int64)[:, None] * HW + cols[None, :]
    x = tl.load(x_ptr + offs, mask=m, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, _acon(x, p1, p2, beta).to(out_ptr.dtype.element_ty), mask=m)


# ---------------------------------------------------------------- configs, grids, AOT descriptions

def rows_config(hw: int, tile: int = GPU_TILE) -> dict:
    """ROWS x BLOCK tile of the mean and const kernels (a function of H*W alone)."""
    block = min(next_pow2(hw), tile)
    return dict(ROWS=max(1, tile // block), BLOCK=block)


def apply_config(c: int, hw: int, hid: int, tile: int = GPU_TILE) -> dict:
    block_hw = min(next_pow2(hw), tile)
    block_hid = next_pow2(hid)
    # The fc2 slice (BLOCK_C x BLOCK_HID FP32) is held whole: at most 2 tiles' worth, so the 2x2 layers
    # (BLOCK_HW = 4) take 128 channels a program, not 512 (which spilled on sm_80).
    block_c = min(next_pow2(c), max(1, tile // block_hw), max(1, 2 * tile // block_hid))
    return dict(BLOCK_C=block_c, BLOCK_HW=block_hw, BLOCK_HID=block_hid, BLOCK_K=min(BLOCK_K, next_pow2(c)))


def mean_grid(n_rows, HW, ROWS):
    return (cdiv(n_rows, ROWS),)


def apply_grid(N, C, HW, BLOCK_C, BLOCK_HW):
    return (N * cdiv(C, BLOCK_C), cdiv(HW, BLOCK_HW))


def const_grid(n_rows, HW, ROWS, BLOCK):
    return (cdiv(n_rows, ROWS), cdiv(HW, BLOCK))


def aot_mean_kernel(dtype: str, hw: int) -> AotKernel:
    cfg = rows_config(hw)
    return AotKernel(meta_acon_mean_kernel, ("x_ptr",), ("n_rows", "HW"), ("mean_ptr",),
                     {"x_ptr": dtype, "mean_ptr": "fp32"}, cfg,
                     grid=lambda n_rows, HW: mean_grid(n_rows, HW, cfg["ROWS"]),
                     notes="MetaACON live mean, launch 1 of 2: FP32 channel means.")


def aot_apply_kernel(dtype: str, c: int, hw: int, hid: int) -> AotKernel:
    cfg = apply_config(c, hw, hid)
    params = ("mean_ptr", "fc1_w_ptr", "fc1_b_ptr", "fc2_w_ptr", "fc2_b_ptr", "p1_ptr", "p2_ptr")
    return AotKernel(meta_acon_apply_kernel, ("x_ptr",) + params, ("N", "C", "HW", "HID"), ("out_ptr",),
                     {"x_ptr": dtype, "out_ptr": dtype, **{p: "fp32" for p in params}}, cfg,
                     grid=lambda N, C, HW, HID: apply_grid(N, C, HW, cfg["BLOCK_C"], cfg["BLOCK_HW"]),
                     notes="MetaACON live mean, launch 2 of 2: MLP per program, then ACON.")


def aot_const_kernel(dtype: str, hw: int) -> AotKernel:
    cfg = rows_config(hw)
    return AotKernel(acon_const_kernel, ("x_ptr", "p1_ptr", "p2_ptr", "beta_ptr"), ("n_rows", "C", "HW"),
                     ("out_ptr",), {"x_ptr": dtype, "p1_ptr": "fp32", "p2_ptr": "fp32", "beta_ptr": "fp32",
                                    "out_ptr": dtype}, cfg,
                     grid=lambda n_rows, C, HW: const_grid(n_rows, HW, cfg["ROWS"], cfg["BLOCK"]),
                     notes="MetaACON with a build-time constant switch: elementwise.")


# ---------------------------------------------------------------- torch launchers

def _vec(t: torch.Tensor, n: int) -> torch.Tensor:
    return t.reshape(n).float().contiguous()


def meta_acon(x: torch.Tensor, p1, p2, fc1_w, fc1_b, fc2_w, fc2_b, out: torch.Tensor | None = None,
              tile: int | None = None) -> torch.Tensor:
    """MetaACON with the live mean: x (N,C,H,W) fp16/fp32; fc weights as conv (or 2-D) tensors.

    `tile` overrides the elements per program (tests use it to reach multi-tile loops).
    """
    n, c, h, w = x.shape
    hid = fc1_b.numel()
    check_launchable(x)
    hw = h * w
    mean = torch.empty(n * c, device=x.device, dtype=torch.float32)
    cfg = rows_config(hw, tile or tile_elements())
    meta_acon_mean_kernel[mean_grid(n * c, hw, cfg["ROWS"])](x, n * c, hw, mean, **cfg)
    if out is None:
        out = torch.empty_like(x)
    cfg = apply_config(c, hw, hid, tile or tile_elements())
    meta_acon_apply_kernel[apply_grid(n, c, hw, cfg["BLOCK_C"], cfg["BLOCK_HW"])](
        x, mean, fc1_w.reshape(hid, c).float().contiguous(), _vec(fc1_b, hid),
        fc2_w.reshape(c, hid).float().contiguous(), _vec(fc2_b, c), _vec(p1, c), _vec(p2, c),
        n, c, hw, hid, out, **cfg)
    return out


def acon_const(x: torch.Tensor, p1, p2, beta, out: torch.Tensor | None = None,
               tile: int | None = None) -> torch.Tensor:
    """ACON with a per-channel switch `beta` (C), e.g. from `constant_beta`."""
    n, c, h, w = x.shape
    check_launchable(x)
    if out is None:
        out = torch.empty_like(x)
    hw = h * w
    cfg = rows_config(hw, tile or tile_elements())
    acon_const_kernel[const_grid(n * c, hw, cfg["ROWS"], cfg["BLOCK"])](
        x, _vec(p1, c), _vec(p2, c), _vec(beta, c), n * c, c, hw, out, **cfg)
    return out
