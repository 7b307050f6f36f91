"""Plugin `hida_rt::acon_const`: MetaACON whose input is instance-normalised, so its switch is a build-time constant.

Where x is an InstanceNorm output (down3..down8) its channel means are 0 and
beta = sigmoid(fc2(fc1(0))) is fixed (the graph pass computes it once); the
op is then elementwise.

| | |
|---|---|
| inputs | x (N, C, H, W), p1 (C), p2 (C), beta (C) |
| output | out (N, C, H, W), x's dtype |
| dtypes | x, out FP16 together or FP32 together; p1, p2, beta always FP32 |
| attributes | none |
| int32 extras | n_rows = N*C, C, HW = H*W |
| kernel | kernels/meta_acon.py `acon_const_kernel` |
| grid | (cdiv(n_rows, ROWS), cdiv(HW, BLOCK), 1); ROWS, BLOCK from H*W (`meta_acon.rows_config`) |
| reference | `hida_rt.model.ops.acon` with the per-channel beta |
"""
from typing import List, Tuple

from hida_rt.model import ops

from .contract import PluginSpec, like_first, nchw, static_hw


def kernel(dtype, shapes):
    from hida_rt.kernels import meta_acon
    return meta_acon.aot_const_kernel(dtype, static_hw(shapes[0]))


def scalars(shapes):
    n, c, h, w = nchw(shapes[0])
    return {"n_rows": n * c, "C": c, "HW": h * w}


def reference(x, p1, p2, beta):
    c = x.shape[1]
    out = ops.acon(x.float(), p1.reshape(1, c, 1, 1), p2.reshape(1, c, 1, 1), beta.reshape(1, c, 1, 1))
    return out.to(x.dtype)


SPEC = PluginSpec("acon_const", ("x", "p1", "p2", "beta"), kernel, scalars, like_first, reference,
                  probe=((1, 4, 4, 4), (4,), (4,), (4,)),
                  doc="MetaACON whose input is instance-normalised: a build-time switch, elementwise")
SPECS = (SPEC,)


def register(qdp) -> None:
    """Register the plugin with tensorrt.plugin (`qdp`: export.plugins.tensorrt_qdp, TensorRT imported)."""
    trtp = qdp.trtp

    @trtp.register("hida_rt::acon_const")
    def acon_const_desc(x: trtp.TensorDesc, p1: trtp.TensorDesc, p2: trtp.TensorDesc,
                        beta: trtp.TensorDesc) -> trtp.TensorDesc:
        return x.like()

    @trtp.autotune("hida_rt::acon_const")
    def acon_const_autotune(x, p1, p2, beta, outputs) -> List[trtp.AutoTuneCombination]:
        return [qdp.type_combination(SPEC)]

    @trtp.aot_impl("hida_rt::acon_const")
    def acon_const_aot(x: trtp.TensorDesc, p1: trtp.TensorDesc, p2: trtp.TensorDesc, beta: trtp.TensorDesc,
                       outputs: Tuple[trtp.TensorDesc], tactic: int) -> qdp.AotResult:
        return qdp.aot_launch(SPEC, (x, p1, p2, beta))
