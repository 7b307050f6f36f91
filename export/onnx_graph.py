"""Tidying passes for the exported ONNX graph, and the queries tests and summaries use.

torch's TorchScript exporter leaves a few things a reader (or a graph pass)
trips over; each pass here removes one and changes no computed value:

- `drop_initializer_inputs`: the export runs with keep_initializers_as_inputs
  so torch skips its initializer de-duplication (which replaced every weight
  that happened to equal another, e.g. zero biases, by an Identity of the
  first one, naming weights after the wrong layer); here the weights leave
  the graph inputs again, so a runtime treats them as constants.
- `remove_noop_casts`: `.float()` / `.to(dtype)` in the FP32 model trace as
  Cast nodes from float to float.
- `remove_dead_code`: nodes whose outputs nobody reads, and initializers no
  node reads.
- `name_folded_initializers`: constant folding names its results
  `onnx::Mul_1021`; a folded copy of a parameter (`p1.float()`) gets the
  parameter's name back (`up3.p1`), anything else the name of the node that
  reads it (`/down3/model/model.0/Mul/folded_0`: MetaACON's p1 - p2), so a
  pass can tell which layer owns each.

Each pass edits the ModelProto in place and returns how much it changed.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import numpy_helper


def drop_initializer_inputs(model: onnx.ModelProto) -> int:
    names = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in names]
    dropped = len(model.graph.input) - len(keep)
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return dropped


# Initializers larger than this are handed to shape inference as typed inputs, not data.
_INFERENCE_DATA_LIMIT = 64


def without_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every large initializer replaced by a graph input of the same type and shape.

    Shape inference on it gives the same types and shapes (only small tensors, such as
    shape vectors, carry information) without copying 300 MB of weights.
    """
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    g = light.graph
    g.name = model.graph.name
    g.node.extend(model.graph.node)
    g.input.extend(model.graph.input)
    g.output.extend(model.graph.output)
    for init in model.graph.initializer:
        if np.prod(init.dims, dtype=np.int64) > _INFERENCE_DATA_LIMIT:
            g.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
        else:
            g.initializer.append(init)
    return light


def infer_value_info(model: onnx.ModelProto, strict: bool = True) -> None:
    """Replace the model's value_info with freshly inferred types and shapes (data propagation on)."""
    inferred = onnx.shape_inference.infer_shapes(without_weights(model), check_type=strict,
                                                 strict_mode=strict, data_prop=True)
    del model.graph.value_info[:]
    model.graph.value_info.extend(inferred.graph.value_info)


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    g = onnx.shape_inference.infer_shapes(without_weights(model), strict_mode=False).graph
    types = {i.name: i.data_type for i in g.initializer}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    return types


def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def remove_noop_casts(model: onnx.ModelProto) -> int:
    """Drop Cast nodes whose input already has the target type (not ones producing a graph output)."""
    types = _elem_types(model)
    outputs = {o.name for o in model.graph.output}
    noop = [n for n in model.graph.node if n.op_type == "Cast" and n.output[0] not in outputs
            and types.get(n.input[0]) == attributes(n)["to"]]
    for n in noop:
        _rename_uses(model.graph, n.output[0], n.input[0])
        model.graph.node.remove(n)
    return len(noop)


def used_names(graph: onnx.GraphProto) -> set[str]:
    return {name for node in graph.node for name in node.input if name} | {o.name for o in graph.output}


def remove_dead_code(model: onnx.ModelProto) -> tuple[int, int]:
    """Remove unread nodes (repeatedly, so chains go) and unread initializers; returns both counts."""
    g = model.graph
    nodes_removed = 0
    while True:
        used = used_names(g)
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
        nodes_removed += len(dead)
    used = used_names(g)
    dead_inits = [i for i in g.initializer if i.name not in used]
    for i in dead_inits:
        g.initializer.remove(i)
    kept_vi = [vi for vi in g.value_info if vi.name in used]
    del g.value_info[:]
    g.value_info.extend(kept_vi)
    return nodes_removed, len(dead_inits)


def name_folded_initializers(model: onnx.ModelProto, parameters: dict[str, np.ndarray]) -> int:
    """Give constant folding's products meaningful names.

    A product equal to exactly one parameter missing from the graph (a folded no-op Cast of
    it, e.g. `p1.float()`) takes that parameter's name; any other (MetaACON's p1 - p2) is
    named after the first node that reads it.
    """
    g = model.graph
    readers: dict[str, tuple[str, int]] = {}
    for node in g.node:
        for i, name in enumerate(node.input):
            readers.setdefault(name, (node.name, i))
    present = {i.name for i in g.initializer}
    renamed = 0
    for init in g.initializer:
        if init.name in parameters or init.name not in readers:
            continue
        value = numpy_helper.to_array(init)
        same = [k for k, v in parameters.items() if k not in present and v.shape == value.shape
                and v.dtype == value.dtype and np.array_equal(v, value)]
        if len(same) == 1:
            new = same[0]
        else:
            node_name, index = readers[init.name]
            new = f"{node_name}/folded_{index}"
        _rename_uses(g, init.name, new)
        present.discard(init.name)
        present.add(new)
        init.name = new
        renamed += 1
    return renamed


# Queries ---------------------------------------------------------------

def unused_initializers(model: onnx.ModelProto) -> list[str]:
    used = used_names(model.graph)
    return [i.name for i in model.graph.initializer if i.name not in used]


def initializer_parameter_count(model: onnx.ModelProto) -> int:
    """Elements in all initializers: with the tidy graph, exactly the weights inference reads."""
    return sum(int(np.prod(i.dims, dtype=np.int64)) for i in model.graph.initializer)


def initializer_arrays(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def nodes_by_type(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for n in model.graph.node:
        out[n.op_type].append(n)
    return dict(out)


def attributes(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
