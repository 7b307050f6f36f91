"""The fused HIDA graph of the "triton" backend, built from the eager generator.

Same function as `HIDAGenerator` (docs/model.md), rearranged by the exact
"facts that make it faster":
- fc3, norm.mlp_gamma and norm.mlp_beta of each decoder layer read the same
  `a`: one 3x3 conv with 3*Cout outputs [theta_pre | gamma | beta];
- the MetaACONs of down3..down8 read InstanceNorm outputs (channel means 0),
  so their switch sigmoid(fc2(fc1(0))) is a per-channel constant;
- InfoACON + DySPADE of a layer is one fused op (kernels/ida.py); MetaACON
  and the DOG layers' deformable conv are kernels too.
Convolutions stay cuDNN's. Weights and activations are in `dtype` (FP16 on
the GPU); statistics, MetaACON's MLP and sampling coordinates run in FP32
inside the kernels, and the small per-channel parameters are kept in FP32.

`use_kernels=False` runs the same graph with the plain-PyTorch references of
hida_rt.model.ops (computing in FP32, returning `dtype`, as the kernels do),
on any device: in FP32 it must equal eager FP32, which proves the merging
and folding on a machine without a GPU.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from hida_rt.model import HIDAGenerator, ops
from hida_rt.model.blocks import MetaAconC, SPADEUp, UNetDown


def _kernel_ops():
    # Imported on first use: importing Triton kernels decides, once, whether they are
    # compiled or interpreted (TRITON_INTERPRET), which callers may still be setting.
    from . import _library
    return _library


def _fp32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().float().clone()


def _cast(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    return copy.deepcopy(module).to(dtype).requires_grad_(False)


class FusedAcon(nn.Module):
    """MetaACON-C with the live mean, or with a build-time constant switch (`constant=True`)."""

    def __init__(self, src: MetaAconC, constant: bool = False):
        super().__init__()
        c = src.p1.numel()
        self.constant = constant
        self.register_buffer("p1", _fp32(src.p1).reshape(c))
        self.register_buffer("p2", _fp32(src.p2).reshape(c))
        fc1_w, fc1_b = _fp32(src.fc1.weight), _fp32(src.fc1.bias)
        fc2_w, fc2_b = _fp32(src.fc2.weight), _fp32(src.fc2.bias)
        if constant:
            self.register_buffer("beta", ops.constant_beta(fc1_w, fc1_b, fc2_w, fc2_b))
        else:
            self.register_buffer("fc1_w", fc1_w.reshape(fc1_b.numel(), c))
            self.register_buffer("fc1_b", fc1_b)
            self.register_buffer("fc2_w", fc2_w.reshape(c, fc1_b.numel()))
            self.register_buffer("fc2_b", fc2_b)

    def forward(self, x: torch.Tensor, use_kernels: bool) -> torch.Tensor:
        if self.constant:
            if use_kernels:
                return _kernel_ops().acon_const(x, self.p1, self.p2, self.beta)
            c = self.p1.numel()
            return ops.acon(x.float(), self.p1.view(1, c, 1, 1), self.p2.view(1, c, 1, 1),
                            self.beta.view(1, c, 1, 1)).to(x.dtype)
        if use_kernels:
            return _kernel_ops().meta_acon(x, self.p1, self.p2, self.fc1_w, self.fc1_b, self.fc2_w, self.fc2_b)
        c, hid = self.p1.numel(), self.fc1_b.numel()
        return ops.meta_acon(x.float(), self.p1.view(1, c, 1, 1), self.p2.view(1, c, 1, 1),
                             self.fc1_w.view(hid, c, 1, 1), self.fc1_b,
                             self.fc2_w.view(c, hid, 1, 1), self.fc2_b).to(x.dtype)


class FusedDown(nn.Module):
    """MetaACON -> Conv 4x4 s2 p1 -> InstanceNorm; the switch constant where the input is normalised."""

    def __init__(self, src: UNetDown, dtype: torch.dtype, input_normalised: bool):
        super().__init__()
        acon, conv = src.model[0], src.model[1]
        self.acon = FusedAcon(acon, constant=input_normalised)
        self.conv = _cast(conv, dtype)
        self.normalize = len(src.model) > 2

    def forward(self, x: torch.Tensor, use_kernels: bool) -> torch.Tensor:
        x = self.conv(self.acon(x, use_kernels))
        return F.instance_norm(x, eps=1e-5) if self.normalize else x


class FusedUp(nn.Module):
    """Decoder layer upK with the merged [fc3 | mlp_gamma | mlp_beta] conv and the fused IDA tail."""

    def __init__(self, src: SPADEUp, dtype: torch.dtype):
        super().__init__()
        self.first, self.dog = src.first, src.dog
        cout = src.p1.numel()
        if self.dog:
            self.offset_mask = _cast(src.dcn.conv_offset_mask, dtype)
            self.register_buffer("dcn_w", ops.kcc_weight(src.dcn.weight.detach()).to(dtype))
            self.register_buffer("dcn_b", _fp32(src.dcn.bias))
        else:
            self.up = _cast(src.layers, dtype)
        if self.first:
            self.cond_conv = _cast(src.fc2, dtype)
        else:
            self.cond_conv = _cast(src.fc1, dtype)
            self.en_conv = _cast(src.en_conv, dtype)
            self.acon_en = FusedAcon(src.metaAcon_en)
        self.acon = FusedAcon(src.metaAcon)
        merged = nn.Conv2d(cout, 3 * cout, 3, padding=1)
        with torch.no_grad():
            merged.weight.copy_(torch.cat([src.fc3.weight, src.norm.mlp_gamma.weight, src.norm.mlp_beta.weight]))
            merged.bias.copy_(torch.cat([src.fc3.bias, src.norm.mlp_gamma.bias, src.norm.mlp_beta.bias]))
        self.tgb_conv = merged.to(dtype).requires_grad_(False)
        self.register_buffer("p1", _fp32(src.p1).reshape(cout))
        self.register_buffer("p2", _fp32(src.p2).reshape(cout))

    def _deform(self, x: torch.Tensor, use_kernels: bool) -> torch.Tensor:
        om = self.offset_mask(x)
        if use_kernels:
            return _kernel_ops().deform_conv(x, om, self.dcn_w, self.dcn_b, ops.DCN_GROUPS)
        weight = ops.weight_from_kcc(self.dcn_w.float())
        return ops.dcn_from_offset_mask_conv(x.float(), om.float(), weight, self.dcn_b).to(x.dtype)

    def forward(self, de: torch.Tensor, cond_full: torch.Tensor, en: torch.Tensor | None,
                use_kernels: bool) -> torch.Tensor:
        x = de if en is None else torch.cat([de, en], dim=1)
        if self.dog:
            y = self._deform(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), use_kernels)
        else:
            y = self.up(x)
        cond = F.interpolate(cond_full, size=y.shape[2:], mode="nearest")
        if en is None:
            h = self.cond_conv(cond)
        else:
            h = self.cond_conv(torch.cat([cond, self.acon_en(self.en_conv(en), use_kernels)], dim=1))
        tgb = self.tgb_conv(self.acon(h, use_kernels))
        c = self.p1.numel()
        if use_kernels:
            return _kernel_ops().ida(y, tgb, self.p1, self.p2)
        return ops.ida_merged(y, tgb, self.p1.view(1, c, 1, 1), self.p2.view(1, c, 1, 1))


class FusedHIDA(nn.Module):
    """photo (N,3,H,W), depth (N,1,H,W), style (N,3) -> sketch (N,1,H,W) in `dtype`.

    Built once from an eager `HIDAGenerator` (which it does not modify);
    call `.to(device)` after building (dtypes are fixed at build time).
    """

    def __init__(self, gen: HIDAGenerator, dtype: torch.dtype = torch.float16, use_kernels: bool = True):
        super().__init__()
        self.dtype = dtype
        self.use_kernels = use_kernels
        self.down_rgb = _cast(gen.down_rgb, dtype)
        self.down_par = _cast(gen.down_par, dtype)
        # down2's input d1 is not normalised; down3..down8 read InstanceNorm outputs.
        self.downs = nn.ModuleList(FusedDown(getattr(gen, f"down{k}"), dtype, input_normalised=k > 2)
                                   for k in range(2, 9))
        self.ups = nn.ModuleList(FusedUp(getattr(gen, f"up{k}"), dtype) for k in range(7))
        self.final_acon = FusedAcon(gen.final_rgb[0])
        self.final_conv = _cast(gen.final_rgb[1], dtype)

    @torch.no_grad()
    def forward(self, photo: torch.Tensor, depth: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        k = self.use_kernels
        photo, depth, style = (t.to(self.dtype) for t in (photo, depth, style))
        n, _, h, w = photo.shape
        cond = torch.cat([depth, style[:, :, None, None].expand(n, style.shape[1], h, w)], dim=1)
        d1r = self.down_rgb(photo)
        skips = [torch.cat([d1r, self.down_par(depth)], dim=1)]
        for down in self.downs:
            skips.append(down(skips[-1], k))
        # skips: d1 .. d8; up0 reads d8, upK (K >= 1) reads d(8-K) as its encoder skip.
        u = self.ups[0](skips[7], cond, None, k)
        for i, up in enumerate(self.ups[1:], start=1):
            u = up(u, cond, skips[7 - i], k)
        return torch.tanh(self.final_conv(self.final_acon(torch.cat([u, d1r], dim=1), k)))
