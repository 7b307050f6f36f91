"""The HIDA generator (docs/model.md), names as in the published checkpoint."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import InputError

from .blocks import MetaAconC, SPADEUp, UNetDown

# The net has 8 stride-2 stages: H and W must be multiples of this.
SIZE_MULTIPLE = 256
# (name, in, out) of the decoder; up0/up1 are the DOG (deformable) layers.
DECODER = (("up0", 512, 512), ("up1", 1024, 512), ("up2", 1024, 512), ("up3", 1024, 512),
           ("up4", 1024, 256), ("up5", 512, 128), ("up6", 256, 64))
DOG_LAYERS = ("up0", "up1")


class HIDAGenerator(nn.Module):
    """photo (N,3,H,W) in [-1,1], depth (N,1,H,W) in [0,1], style (N,3) -> sketch (N,1,H,W) in [-1,1].

    full=False holds only what inference reads (~81 M parameters); full=True
    adds the training-only parameters so the state dict has the authors'
    complete layout (~109 M).
    """

    def __init__(self, full: bool = False):
        super().__init__()
        self.down_rgb = nn.Conv2d(3, 64, 4, 2, 1)
        self.down_par = nn.Conv2d(1, 64, 4, 2, 1)
        self.down2 = UNetDown(128, 128, full=full)
        self.down3 = UNetDown(128, 256, full=full)
        self.down4 = UNetDown(256, 512, full=full)
        self.down5 = UNetDown(512, 512, full=full)
        self.down6 = UNetDown(512, 512, full=full)
        self.down7 = UNetDown(512, 512, full=full)
        self.down8 = UNetDown(512, 512, normalize=False, full=full)
        for name, cin, cout in DECODER:
            setattr(self, name, SPADEUp(cin, cout, first=name == "up0", dog=name in DOG_LAYERS, full=full))
        self.final_rgb = nn.Sequential(MetaAconC(128, full), nn.ConvTranspose2d(128, 1, 4, 2, 1), nn.Tanh())
        if full:
            # The depth-reconstruction head: a training loss only.
            self.final_par = nn.Sequential(MetaAconC(128, full), nn.ConvTranspose2d(128, 1, 4, 2, 1), nn.Tanh())

    def forward(self, photo: torch.Tensor, depth: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        n, _, h, w = photo.shape
        style_map = style.to(photo.dtype)[:, :, None, None].expand(n, style.shape[1], h, w)
        cond = torch.cat([depth, style_map], dim=1)
        d1r = self.down_rgb(photo)
        d1 = torch.cat([d1r, self.down_par(depth)], dim=1)
        d2 = self.down2(d1)
        d3 = self.down3(d2)
        d4 = self.down4(d3)
        d5 = self.down5(d4)
        d6 = self.down6(d5)
        d7 = self.down7(d6)
        d8 = self.down8(d7)
        u = self.up0(d8, cond)
        for layer, skip in zip((self.up1, self.up2, self.up3, self.up4, self.up5, self.up6),
                               (d7, d6, d5, d4, d3, d2)):
            u = layer(u, cond, skip)
        return self.final_rgb(torch.cat([u, d1r], dim=1))


def check_size(height: int, width: int) -> None:
    """InputError unless height and width are positive multiples of SIZE_MULTIPLE."""
    for name, v in (("height", height), ("width", width)):
        if not isinstance(v, int) or v <= 0 or v % SIZE_MULTIPLE:
            raise InputError(f"--{name} {v} is not a positive multiple of {SIZE_MULTIPLE} "
                             f"(the network has 8 stride-2 stages); use 256, 512, ...")


def inference_shapes() -> dict[str, torch.Size]:
    """Key -> shape of every tensor inference needs (the keys a checkpoint must carry)."""
    with torch.device("meta"):
        return {k: v.shape for k, v in HIDAGenerator(full=False).state_dict().items()}


def full_shapes() -> dict[str, torch.Size]:
    """Key -> shape of the authors' complete generator state dict."""
    with torch.device("meta"):
        return {k: v.shape for k, v in HIDAGenerator(full=True).state_dict().items()}
