"""Plugin `hida_rt::ida`: InfoACON + instance statistics (FP32) + DySPADE + residual, from the merged conv output.

| | |
|---|---|
| inputs | y (N, C, H, W), tgb (N, 3C, H, W) = [theta_pre, gamma, beta], p1 (C) fp32, p2 (C) fp32 |
| output | out (N, C, H, W), y's dtype |
| dtypes | y, tgb, out: FP16 together or FP32 together; p1, p2 always FP32 |
| attributes | none (AOT plugins' attributes are not serialized into the engine) |
| int32 extras | n_rows = N*C, C, HW = H*W |
| kernel | kernels/ida.py `ida_row_kernel` (row path: both passes in one program, no scratch) |
| grid | (cdiv(n_rows, ROWS), 1, 1); ROWS and BLOCK from H*W (`ida.row_config`), fixed at build time |
| reference | `hida_rt.model.ops.ida_merged` |

Registration needs no `from __future__ import annotations` here: tensorrt.plugin
checks the annotations as classes.
"""
from typing import List, Tuple

from hida_rt.model import ops

from .contract import PluginSpec, like_first, nchw, static_hw


def kernel(dtype, shapes):
    from hida_rt.kernels import ida
    return ida.aot_kernel(dtype, static_hw(shapes[0]))


def scalars(shapes):
    n, c, h, w = nchw(shapes[0])
    return {"n_rows": n * c, "C": c, "HW": h * w}


def reference(y, tgb, p1, p2):
    c = y.shape[1]
    return ops.ida_merged(y, tgb, p1.reshape(1, c, 1, 1), p2.reshape(1, c, 1, 1))


SPEC = PluginSpec("ida", ("y", "tgb", "p1", "p2"), kernel, scalars, like_first, reference,
                  probe=((1, 4, 4, 4), (1, 12, 4, 4), (4,), (4,)),
                  doc="InfoACON + instance statistics (FP32) + DySPADE + residual, from the merged conv output")
SPECS = (SPEC,)


def register(qdp) -> None:
    """Register the plugin with tensorrt.plugin (`qdp`: export.plugins.tensorrt_qdp, TensorRT imported)."""
    trtp = qdp.trtp

    @trtp.register("hida_rt::ida")
    def ida_desc(y: trtp.TensorDesc, tgb: trtp.TensorDesc, p1: trtp.TensorDesc,
                 p2: trtp.TensorDesc) -> trtp.TensorDesc:
        return y.like()

    @trtp.autotune("hida_rt::ida")
    def ida_autotune(y, tgb, p1, p2, outputs) -> List[trtp.AutoTuneCombination]:
        return [qdp.type_combination(SPEC)]

    @trtp.aot_impl("hida_rt::ida")
    def ida_aot(y: trtp.TensorDesc, tgb: trtp.TensorDesc, p1: trtp.TensorDesc, p2: trtp.TensorDesc,
                outputs: Tuple[trtp.TensorDesc], tactic: int) -> qdp.AotResult:
        return qdp.aot_launch(SPEC, (y, tgb, p1, p2))
