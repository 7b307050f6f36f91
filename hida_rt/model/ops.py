"""Plain-PyTorch expressions of HIDA's operators.

These are the references every faster path is checked against: the eager
model calls them, the Triton kernels are tested against them, and the ONNX
reference evaluator runs them for plugin nodes. Keep them literal; speed
belongs to the kernels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# DOG layers use DCNv2 with two deformable groups and a 3x3 kernel.
DCN_KERNEL = 3
DCN_GROUPS = 2


def acon(x: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """ACON-C as the authors' MetaAconC computes it: (p1-p2)x * sigmoid(beta (p1-p2)x) + p2 x."""
    dpx = (p1 - p2) * x
    return dpx * torch.sigmoid(beta * dpx) + p2 * x


def meta_acon_beta(x: torch.Tensor, fc1_w, fc1_b, fc2_w, fc2_b) -> torch.Tensor:
    """MetaACON's switch: sigmoid(fc2(fc1(mean_hw(x)))), one value per (sample, channel).

    The mean is taken as the authors do (over H, then over W), which rounds
    differently from a single mean over H*W.
    """
    m = x.mean(dim=2, keepdim=True).mean(dim=3, keepdim=True)
    return torch.sigmoid(F.conv2d(F.conv2d(m, fc1_w, fc1_b), fc2_w, fc2_b))


def meta_acon(x, p1, p2, fc1_w, fc1_b, fc2_w, fc2_b) -> torch.Tensor:
    """MetaACON with the live mean (N x C x H x W in, same out)."""
    return acon(x, p1, p2, meta_acon_beta(x, fc1_w, fc1_b, fc2_w, fc2_b))


