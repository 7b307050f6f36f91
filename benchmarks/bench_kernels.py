"""Each Triton kernel against its eager PyTorch equivalent, at the layer shapes it serves (GPU).

Both peers run FP16 data in CUDA graphs (device time, not launch overhead),
rotating over enough input sets to spill the L2 cache. GB/s counts the
bytes an op must move (each input read once, the output written once) and
is reported as a fraction of the device copy bandwidth measured first in
the same session. Skips without a CUDA GPU.
"""
from __future__ import annotations

import math

import pytest
import torch
from harness import bench_env_flag

from hida_rt.model import ops

ON_GPU = torch.cuda.is_available()
pytestmark = pytest.mark.skipif(not ON_GPU, reason="kernel benchmarks need a CUDA GPU")
BATCHES = [int(b) for b in bench_env_flag("HIDA_BENCH_KERNEL_BATCHES", "1,8,32")]
DT = torch.float16
MAX_SETS = 8


def rotating(make, set_bytes: int):
    """Enough input sets (from make()) that cycling through them spills the L2 cache."""
    l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20)
    return [make() for _ in range(max(1, min(MAX_SETS, math.ceil(2 * l2 / set_bytes))))]


def over(sets, op):
    """One call runs `op` once on every set: the harness divides by len(sets)."""
    def fn():
        for s in sets:
            op(*s)
    return fn


def test_copy_bandwidth(bench_harness, benchmark):
    bench_harness.measure_copy_bandwidth(benchmark)


def nbytes(*tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


IDA_SHAPES = {"up1": (512, 4), "up4": (256, 32), "up5": (128, 64), "up6": (64, 128)}


@pytest.mark.parametrize("layer", list(IDA_SHAPES))
@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("peer", ["eager", "triton"])
def test_ida(bench, layer, n, peer):
    from hida_rt.kernels import ida
    c, hw = IDA_SHAPES[layer]
    p1, p2 = torch.randn(c, device="cuda"), torch.randn(c, device="cuda")

    def make():
        return (torch.randn(n, c, hw, hw, device="cuda", dtype=DT), torch.randn(n, 3 * c, hw, hw, device="cuda", dtype=DT))
    y, tgb = make()
    sets = rotating(make, nbytes(y, tgb))
    if peer == "eager":
        p1h, p2h = p1.view(1, c, 1, 1).to(DT), p2.view(1, c, 1, 1).to(DT)
        op = lambda y, tgb: ops.ida_merged(y, tgb, p1h, p2h)  # noqa: E731
    else:
        op = lambda y, tgb: ida.ida(y, tgb, p1, p2)  # noqa: E731
    bench(over(sets, op), group=f"ida {layer} ({c}x{hw}x{hw}) batch {n}", peer=peer, calls=len(sets),
          items=n, bytes_moved=nbytes(y, tgb, y), graph=True)


# (C, HW) of MetaACON inputs: live mean at down2 / final_rgb (128 @ 128^2) and up0's h (512 @ 2^2);
# constant switch at down3 (128 @ 64^2) and down6 (512 @ 8^2).
ACON_CASES = {"live down2": (True, 128, 128), "live up0": (True, 512, 2),
              "const down3": (False, 128, 64), "const down6": (False, 512, 8)}


@pytest.mark.parametrize("case", list(ACON_CASES))
@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("peer", ["eager", "triton"])
def test_meta_acon(bench, case, n, peer):
    from hida_rt.kernels import meta_acon as K
    live, c, hw = ACON_CASES[case]
    hid = max(16, c // 16)
    p1, p2 = torch.randn(c, device="cuda"), torch.randn(c, device="cuda")
    fc1_w, fc1_b = torch.randn(hid, c, 1, 1, device="cuda") / c ** 0.5, torch.randn(hid, device="cuda")
    fc2_w, fc2_b = torch.randn(c, hid, 1, 1, device="cuda") / hid ** 0.5, torch.randn(c, device="cuda")
    beta = K.constant_beta(fc1_w, fc1_b, fc2_w, fc2_b)
    x = torch.randn(n, c, hw, hw, device="cuda", dtype=DT)
    sets = rotating(lambda: (torch.randn(n, c, hw, hw, device="cuda", dtype=DT),), nbytes(x))
    h = [t.to(DT) for t in (p1.view(1, c, 1, 1), p2.view(1, c, 1, 1), fc1_w, fc1_b, fc2_w, fc2_b, beta.view(1, c, 1, 1))]
    if peer == "eager" and live:
        op = lambda x: ops.meta_acon(x, *h[:6])  # noqa: E731
    elif peer == "eager":
        op = lambda x: ops.acon(x, h[0], h[1], h[6])  # noqa: E731
    elif live:
        op = lambda x: K.meta_acon(x, p1, p2, fc1_w, fc1_b, fc2_w, fc2_b)  # noqa: E731
    else:
        op = lambda x: K.acon_const(x, p1, p2, beta)  # noqa: E731
    bench(over(sets, op), group=f"meta_acon {case} ({c}x{hw}x{hw}) batch {n}", peer=peer, calls=len(sets),
          items=n, bytes_moved=2 * nbytes(x), graph=True)


DCN_CASES = {"up0": (512, 2), "up1": (1024, 4)}


@pytest.mark.parametrize("layer", list(DCN_CASES))
@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("peer", ["eager", "triton"])
def test_deform_conv(bench, layer, n, peer):
    from hida_rt.kernels import deform_conv as K
    cin, hw = DCN_CASES[layer]
    cout = 512
    weight = torch.randn(cout, cin, 3, 3, device="cuda", dtype=DT) / (9 * cin) ** 0.5
    w_kcc, bias = K.kcc_weight(weight), torch.randn(cout, device="cuda")

    def make():
        return (torch.randn(n, cin, hw, hw, device="cuda", dtype=DT), torch.randn(n, 54, hw, hw, device="cuda", dtype=DT))
    x, om = make()
    sets = rotating(make, nbytes(x, om, weight))
    if peer == "eager":
        bias_h = bias.to(DT)
        op = lambda x, om: ops.dcn_from_offset_mask_conv(x, om, weight, bias_h)  # noqa: E731
    else:
        op = lambda x, om: K.deform_conv(x, om, w_kcc, bias)  # noqa: E731
    out_bytes = n * cout * hw * hw * 2
    bench(over(sets, op), group=f"deform_conv {layer} ({cin}->{cout} @ {hw}x{hw}) batch {n}", peer=peer,
          calls=len(sets), items=n, bytes_moved=nbytes(x, om, weight) + out_bytes,
          flops=2 * n * hw * hw * cout * cin * 9, graph=True)
