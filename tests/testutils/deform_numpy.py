"""An independent float64 NumPy modulated deformable convolution (DCNv2 semantics).

Written tap by tap from the definition, sharing no code with hida_rt; it is
itself checked against ONNX's reference DeformConv, then used as the oracle
where that reference (one GridSample per output element) is too slow.
"""
from __future__ import annotations

import numpy as np


def _sample(img: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Bilinear sample img (N, C, H, W) at py, px (N, Ho, Wo); zero outside (DCNv2 rules)."""
    n, c, h, w = img.shape
    out = np.zeros((n, c) + py.shape[1:], dtype=np.float64)
    in_range = (py > -1) & (py < h) & (px > -1) & (px < w)
    y0, x0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
    ly, lx = py - y0, px - x0
    batch = np.arange(n)[:, None, None]
    for yy, xx, wgt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                        (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
        ok = in_range & (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        vals = img[batch, :, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]  # (N, Ho, Wo, C)
        out += np.moveaxis(vals, -1, 1) * (wgt * ok)[:, None]
    return out


def deform_conv_numpy(x, offset, mask, weight, bias, pad: int = 1) -> np.ndarray:
    """x (N,C,H,W), offset (N,2GK,Ho,Wo), mask (N,GK,Ho,Wo), weight (Co,C,kh,kw), stride 1."""
    x, offset, mask, weight = (np.asarray(a, dtype=np.float64) for a in (x, offset, mask, weight))
    n, c, h, w = x.shape
    co, _, kh, kw = weight.shape
    k = kh * kw
    groups = offset.shape[1] // (2 * k)
    ho, wo = offset.shape[2:]
    cg = c // groups
    out = np.zeros((n, co, ho, wo))
    rows = np.arange(ho)[None, :, None]
    cols = np.arange(wo)[None, None, :]
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                t = g * k + i * kw + j
                py = rows - pad + i + offset[:, 2 * t]
                px = cols - pad + j + offset[:, 2 * t + 1]
                sampled = _sample(x[:, g * cg:(g + 1) * cg], py, px) * mask[:, t][:, None]
                out += np.einsum("oc,nchw->nohw", weight[:, g * cg:(g + 1) * cg, i, j], sampled)
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64).reshape(1, -1, 1, 1)
    return out