def info_acon(y: torch.Tensor, theta: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """InfoACON as written in the authors' SPADEUp: (p1 y - p2 y) * sigmoid(theta (p1 y - p2 y)) + p2 y."""
    d = p1 * y - p2 * y
    return d * torch.sigmoid(theta * d) + p2 * y


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    return F.instance_norm(x, eps=eps)


def ida(y: torch.Tensor, theta_pre: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
        p1: torch.Tensor, p2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """InfoACON + DySPADE (residual form), the tail of every decoder layer.

    f = InfoACON(y; sigmoid(theta_pre)); out = IN(f) * (1 + gamma) + beta + f.
    Statistics are computed in FP32 whatever the input dtype: FP16 instance
    norm over 128x128 overflows its running sums.
    """
    dtype = y.dtype
    acc = torch.promote_types(dtype, torch.float32)  # at least FP32; float64 stays float64
    y, theta_pre, gamma, beta, p1, p2 = (t.to(acc) for t in (y, theta_pre, gamma, beta, p1, p2))
    f = info_acon(y, torch.sigmoid(theta_pre), p1, p2)
    out = instance_norm(f, eps) * (1 + gamma) + beta + f
    return out.to(dtype)


def ida_merged(y: torch.Tensor, tgb: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor,
               eps: float = 1e-5) -> torch.Tensor:
    """`ida` reading the merged conv output [theta_pre | gamma | beta] (N x 3C x H x W)."""
    theta_pre, gamma, beta = tgb.chunk(3, dim=1)
    return ida(y, theta_pre, gamma, beta, p1, p2, eps)


def split_offset_mask(om: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DCNv2's conv_offset_mask output (N x 3*G*K x H x W) -> offsets (2GK), mask (GK).

    The authors chunk the output in three (o1, o2, m) and concatenate o1, o2:
    a plain slice of the first two thirds.
    """
    o1, o2, m = torch.chunk(om, 3, dim=1)
    return torch.cat((o1, o2), dim=1), torch.sigmoid(m)


def _bilinear_gather(x: torch.Tensor, py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of x (N, G, Cg, H, W) at float positions py, px (N, G, K, P).

    DCNv2 semantics: a sample whose position is <= -1 or >= H (W) is 0, and
    the corners of a sample near the border that fall outside count as 0.
    Returns (N, G, Cg, K, P).
    """
    n, g, cg, h, w = x.shape
    k, p = py.shape[2], py.shape[3]
    inside = (py > -1) & (px > -1) & (py < h) & (px < w)
    y0 = torch.floor(py)
    x0 = torch.floor(px)
    ly, lx = py - y0, px - x0
    hy, hx = 1 - ly, 1 - lx
    y0 = y0.long()
    x0 = x0.long()
    flat = x.reshape(n, g, cg, h * w)
    out = x.new_zeros(n, g, cg, k * p)
    for dy, dx, wgt in ((0, 0, hy * hx), (0, 1, hy * lx), (1, 0, ly * hx), (1, 1, ly * lx)):
        yy, xx = y0 + dy, x0 + dx
        valid = inside & (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        idx = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).reshape(n, g, 1, k * p)
        vals = torch.gather(flat, 3, idx.expand(n, g, cg, k * p))
        coef = (wgt * valid.to(wgt.dtype)).reshape(n, g, 1, k * p)
        out = out + vals * coef
    return out.reshape(n, g, cg, k, p)


def modulated_deform_conv2d(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                            weight: torch.Tensor, bias: torch.Tensor | None = None,
                            stride: int = 1, padding: int = 1, dilation: int = 1) -> torch.Tensor:
    """Modulated deformable convolution (DCNv2), pure PyTorch, any device.

    Layout as torchvision's deform_conv2d and ONNX DeformConv: offset channel
    2*(g*K + k) is the row shift and 2*(g*K + k) + 1 the column shift of tap
    k = i*kw + j of deformable group g; mask channel g*K + k.
    """
    n, c, h, w = x.shape
    cout, cin, kh, kw = weight.shape
    if cin != c:
        raise ValueError(f"deform conv: input has {c} channels, weight expects {cin}")
    k = kh * kw
    groups = offset.shape[1] // (2 * k)
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    if offset.shape != (n, 2 * groups * k, ho, wo) or mask.shape != (n, groups * k, ho, wo):
        raise ValueError(f"deform conv: offset {tuple(offset.shape)} / mask {tuple(mask.shape)} "
                         f"do not fit {groups} groups of {k} taps at {ho}x{wo}")
    dev, dt = x.device, x.dtype
    base_y = (torch.arange(ho, device=dev, dtype=dt) * stride - padding).view(1, 1, 1, ho, 1)
    base_x = (torch.arange(wo, device=dev, dtype=dt) * stride - padding).view(1, 1, 1, 1, wo)
    tap_y = (torch.arange(kh, device=dev, dtype=dt) * dilation).repeat_interleave(kw).view(1, 1, k, 1, 1)
    tap_x = (torch.arange(kw, device=dev, dtype=dt) * dilation).repeat(kh).view(1, 1, k, 1, 1)
    off = offset.reshape(n, groups, k, 2, ho, wo)
    py = (base_y + tap_y + off[:, :, :, 0]).reshape(n, groups, k, ho * wo)
    px = (base_x + tap_x + off[:, :, :, 1]).reshape(n, groups, k, ho * wo)
    cols = _bilinear_gather(x.reshape(n, groups, c // groups, h, w), py, px)
    cols = cols * mask.reshape(n, groups, 1, k, ho * wo)
    # (N, C*K, P) with C-major, K-minor: the order of weight.reshape(Cout, C*K).
    cols = cols.reshape(n, c * k, ho * wo)
    out = torch.matmul(weight.reshape(cout, c * k), cols).reshape(n, cout, ho, wo)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def kcc_weight(weight: torch.Tensor) -> torch.Tensor:
    """DCN weight (Cout, Cin, 3, 3) -> (9, Cin, Cout), the layout the Triton kernel and its plugin read."""
    cout, cin, kh, kw = weight.shape
    if (kh, kw) != (DCN_KERNEL, DCN_KERNEL):
        raise ValueError(f"deform conv kernel is 3x3, got {kh}x{kw}")
    return weight.permute(2, 3, 1, 0).reshape(kh * kw, cin, cout).contiguous()


def weight_from_kcc(w_kcc: torch.Tensor) -> torch.Tensor:
    """(9, Cin, Cout) -> (Cout, Cin, 3, 3): the inverse of `kcc_weight`."""
    _, cin, cout = w_kcc.shape
    return w_kcc.reshape(DCN_KERNEL, DCN_KERNEL, cin, cout).permute(3, 2, 0, 1)


def constant_beta(fc1_w: torch.Tensor, fc1_b: torch.Tensor, fc2_w: torch.Tensor, fc2_b: torch.Tensor) -> torch.Tensor:
    """sigmoid(fc2(fc1(0))): the switch of a MetaACON whose input has zero channel means (FP32, C).

    fc1 of a zero mean is its bias; down3..down8 read InstanceNorm outputs, so
    their switch is this per-channel constant.
    """
    return torch.sigmoid(fc2_w.float().reshape(fc2_b.numel(), -1) @ fc1_b.float() + fc2_b.float())


def dcn_from_offset_mask_conv(x: torch.Tensor, om: torch.Tensor, weight: torch.Tensor,
                              bias: torch.Tensor | None) -> torch.Tensor:
    """The DOG layer's deformable conv from the raw 54-channel offset/mask conv output."""
    offset, mask = split_offset_mask(om)
    return modulated_deform_conv2d(x, offset, mask, weight, bias, stride=1, padding=1)
