"""Plugin `hida_rt::deform_conv`: DCNv2 3x3 (the DOG layers) from the raw offset/mask conv output.

| | |
|---|---|
| inputs | x (N, Cin, H, W), om (N, 3*G*9, H, W) raw offset/mask conv output, w (9, Cin, Cout), b (Cout) fp32 |
| output | out (N, Cout, H, W), x's dtype |
| dtypes | x, om, w, out FP16 together or FP32 together; b always FP32 |
| attributes | none: the G deformable groups follow from om's channels (3 x 9 taps x G) |
| int32 extras | N, C_in, H, W, C_out |
| kernel | kernels/deform_conv.py `deform_conv_kernel`, SPLIT_K = 1 (one launch, no scratch) |
| grid | (cdiv(N*H*W, BLOCK_P), cdiv(C_out, BLOCK_CO), 1); BLOCK_P from the batch-1 pixel count H*W |
| reference | `hida_rt.model.ops.dcn_from_offset_mask_conv` with `ops.weight_from_kcc(w)` |
"""
from typing import List, Tuple

from hida_rt.model import ops

from .contract import PluginSpec, nchw, static, static_hw

# The deformable conv's taps (3x3) and its offset/mask conv's channels per group: 2*9 offsets + 9 mask logits.
TAPS = 9
OM_CHANNELS_PER_GROUP = 3 * TAPS


def deform_groups(om_channels) -> int:
    groups, rest = divmod(static(om_channels, "offset/mask channel count"), OM_CHANNELS_PER_GROUP)
    if rest or groups < 1:
        raise ValueError(f"deform_conv: {om_channels} offset/mask channels are not 3 x 9 taps x groups")
    return groups


def kernel(dtype, shapes):
    from hida_rt.kernels import deform_conv
    _, c_in, _, _ = nchw(shapes[0])
    # BLOCK_P follows the batch-1 pixel count: the DOG layers are latency-bound at 2x2..8x8.
    return deform_conv.aot_kernel(dtype, static(c_in, "input channels"), static(shapes[2][2], "output channels"),
                                  n_pixels=static_hw(shapes[0]), groups=deform_groups(shapes[1][1]))


def scalars(shapes):
    n, c_in, h, w = nchw(shapes[0])
    return {"N": n, "C_in": c_in, "H": h, "W": w, "C_out": shapes[2][2]}


def output_shape(shapes):
    return (shapes[0][0], shapes[2][2], shapes[0][2], shapes[0][3])


def reference(x, om, w, b):
    out = ops.dcn_from_offset_mask_conv(x.float(), om.float(), ops.weight_from_kcc(w.float()), b.float())
    return out.to(x.dtype)


SPEC = PluginSpec("deform_conv", ("x", "om", "w", "b"), kernel, scalars, output_shape, reference,
                  probe=((1, 4, 4, 4), (1, 54, 4, 4), (9, 4, 8), (8,)),
                  doc="DCNv2 3x3 (DOG layers) from the raw offset/mask conv output")
SPECS = (SPEC,)


def register(qdp) -> None:
    """Register the plugin with tensorrt.plugin (`qdp`: export.plugins.tensorrt_qdp, TensorRT imported)."""
    trtp = qdp.trtp

    @trtp.register("hida_rt::deform_conv")
    def deform_conv_desc(x: trtp.TensorDesc, om: trtp.TensorDesc, w: trtp.TensorDesc,
                         b: trtp.TensorDesc) -> trtp.TensorDesc:
        return qdp.output_desc(SPEC, (x, om, w, b))

    @trtp.autotune("hida_rt::deform_conv")
    def deform_conv_autotune(x, om, w, b, outputs) -> List[trtp.AutoTuneCombination]:
        return [qdp.type_combination(SPEC)]

    @trtp.aot_impl("hida_rt::deform_conv")
    def deform_conv_aot(x: trtp.TensorDesc, om: trtp.TensorDesc, w: trtp.TensorDesc, b: trtp.TensorDesc,
                        outputs: Tuple[trtp.TensorDesc], tactic: int) -> qdp.AotResult:
        return qdp.aot_launch(SPEC, (x, om, w, b))
