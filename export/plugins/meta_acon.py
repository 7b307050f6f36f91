"""Plugins `hida_rt::meta_acon_mean` and `hida_rt::meta_acon_apply`: MetaACON-C with a live switch, two launches.

The switch MLP mixes channels, so no program can finish before every channel
mean of its sample is known: launch 1 writes the FP32 means, launch 2
recomputes the tiny MLP per program from them and applies ACON.

`meta_acon_mean`

| | |
|---|---|
| inputs | x (N, C, H, W) |
| output | mean (N, C) fp32 |
| dtypes | x FP16 or FP32; mean always FP32 |
| attributes | none |
| int32 extras | n_rows = N*C, HW = H*W |
| kernel | kernels/meta_acon.py `meta_acon_mean_kernel` |
| grid | (cdiv(n_rows, ROWS), 1, 1); ROWS, BLOCK from H*W (`meta_acon.rows_config`) |
| reference | MetaACON's own mean (over H, then W) in FP32 |

`meta_acon_apply`

| | |
|---|---|
| inputs | x (N, C, H, W), mean (N, C), fc1_w (HID, C), fc1_b (HID), fc2_w (C, HID), fc2_b (C), p1 (C), p2 (C) |
| output | out (N, C, H, W), x's dtype |
| dtypes | x, out FP16 together or FP32 together; every other input FP32 |
| attributes | none |
| int32 extras | N, C, HW = H*W, HID |
| kernel | `meta_acon_apply_kernel` |
| grid | (N * cdiv(C, BLOCK_C), cdiv(HW, BLOCK_HW), 1); tiles from C, H*W, HID (`meta_acon.apply_config`) |
| reference | `ops.meta_acon_beta` of the mean, then `ops.acon` |
"""
from typing import List, Tuple

from hida_rt.model import ops

from .contract import PluginSpec, like_first, nchw, static, static_hw


def mean_kernel(dtype, shapes):
    from hida_rt.kernels import meta_acon
    return meta_acon.aot_mean_kernel(dtype, static_hw(shapes[0]))


def mean_scalars(shapes):
    n, c, h, w = nchw(shapes[0])
    return {"n_rows": n * c, "HW": h * w}


def mean_reference(x):
    # MetaACON's own mean (over H, then over W; ops.meta_acon_beta), in FP32.
    n, c = x.shape[:2]
    return x.float().mean(dim=2, keepdim=True).mean(dim=3, keepdim=True).reshape(n, c)


def apply_kernel(dtype, shapes):
    from hida_rt.kernels import meta_acon
    _, c, _, _ = nchw(shapes[0])
    return meta_acon.aot_apply_kernel(dtype, static(c, "channel count"), static_hw(shapes[0]),
                                      static(shapes[2][0], "hidden width"))


def apply_scalars(shapes):
    n, c, h, w = nchw(shapes[0])
    return {"N": n, "C": c, "HW": h * w, "HID": shapes[2][0]}


def apply_reference(x, mean, fc1_w, fc1_b, fc2_w, fc2_b, p1, p2):
    n, c = x.shape[:2]
    hid = fc1_b.numel()
    # meta_acon_beta of a 1x1 map is the MLP of that value: its mean is the value itself.
    beta = ops.meta_acon_beta(mean.float().reshape(n, c, 1, 1), fc1_w.reshape(hid, c, 1, 1), fc1_b,
                              fc2_w.reshape(c, hid, 1, 1), fc2_b)
    out = ops.acon(x.float(), p1.reshape(1, c, 1, 1), p2.reshape(1, c, 1, 1), beta)
    return out.to(x.dtype)


MEAN = PluginSpec("meta_acon_mean", ("x",), mean_kernel, mean_scalars,
                  lambda shapes: (shapes[0][0], shapes[0][1]), mean_reference,
                  probe=((1, 4, 4, 4),), doc="MetaACON, launch 1 of 2: FP32 channel means")
APPLY = PluginSpec("meta_acon_apply", ("x", "mean", "fc1_w", "fc1_b", "fc2_w", "fc2_b", "p1", "p2"), apply_kernel,
                   apply_scalars, like_first, apply_reference,
                   probe=((1, 4, 4, 4), (1, 4), (16, 4), (16,), (4, 16), (4,), (4,), (4,)),
                   doc="MetaACON, launch 2 of 2: the switch MLP per program, then ACON")
SPECS = (MEAN, APPLY)


def register(qdp) -> None:
    """Register both plugins with tensorrt.plugin (`qdp`: export.plugins.tensorrt_qdp, TensorRT imported)."""
    trtp = qdp.trtp

    @trtp.register("hida_rt::meta_acon_mean")
    def meta_acon_mean_desc(x: trtp.TensorDesc) -> trtp.TensorDesc:
        return qdp.output_desc(MEAN, (x,))

    @trtp.autotune("hida_rt::meta_acon_mean")
    def meta_acon_mean_autotune(x, outputs) -> List[trtp.AutoTuneCombination]:
        return [qdp.type_combination(MEAN)]

    @trtp.aot_impl("hida_rt::meta_acon_mean")
    def meta_acon_mean_aot(x: trtp.TensorDesc, outputs: Tuple[trtp.TensorDesc], tactic: int) -> qdp.AotResult:
        return qdp.aot_launch(MEAN, (x,))

    @trtp.register("hida_rt::meta_acon_apply")
    def meta_acon_apply_desc(x: trtp.TensorDesc, mean: trtp.TensorDesc, fc1_w: trtp.TensorDesc,
                             fc1_b: trtp.TensorDesc, fc2_w: trtp.TensorDesc, fc2_b: trtp.TensorDesc,
                             p1: trtp.TensorDesc, p2: trtp.TensorDesc) -> trtp.TensorDesc:
        return x.like()

    @trtp.autotune("hida_rt::meta_acon_apply")
    def meta_acon_apply_autotune(x, mean, fc1_w, fc1_b, fc2_w, fc2_b, p1, p2,
                                 outputs) -> List[trtp.AutoTuneCombination]:
        return [qdp.type_combination(APPLY)]

    @trtp.aot_impl("hida_rt::meta_acon_apply")
    def meta_acon_apply_aot(x: trtp.TensorDesc, mean: trtp.TensorDesc, fc1_w: trtp.TensorDesc,
                            fc1_b: trtp.TensorDesc, fc2_w: trtp.TensorDesc, fc2_b: trtp.TensorDesc,
                            p1: trtp.TensorDesc, p2: trtp.TensorDesc, outputs: Tuple[trtp.TensorDesc],
                            tactic: int) -> qdp.AotResult:
        return qdp.aot_launch(APPLY, (x, mean, fc1_w, fc1_b, fc2_w, fc2_b, p1, p2))
