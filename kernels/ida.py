"""IDA: InfoACON + instance statistics + DySPADE modulation + residual, fused.

Reference: `hida_rt.model.ops.ida_merged(y, tgb, p1, p2)`:

    f   = d * sigmoid(sigmoid(theta_pre) * d) + p2 * y,   d = p1 * y - p2 * y
    out = (f - mean(f)) / sqrt(var(f) + eps) * (1 + gamma) + beta + f

with [theta_pre | gamma | beta] = tgb, the 3C-channel output of the one merged
conv. Mean and biased variance run per (n, c) row over H*W in FP32.

The math needs every f of a row before the first output, so the least
traffic is two passes: statistics of f (reading y, theta_pre), then the
output (reading y, theta_pre again, gamma, beta). f is recomputed, never
stored. A row that fits one tile (H*W <= BLOCK) keeps f in registers and
reads each input once.

Two launch shapes:
- row path (`ida_row_kernel`): one program per ROWS rows, both passes inside.
  One launch, no scratch: this is the TensorRT AOT plugin kernel.
- split path (`ida_split_stats_kernel` + `ida_split_apply_kernel`): for few
  rows of large H*W (up6 at batch 1: 64 rows of 16 K, on a 132-SM GPU) each
  row is cut into SPLITS chunks; the first launch writes per-chunk partial
  sums to a small FP32 buffer, the second reduces them and writes its chunk.

Variance uses sums shifted by the row's first f value: E[(f-K)^2] - E[f-K]^2
does not cancel catastrophically when |mean| >> std, and the partial sums
of the split path still add up (every chunk uses the same K).

Plugin contract (row path): inputs y (N,C,H,W), tgb (N,3C,H,W), p1 (C) fp32,
p2 (C) fp32; int32 extras n_rows = N*C, C, HW; output out (N,C,H,W); y, tgb
and out share one dtype (fp16 or fp32); all contiguous. Grid:
(cdiv(n_rows, ROWS),). Constexprs from H*W alone: see `row_config`.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._aot import AotKernel, cdiv, next_pow2
from ._common import GPU_TILE, check_launchable, interpreting, num_sms, tile_elements

EPS = 1e-5
# Split a row only when there are too few rows to fill the GPU and the row is long.
SPLIT_MIN_HW = 4 * 1024


@triton.jit
def _row_offsets(rows, C, HW):
    """Element offsets (int64) of rows n*C + c in y, and of their theta_pre, gamma, beta planes in tgb."""
    r = rows.to(tl.int64)
    n = r // C
    y_off = r * HW
    theta_off = (r + 2 * n * C) * HW
    # r * 0 + C: C as an int64 tensor, so that C * HW is formed in 64 bits.
    gamma_off = theta_off + (r * 0 + C) * HW
    beta_off = gamma_off + (r * 0 + C) * HW
    return y_off, theta_off, gamma_off, beta_off


@triton.jit
def _info_acon(y_ptr, tgb_ptr, y_off, theta_off, mask, p1, p2):
    """f = InfoACON(y; sigmoid(theta_pre)) in FP32 for one tile, 0 where masked."""
    y = tl.load(y_ptr + y_off, mask=mask, other=0.0).to(tl.float32)
    theta = tl.sigmoid(tl.load(tgb_ptr + theta_off, mask=mask, other=0.0).to(tl.float32))
    d = p1 * y - p2 * y
    f = d * tl.sigmoid(theta * d) + p2 * y
    return tl.where(mask, f, 0.0)


@triton.jit
def _modulate(f, mean, rstd, tgb_ptr, gamma_off, beta_off, mask):
    gamma = tl.load(tgb_ptr + gamma_off, mask=mask, other=0.0).to(tl.float32)
    beta = tl.load(tgb_ptr + beta_off, mask=mask, other=0.0).to(tl.float32)
    return (f - mean) * rstd * (1.0 + gamma) + beta + f


@triton.jit
def ida_row_kernel(y_ptr, tgb_ptr, p1_ptr, p2_ptr, n_rows, C, HW, out_ptr,
                   ROWS: tl.constexpr, BLOCK: tl.constexpr, SINGLE_TILE: tl.constexpr, EPS: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_ok = rows < n_rows
    c = rows % C
    p1 = tl.load(p1_ptr + c, mask=row_ok, other=0.0).to(tl.float32)[:, None]
    p2 = tl.load(p2_ptr + c, mask=row_ok, other=0.0).to(tl.float32)[:, None]
    y_off, theta_off, gamma_off, beta_off = _row_offsets(rows, C, HW)
    y_off, theta_off = y_off[:, None], theta_off[:, None]
    gamma_off, beta_off = gamma_off[:, None], beta_off[:, None]
    cols = tl.arange(0, BLOCK)[None, :]
    out_ty = out_ptr.dtype.element_ty
    if SINGLE_TILE:
        # The whole row is in registers: exact two-pass statistics, one read of each input.
        m = row_ok[:, None] & (cols < HW)
        f = _info_acon(y_ptr, tgb_ptr, y_off + cols, theta_off + cols, m, p1, p2)
        mean = tl.sum(f, axis=1) / HW
        diff = tl.where(m, f - mean[:, None], 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(diff * diff, axis=1) / HW + EPS)
        out = _modulate(f, mean[:, None], rstd[:, None], tgb_ptr, gamma_off + cols, beta_off + cols, m)
        tl.store(out_ptr + y_off + cols, out.to(out_ty), mask=m)
    else:
        first = row_ok[:, None] & (cols == 0)
        shift = tl.sum(_info_acon(y_ptr, tgb_ptr, y_off + cols, theta_off + cols, first, p1, p2), axis=1)[:, None]
        acc1 = tl.zeros([ROWS, BLOCK], dtype=tl.float32)
        acc2 = tl.zeros([ROWS, BLOCK], dtype=tl.float32)
        for start in range(0, HW, BLOCK):
            m = row_ok[:, None] & (start + cols < HW)
            f = _info_acon(y_ptr, tgb_ptr, y_off + start + cols, theta_off + start + cols, m, p1, p2)
            fs = tl.where(m, f - shift, 0.0)
            acc1 += fs
            acc2 += fs * fs
        mean_s = tl.sum(acc1, axis=1) / HW
        var = tl.maximum(tl.sum(acc2, axis=1) / HW - mean_s * mean_s, 0.0)
        mean = shift + mean_s[:, None]
        rstd = (1.0 / tl.sqrt(var + EPS))[:, None]
        for start in range(0, HW, BLOCK):
            m = row_ok[:, None] & (start + cols < HW)
            f = _info_acon(y_ptr, tgb_ptr, y_off + start + cols, theta_off + start + cols, m, p1, p2)
            out = _modulate(f, mean, rstd, tgb_ptr, gamma_off + start + cols, beta_off + start + cols, m)
            tl.store(out_ptr + y_off + start + cols, out.to(out_ty), mask=m)


@triton.jit
def _split_setup(p1_ptr, p2_ptr, y_ptr, tgb_ptr, C, HW):
    """Per-row constants of the split path: offsets, p1, p2 and the shift K = f[row, 0]."""
    row = tl.program_id(0)
    rows = row + tl.arange(0, 1)
    c = rows % C
    p1 = tl.load(p1_ptr + c).to(tl.float32)
    p2 = tl.load(p2_ptr + c).to(tl.float32)
    y_off, theta_off, gamma_off, beta_off = _row_offsets(rows, C, HW)
    shift = _info_acon(y_ptr, tgb_ptr, y_off, theta_off, rows >= 0, p1, p2)
    return p1, p2, y_off, theta_off, gamma_off, beta_off, shift


@triton.jit
def ida_split_stats_kernel(y_ptr, tgb_ptr, p1_ptr, p2_ptr, C, HW, CHUNK, stats_ptr, BLOCK: tl.constexpr):
    """Program (row, split): shifted sum and sum of squares of f over columns [split*CHUNK, +CHUNK)."""
    p1, p2, y_off, theta_off, _g, _b, shift = _split_setup(p1_ptr, p2_ptr, y_ptr, tgb_ptr, C, HW)
    split = tl.program_id(1)
    lo = split * CHUNK
    hi = tl.minimum(lo + CHUNK, HW)
    cols = tl.arange(0, BLOCK)
    acc1 = tl.zeros([BLOCK], dtype=tl.float32)
    acc2 = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(lo, hi, BLOCK):
        m = start + cols < hi
        f = _info_acon(y_ptr, tgb_ptr, y_off + start + cols, theta_off + start + cols, m, p1, p2)
        fs = tl.where(m, f - shift, 0.0)
        acc1 += fs
        acc2 += fs * fs
    base = (tl.program_id(0) * tl.num_programs(1) + split) * 2
    tl.store(stats_ptr + base, tl.sum(acc1, axis=0))
    tl.store(stats_ptr + base + 1, tl.sum(acc2, axis=0))


@triton.jit
def ida_split_apply_kernel(y_ptr, tgb_ptr, p1_ptr, p2_ptr, stats_ptr, C, HW, CHUNK, out_ptr,
                           BLOCK: tl.constexpr, SPLITS: tl.constexpr, EPS: tl.constexpr):
    """Program (row, split): reduce the row's partial sums, then write out over its chunk."""
    p1, p2, y_off, theta_off, gamma_off, beta_off, shift = _split_setup(p1_ptr, p2_ptr, y_ptr, tgb_ptr, C, HW)
    split = tl.program_id(1)
    s = tl.arange(0, SPLITS)
    s_ok = s < tl.num_programs(1)
    base = tl.program_id(0) * tl.num_programs(1) * 2
    mean_s = tl.sum(tl.load(stats_ptr + base + 2 * s, mask=s_ok, other=0.0), axis=0) / HW
    var = tl.maximum(tl.sum(tl.load(stats_ptr + base + 2 * s + 1, mask=s_ok, other=0.0), axis=0) / HW
                     - mean_s * mean_s, 0.0)
    mean = shift + mean_s
    rstd = 1.0 / tl.sqrt(var + EPS)
    lo = split * CHUNK
    hi = tl.minimum(lo + CHUNK, HW)
    cols = tl.arange(0, BLOCK)
    out_ty = out_ptr.dtype.element_ty
    for start in range(lo, hi, BLOCK):
        m = start + cols < hi
        f = _info_acon(y_ptr, tgb_ptr, y_off + start + cols, theta_off + start + cols, m, p1, p2)
        out = _modulate(f, mean, rstd, tgb_ptr, gamma_off + start + cols, beta_off + start + cols, m)
        tl.store(out_ptr + y_off + start + cols, out.to(out_ty), mask=m)


