"""The kernels as PyTorch custom ops (`torch.ops.hida_rt.*`), so torch.compile and CUDA graphs take them.

Each op has a fake (meta) implementation giving the output's shape and
dtype; the real one launches the Triton kernel(s) of kernels/<op>.py.
"""
from __future__ import annotations

import torch

from . import deform_conv as _dcn
from . import ida as _ida
from . import meta_acon as _ma


@torch.library.custom_op("hida_rt::ida", mutates_args=())
def ida(y: torch.Tensor, tgb: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    return _ida.ida(y, tgb, p1, p2)


@ida.register_fake
def _(y, tgb, p1, p2):
    return torch.empty_like(y)


@torch.library.custom_op("hida_rt::meta_acon", mutates_args=())
def meta_acon(x: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, fc1_w: torch.Tensor, fc1_b: torch.Tensor,
              fc2_w: torch.Tensor, fc2_b: torch.Tensor) -> torch.Tensor:
    return _ma.meta_acon(x, p1, p2, fc1_w, fc1_b, fc2_w, fc2_b)


@meta_acon.register_fake
def _(x, p1, p2, fc1_w, fc1_b, fc2_w, fc2_b):
    return torch.empty_like(x)


@torch.library.custom_op("hida_rt::acon_const", mutates_args=())
def acon_const(x: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return _ma.acon_const(x, p1, p2, beta)


@acon_const.register_fake
def _(x, p1, p2, beta):
    return torch.empty_like(x)


@torch.library.custom_op("hida_rt::deform_conv", mutates_args=())
def deform_conv(x: torch.Tensor, om: torch.Tensor, w_kcc: torch.Tensor, bias: torch.Tensor,
                groups: int) -> torch.Tensor:
    return _dcn.deform_conv(x, om, w_kcc, bias, groups)


@deform_conv.register_fake
def _(x, om, w_kcc, bias, groups):
    return x.new_empty(x.shape[0], w_kcc.shape[2], x.shape[2], x.shape[3])
