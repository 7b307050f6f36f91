"""HIDA's building blocks, with the module names of the published state dict.

Every block takes `full`: with full=False (inference) it holds only the
parameters the forward pass reads; with full=True it also holds the
training-only ones (BatchNorms that MetaACON never calls, the DySPADE shared
MLP, the unused branch of each decoder layer) so a checkpoint in the
authors' exact layout can be written and read.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import ops

# The authors' parsing_nc: the depth map is one channel, the encoder feature
# squeezed by en_conv is one channel; plus three style channels.
PARSING_NC = 1
STYLE_NC = 3


class MetaAconC(nn.Module):
    """MetaACON-C; `bn1`/`bn2` exist in the checkpoint but the forward never used them."""

    def __init__(self, channels: int, full: bool = False, reduction: int = 16):
        super().__init__()
        hidden = max(reduction, channels // reduction)
        self.p1 = nn.Parameter(torch.randn(1, channels, 1, 1))
        self.p2 = nn.Parameter(torch.randn(1, channels, 1, 1))
        self.fc1 = nn.Conv2d(channels, hidden, 1, 1, bias=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, 1, bias=True)
        if full:
            self.bn1 = nn.BatchNorm2d(hidden)
            self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.meta_acon(x, self.p1, self.p2, self.fc1.weight, self.fc1.bias,
                             self.fc2.weight, self.fc2.bias)


class UNetDown(nn.Module):
    """MetaACON -> Conv 4x4 s2 p1 -> InstanceNorm (no affine), as `downK.model.{0,1,2}`."""

    def __init__(self, cin: int, cout: int, normalize: bool = True, full: bool = False):
        super().__init__()
        layers: list[nn.Module] = [MetaAconC(cin, full), nn.Conv2d(cin, cout, 4, 2, 1)]
        if normalize:
            layers.append(nn.InstanceNorm2d(cout, affine=False, track_running_stats=False))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class DCN(nn.Module):
    """DCNv2's `DCN` module: 3x3 modulated deformable conv with its own offset/mask conv."""

    def __init__(self, cin: int, cout: int, groups: int = ops.DCN_GROUPS):
        super().__init__()
        k = ops.DCN_KERNEL
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.conv_offset_mask = nn.Conv2d(cin, groups * 3 * k * k, k, 1, k // 2, bias=True)
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.dcn_from_offset_mask_conv(x, self.conv_offset_mask(x), self.weight, self.bias)


class DySPADE(nn.Module):
    """`upK.norm`: only mlp_gamma / mlp_beta are used; they read the decoder's `a`."""

    def __init__(self, cin: int, cout: int, first: bool, full: bool = False):
        super().__init__()
        if full:
            label_nc = PARSING_NC if first else 2 * PARSING_NC
            self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, 128, 3, padding=1), MetaAconC(128, full))
            self.metaAcon = MetaAconC(cin, full)
        self.mlp_gamma = nn.Conv2d(cout, cout, 3, padding=1)
        self.mlp_beta = nn.Conv2d(cout, cout, 3, padding=1)


class SPADEUp(nn.Module):
    """Decoder layer `upK`: upsampling conv (or DOG deformable conv), InfoACON, DySPADE.

    `first` marks up0 (no encoder skip); `dog` marks up0/up1, whose
    upsampling is bilinear x2 followed by the deformable conv.
    """

    def __init__(self, cin: int, cout: int, first: bool = False, dog: bool = False, full: bool = False):
        super().__init__()
        self.first, self.dog = first, dog
        if full or not dog:
            self.layers = nn.ConvTranspose2d(cin, cout, 4, 2, 1)
        if full or dog:
            self.dcn = DCN(cin, cout)
        if full or not first:
            self.fc1 = nn.Conv2d(2 * PARSING_NC + STYLE_NC, cout, 3, padding=1)
        if full or first:
            self.fc2 = nn.Conv2d(PARSING_NC + STYLE_NC, cout, 3, padding=1)
        self.fc3 = nn.Conv2d(cout, cout, 3, padding=1)
        self.p1 = nn.Parameter(torch.randn(1, cout, 1, 1))
        self.p2 = nn.Parameter(torch.randn(1, cout, 1, 1))
        self.norm = DySPADE(cin, cout, first, full)
        if full or not first:
            self.en_conv = nn.ConvTranspose2d(cin // 2, PARSING_NC, 4, 2, 1)
            self.metaAcon_en = MetaAconC(PARSING_NC, full)
        self.metaAcon = MetaAconC(cout, full)

    def forward(self, de: torch.Tensor, cond_full: torch.Tensor, en: torch.Tensor | None = None) -> torch.Tensor:
        x = de if en is None else torch.cat([de, en], dim=1)
        if self.dog:
            y = self.dcn(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
        else:
            y = self.layers(x)
        cond = F.interpolate(cond_full, size=y.shape[2:], mode="nearest")
        if en is None:
            h = self.fc2(cond)
        else:
            e = self.metaAcon_en(self.en_conv(en))
            h = self.fc1(torch.cat([cond, e], dim=1))
        a = self.metaAcon(h)
        return ops.ida(y, self.fc3(a), self.norm.mlp_gamma(a), self.norm.mlp_beta(a), self.p1, self.p2)