def row_config(hw: int, block: int | None = None, tile: int = GPU_TILE) -> dict:
    """Constexprs and warps of the row path; a function of H*W alone (fixed in an engine)."""
    block = block or min(next_pow2(hw), tile)
    return dict(ROWS=max(1, tile // block), BLOCK=block, SINGLE_TILE=hw <= block, EPS=EPS, num_warps=4)


def row_grid(n_rows, ROWS):
    return (cdiv(n_rows, ROWS),)


def aot_kernel(dtype: str, hw: int) -> AotKernel:
    """The row-path kernel as a TensorRT AOT plugin compiles it (dtype "fp16" or "fp32")."""
    cfg = row_config(hw)
    num_warps = cfg.pop("num_warps")
    rows = cfg["ROWS"]
    return AotKernel(
        kernel=ida_row_kernel,
        inputs=("y_ptr", "tgb_ptr", "p1_ptr", "p2_ptr"),
        scalars=("n_rows", "C", "HW"),
        outputs=("out_ptr",),
        dtypes={"y_ptr": dtype, "tgb_ptr": dtype, "p1_ptr": "fp32", "p2_ptr": "fp32", "out_ptr": dtype},
        constexprs=cfg,
        grid=lambda n_rows, C, HW: row_grid(n_rows, rows),
        num_warps=num_warps,
        notes="IDA row path: one program per ROWS (n, c) rows; two passes over H*W inside.",
    )


def aot_split_kernels(dtype: str, hw: int, n_rows: int, sms: int) -> tuple[AotKernel, AotKernel]:
    """The split path's two launches (torch host only: they pass partial sums through a buffer)."""
    cfg = split_config(n_rows, hw, sms, force=True)
    ptrs = ("y_ptr", "tgb_ptr", "p1_ptr", "p2_ptr")
    dtypes = {"y_ptr": dtype, "tgb_ptr": dtype, "p1_ptr": "fp32", "p2_ptr": "fp32", "stats_ptr": "fp32",
              "out_ptr": dtype}
    grid = lambda C, HW, CHUNK: (n_rows, cdiv(HW, CHUNK))  # noqa: E731
    stats = AotKernel(ida_split_stats_kernel, ptrs, ("C", "HW", "CHUNK"), ("stats_ptr",), dtypes,
                      {"BLOCK": cfg["BLOCK"]}, grid, cfg["num_warps"], "IDA split path 1/2: partial sums")
    apply = AotKernel(ida_split_apply_kernel, ptrs + ("stats_ptr",), ("C", "HW", "CHUNK"), ("out_ptr",), dtypes,
                      {"BLOCK": cfg["BLOCK"], "SPLITS": next_pow2(cfg["SPLITS"]), "EPS": EPS}, grid,
                      cfg["num_warps"], "IDA split path 2/2: reduce partials, write out")
    return stats, apply


def split_config(n_rows: int, hw: int, sms: int, force: bool = False, block: int | None = None,
                 splits: int | None = None) -> dict | None:
    """Block, chunk and split count of the split path; None when the row path fills the GPU."""
    if not force and (n_rows >= 2 * sms or hw < SPLIT_MIN_HW):
        return None
    block = block or min(1024, max(16, next_pow2(cdiv(hw, 4))))
    splits = min(cdiv(hw, block), splits or max(2, cdiv(4 * sms, max(n_rows, 1))))
    chunk = cdiv(cdiv(hw, splits), block) * block
    return dict(BLOCK=block, SPLITS=cdiv(hw, chunk), CHUNK=chunk, num_warps=4)


def ida(y: torch.Tensor, tgb: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor,
        path: str = "auto", block: int | None = None, splits: int | None = None,
        out: torch.Tensor | None = None) -> torch.Tensor:
    """Fused IDA: y (N,C,H,W), tgb (N,3C,H,W) of y's dtype, p1/p2 (C or 1,C,1,1) -> (N,C,H,W).

    path: "auto" (split for few long rows, else row), "row" or "split"; `block`
    (tile width) and `splits` override the heuristics (tests use them to reach
    multi-tile loops at small sizes).
    """
    if path not in ("auto", "row", "split"):
        raise ValueError(f"ida: path must be auto, row or split, got {path!r}")
    n, c, h, w = y.shape
    if tgb.shape != (n, 3 * c, h, w) or tgb.dtype != y.dtype:
        raise ValueError(f"ida: tgb must be {(n, 3 * c, h, w)} {y.dtype}, got {tuple(tgb.shape)} {tgb.dtype}")
    p1 = p1.reshape(c).float().contiguous()
    p2 = p2.reshape(c).float().contiguous()
    check_launchable(y, tgb)
    if out is None:
        out = torch.empty_like(y)
    hw, n_rows = h * w, n * c
    split = None
    # The split path is a GPU occupancy measure; the interpreter takes it only when asked.
    if path == "split" or (path == "auto" and not interpreting()):
        split = split_config(n_rows, hw, num_sms(y.device), force=path == "split", block=block,
                             splits=splits)
    if split is None:
        cfg = row_config(hw, block, tile_elements())
        ida_row_kernel[row_grid(n_rows, cfg["ROWS"])](y, tgb, p1, p2, n_rows, c, hw, out, **cfg)
        return out
    splits, chunk, warps = split["SPLITS"], split["CHUNK"], split["num_warps"]
    stats = torch.empty(n_rows * splits * 2, device=y.device, dtype=torch.float32)
    grid = (n_rows, splits)
    ida_split_stats_kernel[grid](y, tgb, p1, p2, c, hw, chunk, stats, BLOCK=split["BLOCK"], num_warps=warps)
    ida_split_apply_kernel[grid](y, tgb, p1, p2, stats, c, hw, chunk, out, BLOCK=split["BLOCK"],
                                 SPLITS=next_pow2(splits), EPS=EPS, num_warps=warps)
    return out
