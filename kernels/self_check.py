"""The triton backend's first-use probe: each kernel at one real layer shape, then the fused network.

Fresh random inputs (and, for the network, fresh random weights with spread
outputs, so the comparison sees real signal) on the device the backend will
use. Each kernel is compared with its plain-PyTorch reference under the
tolerances of kernels/_tolerances.py, on a NaN-poisoned output buffer (an
element a kernel skips stays NaN and fails); the fused network with the
kernels against eager FP32 under the network targets there. When a kernel
fails, the network is not run: the verdict is already known, and the
failing kernel says more than the network would.

On a CPU device the kernels run in Triton's interpreter (TRITON_INTERPRET=1
before hida_rt.kernels is imported): that is how CI proves the probe.
hida_rt.self_check keys, caches and reads the verdicts.
"""
from __future__ import annotations

import random
from typing import Callable

import torch
import torch.nn.functional as F

from hida_rt.model import HIDAGenerator, ops
from hida_rt.model.random_init import random_generator_state

from . import _tolerances as tol
from ._common import ieee_fp32_convs

# One real layer shape per kernel, batch 1 (docs/model.md): IDA of up5, the live MetaACON of up6's input, the
# constant-switch MetaACON of down3, the deformable conv of up1 (DOG).
IDA_SHAPE = (1, 128, 64, 64)
META_ACON_SHAPE = (1, 64, 128, 128)
ACON_CONST_SHAPE = (1, 128, 64, 64)
DEFORM_SHAPE = (1, 1024, 512, 4, 4)   # n, c_in, c_out, h, w
NETWORK_SIZE = 256
SPREAD_GAIN = 1.0   # random weights whose sketches span [-1, 1] (the authors' init gives flat grey)


def _kernels():
    # Imported when the probe runs: importing the kernels decides, once, whether Triton interprets them.
    from . import deform_conv, ida, meta_acon
    return ida, meta_acon, deform_conv


def _poisoned(shape, dtype, device) -> torch.Tensor:
    return torch.full(tuple(shape), float("nan"), dtype=dtype, device=device)


def _kernel_check(name: str, shape: tuple, dtype: torch.dtype, out: torch.Tensor, ref: torch.Tensor) -> dict:
    atol, rtol = tol.tolerance(name, dtype)
    out, ref = out.float().cpu(), ref.float().cpu()
    finite = torch.isfinite(out)
    diff = (out - ref).abs()
    # Each element's |d| as a fraction of its own limit: <= 1 everywhere passes (torch.testing.assert_close's rule).
    ratio = torch.where(finite, diff / (atol + rtol * ref.abs()), torch.full_like(diff, float("inf")))
    figures = {"max_abs": float(diff[finite].max()) if finite.any() else float("inf"),
               "worst_of_limit": float(ratio.max()), "nonfinite": int((~finite).sum())}
    return dict(name=f"{name} {tuple(shape)} {str(dtype).removeprefix('torch.')}", kind="kernel",
                passed=figures["nonfinite"] == 0 and figures["worst_of_limit"] <= 1, figures=figures,
                limits=f"|d| <= {atol:g} + {rtol:g} |ref|")


