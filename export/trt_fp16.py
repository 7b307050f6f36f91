"""The explicit FP16 graph a strongly typed TensorRT build needs (TensorRT 11 has no BuilderFlag.FP16).

What becomes FP16 and what stays FP32, and why:

- Engine inputs and output stay FP32 (a Cast after each input, one before
  `sketch`): callers hand over and get back the same tensors as from every
  other backend, and the casts cost nothing next to the first conv.
- Weights and activations of standard ops (Conv, ConvTranspose, Resize,
  Concat, Tanh, ...) are FP16; TensorRT accumulates convolutions in FP32.
- Plugin inputs take the dtypes their kernel declares (hida_rt.kernels
  `AotKernel.dtypes`): data FP16, the small per-channel parameters, MLP
  weights and the deformable conv's bias FP32, MetaACON's channel means FP32.
  The kernels compute statistics, MLPs and sampling positions in FP32.
- The encoder's InstanceNormalization runs in FP32 between two Casts: FP16
  sums over up to 128x128 values lose the statistics (the classic FP16
  InstanceNorm failure), and an explicit FP32 island is what a strongly
  typed network honours.
- Resize's `roi`/`scales` inputs stay FP32 (the ONNX type constraint).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from . import trt_patterns as pat
from .graph_names import FreshNames
from .plugins.specs import DOMAIN, plugin_spec

FLOAT_TYPES = (np.float32, np.float64)
# (op, input index) whose tensor must stay FP32 whatever the data type.
FP32_SLOTS = {("Resize", 1), ("Resize", 2)}
_TO = {np.float16: onnx.TensorProto.FLOAT16, np.float32: onnx.TensorProto.FLOAT}


def _is_float(dtype) -> bool:
    try:
        return np.dtype(dtype).type in FLOAT_TYPES
    except TypeError:
        return False


def _wants_fp32(node: gs.Node, index: int) -> bool:
    if node.domain == DOMAIN:
        spec = plugin_spec(node.op)
        return spec.dtypes("fp16")[0][spec.inputs[index]] == "fp32"
    return node.op == "InstanceNormalization" or (node.op, index) in FP32_SLOTS


def _cast(names, x: gs.Tensor, dtype, base: str, shape=None) -> tuple[gs.Node, gs.Variable]:
    out = gs.Variable(names(base), dtype=dtype, shape=shape)
    return gs.Node("Cast", name=names(base + "/Cast"), attrs={"to": _TO[dtype]}, inputs=[x], outputs=[out]), out


def _constant_nodes_to_tensors(graph: gs.Graph) -> int:
    """Float Constant nodes -> gs.Constant tensors, so every float constant is handled in one place."""
    n = 0
    for node in [n for n in graph.nodes if n.op == "Constant"]:
        out = node.outputs[0]
        value = pat.const(out)
        if value is None or not _is_float(value.dtype):
            continue
        tensor = gs.Constant(out.name + "/value", np.asarray(value))
        for user in list(out.outputs):
            user.inputs = [tensor if t is out else t for t in user.inputs]
        node.outputs.clear()
        n += 1
    return n


def to_fp16(graph: gs.Graph) -> dict[str, int]:
    """Rewrite the graph for FP16 data (see module doc); returns counts of what changed."""
    names = FreshNames(graph)
    stats: Counter[str] = Counter()
    stats["constant_nodes"] = _constant_nodes_to_tensors(graph)
    original = list(graph.nodes)
    added: list[gs.Node] = []
    keep_fp32: set[int] = set()

    # Float constants: FP16 wherever the reading slot takes data, FP32 where it must stay.
    uses: dict[int, list[tuple[gs.Node, int]]] = {}
    for node in original:
        for i, t in enumerate(node.inputs):
            if isinstance(t, gs.Constant) and _is_float(t.values.dtype):
                uses.setdefault(id(t), []).append((node, i))
    for slots in uses.values():
        t = slots[0][0].inputs[slots[0][1]]
        fp32 = [s for s in slots if _wants_fp32(*s)]
        half = gs.Constant(t.name if not fp32 else names(t.name + ".fp16"), np.asarray(t.values).astype(np.float16))
        single = gs.Constant(t.name, np.asarray(t.values).astype(np.float32)) if fp32 else None
        for node, i in slots:
            node.inputs[i] = single if (node, i) in fp32 else half
        stats["fp16_weights" if len(fp32) < len(slots) else "fp32_weights"] += 1

    for node in original:
        if node.op == "Cast" and node.attrs.get("to") == onnx.TensorProto.FLOAT:
            node.attrs["to"] = onnx.TensorProto.FLOAT16
            stats["casts_retargeted"] += 1
        value = node.attrs.get("value")
        if node.op == "ConstantOfShape" and isinstance(value, gs.Constant) and _is_float(value.values.dtype):
            node.attrs["value"] = gs.Constant(value.name, np.asarray(value.values).astype(np.float16))
        if node.op == "InstanceNormalization":
            x, y = node.inputs[0], node.outputs[0]
            cast_in, x32 = _cast(names, x, np.float32, f"{x.name}/fp32", x.shape)
            y32 = gs.Variable(names(f"{y.name}/fp32"), dtype=np.float32, shape=y.shape)
            node.inputs[0] = x32
            node.outputs = [y32]
            cast_out, _ = _cast(names, y32, np.float16, f"{y.name}/fp16")
            cast_out.outputs = [y]
            keep_fp32.update((id(x32), id(y32)))
            added += [cast_in, cast_out]
            stats["fp32_instance_norms"] += 1

    for inp in graph.inputs:
        if not _is_float(inp.dtype):
            continue
        users = list(inp.outputs)
        cast, half = _cast(names, inp, np.float16, f"{inp.name}/fp16", inp.shape)
        for user in users:
            user.inputs = [half if t is inp else t for t in user.inputs]
        added.append(cast)
        stats["input_casts"] += 1
    for i, out in enumerate(list(graph.outputs)):
        if not _is_float(out.dtype):
            continue
        half = gs.Variable(names(f"{out.name}/fp16"), dtype=np.float16, shape=out.shape)
        writer = out.inputs[0]
        writer.outputs = [half if t is out else t for t in writer.outputs]
        cast = gs.Node("Cast", name=names(f"{out.name}/Cast"), attrs={"to": onnx.TensorProto.FLOAT},
                       inputs=[half], outputs=[out])
        added.append(cast)
        stats["output_casts"] += 1

    io = {id(t) for t in graph.inputs + graph.outputs}
    for node in original + added:
        for t in node.outputs:
            if id(t) in io or id(t) in keep_fp32 or not isinstance(t, gs.Variable):
                continue
            if node.domain == DOMAIN:
                out_dtype = plugin_spec(node.op).dtypes("fp16")[1]
                t.dtype = np.float16 if out_dtype == "fp16" else np.float32
            elif node.op == "Cast":
                t.dtype = {onnx.TensorProto.FLOAT16: np.float16, onnx.TensorProto.FLOAT: np.float32}.get(
                    node.attrs["to"], t.dtype)
            elif t.dtype is not None and _is_float(t.dtype):
                t.dtype = np.float16
    graph.nodes.extend(added)
    graph.cleanup().toposort()
    return dict(stats)


def refresh_value_info(model: onnx.ModelProto) -> None:
    """Keep only the plugin outputs' declared types, then let ONNX shape inference fill in the rest.

    Shape inference cannot see through custom ops, so their outputs keep the types the passes
    declared; everything else is re-derived from the rewritten graph rather than trusted.
    """
    from .onnx_graph import without_weights
    plugin_outputs = {o for n in model.graph.node if n.domain == DOMAIN for o in n.output}
    kept = [vi for vi in model.graph.value_info if vi.name in plugin_outputs]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    light = without_weights(model)
    light.graph.value_info.extend(kept)
    inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
    have = {vi.name for vi in kept}
    model.graph.value_info.extend(vi for vi in inferred.graph.value_info if vi.name not in have)