def _meta_params(gen: torch.Generator, c: int, device):
    hid = max(16, c // 16)  # MetaAconC's hidden width
    p1, p2 = torch.randn(c, generator=gen), torch.randn(c, generator=gen) * 0.5
    fc1_w, fc1_b = torch.randn(hid, c, 1, 1, generator=gen) / c ** 0.5, torch.randn(hid, generator=gen)
    fc2_w, fc2_b = torch.randn(c, hid, 1, 1, generator=gen) / hid ** 0.5, torch.randn(c, generator=gen)
    return [t.to(device) for t in (p1, p2, fc1_w, fc1_b, fc2_w, fc2_b)]


def check_ida(gen, device, dtype) -> dict:
    ida, _, _ = _kernels()
    n, c, h, w = IDA_SHAPE
    y = (torch.randn(n, c, h, w, generator=gen) * 1.5).to(device, dtype)
    tgb = torch.randn(n, 3 * c, h, w, generator=gen).to(device, dtype)
    p1, p2 = torch.randn(c, generator=gen).to(device), (torch.randn(c, generator=gen) * 0.5).to(device)
    out = ida.ida(y, tgb, p1, p2, out=_poisoned(y.shape, dtype, device))
    ref = ops.ida_merged(y.float(), tgb.float(), p1.view(1, c, 1, 1), p2.view(1, c, 1, 1))
    return _kernel_check("ida", IDA_SHAPE, dtype, out, ref)


def check_meta_acon(gen, device, dtype) -> dict:
    _, ma, _ = _kernels()
    n, c, h, w = META_ACON_SHAPE
    x = (torch.randn(n, c, h, w, generator=gen) + torch.randn(1, c, 1, 1, generator=gen)).to(device, dtype)
    p1, p2, fc1_w, fc1_b, fc2_w, fc2_b = _meta_params(gen, c, device)
    out = ma.meta_acon(x, p1, p2, fc1_w, fc1_b, fc2_w, fc2_b, out=_poisoned(x.shape, dtype, device))
    ref = ops.meta_acon(x.float(), p1.view(1, c, 1, 1), p2.view(1, c, 1, 1), fc1_w, fc1_b, fc2_w, fc2_b)
    return _kernel_check("meta_acon", META_ACON_SHAPE, dtype, out, ref)


def check_acon_const(gen, device, dtype) -> dict:
    _, ma, _ = _kernels()
    n, c, h, w = ACON_CONST_SHAPE
    # An InstanceNorm output, as down3..down8 read: the constant switch equals the live one.
    x = F.instance_norm(torch.randn(n, c, h, w, generator=gen) * 3 + 1).to(device, dtype)
    p1, p2, fc1_w, fc1_b, fc2_w, fc2_b = _meta_params(gen, c, device)
    beta = ops.constant_beta(fc1_w, fc1_b, fc2_w, fc2_b)
    out = ma.acon_const(x, p1, p2, beta, out=_poisoned(x.shape, dtype, device))
    ref = ops.meta_acon(x.float(), p1.view(1, c, 1, 1), p2.view(1, c, 1, 1), fc1_w, fc1_b, fc2_w, fc2_b)
    return _kernel_check("acon_const", ACON_CONST_SHAPE, dtype, out, ref)


def check_deform_conv(gen, device, dtype) -> dict:
    _, _, dcn = _kernels()
    n, cin, cout, h, w = DEFORM_SHAPE
    groups = ops.DCN_GROUPS
    x = torch.randn(n, cin, h, w, generator=gen)
    om = torch.randn(n, 27 * groups, h, w, generator=gen)
    om[:, :18 * groups] *= 2.0  # offsets reaching beyond the 4x4 map; the last third stays mask logits
    weight = torch.randn(cout, cin, 3, 3, generator=gen) / (9 * cin) ** 0.5
    bias = torch.randn(cout, generator=gen)
    x, om = x.to(device, dtype), om.to(device, dtype)
    w_kcc = dcn.kcc_weight(weight).to(device, dtype)
    out = dcn.deform_conv(x, om, w_kcc, bias.to(device), groups, out=_poisoned((n, cout, h, w), dtype, device))
    # The reference in FP32 on the kernel's own (possibly FP16-rounded) inputs.
    ref = ops.dcn_from_offset_mask_conv(x.float().cpu(), om.float().cpu(),
                                        w_kcc.float().cpu().view(3, 3, cin, cout).permute(3, 2, 0, 1), bias)
    return _kernel_check("deform_conv", DEFORM_SHAPE, dtype, out, ref)


KERNEL_CHECKS: tuple[Callable, ...] = (check_ida, check_meta_acon, check_acon_const, check_deform_conv)


def random_model(seed: int) -> HIDAGenerator:
    from hida_rt.checkpoint import check_generator_state
    model = HIDAGenerator(full=False)
    model.load_state_dict(check_generator_state(random_generator_state(seed, gain=SPREAD_GAIN)), strict=True)
    return model.eval().requires_grad_(False)


def check_network(seed: int, device, dtype) -> dict:
    from .fused_model import FusedHIDA
    gen = torch.Generator().manual_seed(seed)
    size = NETWORK_SIZE
    photo = torch.rand(1, 3, size, size, generator=gen) * 2 - 1
    depth = torch.rand(1, 1, size, size, generator=gen)
    style = torch.softmax(torch.randn(1, 3, generator=gen) * 4, dim=1)
    model = random_model(seed).to(device)
    inputs = [t.to(device) for t in (photo, depth, style)]
    with torch.no_grad(), ieee_fp32_convs(True):
        want = model(*inputs)
    fused = FusedHIDA(model, dtype, use_kernels=True).to(device)
    with torch.no_grad(), ieee_fp32_convs(dtype == torch.float32):
        got = fused(*inputs)
    precision = "fp32" if dtype == torch.float32 else "fp16"
    figures = tol.sketch_figures(got, want)
    figures.pop("elements")
    return dict(name=f"fused network {size}x{size} {precision} vs eager fp32", kind="network",
                passed=tol.sketch_meets(figures, precision), figures=figures, limits=tol.sketch_targets(precision))


def probe(device: torch.device, dtype: torch.dtype = torch.float16, seed: int | None = None) -> tuple[list[dict], str]:
    """(checks, note): every kernel at its layer shape, then the fused network unless a kernel failed."""
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    gen = torch.Generator().manual_seed(seed)
    checks = []
    for check in KERNEL_CHECKS:
        try:
            checks.append(check(gen, device, dtype))
        except Exception as e:  # a kernel that cannot even launch here is a failed check, with its reason
            checks.append(dict(name=check.__name__.removeprefix("check_"), kind="kernel", passed=False,
                               figures={"error": f"{type(e).__name__}: {e}".splitlines()[0][:200]}))
    if not all(c["passed"] for c in checks):
        return checks, f"seed {seed}; the network was not run because a kernel failed"
    try:
        checks.append(check_network(seed, device, dtype))
    except Exception as e:
        checks.append(dict(name="fused network", kind="network", passed=False,
                           figures={"error": f"{type(e).__name__}: {e}".splitlines()[0][:200]}))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return checks, f"seed {seed}"
