"""L1: the exported graph's contract: valid, standard DeformConv, exactly the inference weights, findable names."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from hida_rt.checkpoint import file_sha256
from hida_rt.export import onnx_graph
from hida_rt.export.onnx_export import model_metadata
from hida_rt.model.blocks import MetaAconC


def dims(value_info: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_checker_and_strict_shape_inference(exported_model):
    onnx.checker.check_model(exported_model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(exported_model, check_type=True, strict_mode=True, data_prop=True)
    assert dims(inferred.graph.output[0]) == ["batch", 1, 256, 256]


def test_interface(exported_model, spread_ckpt):
    assert exported_model.ir_version >= 9  # onnxruntime's floor for opset 19
    opset = {o.domain: o.version for o in exported_model.opset_import}
    assert opset.get("", opset.get("ai.onnx", 0)) >= 19
    assert set(opset) <= {"", "ai.onnx"}, f"non-standard domains in {opset}"
    g = exported_model.graph
    assert {i.name: dims(i) for i in g.input} == {
        "photo": ["batch", 3, 256, 256], "depth": ["batch", 1, 256, 256], "style": ["batch", 3]}
    assert [o.name for o in g.output] == ["sketch"]
    meta = model_metadata(exported_model)
    assert (meta["height"], meta["width"]) == ("256", "256")
    assert meta["weights_sha256"] == file_sha256(spread_ckpt)


def test_deform_convs_are_standard_ops(exported_model):
    by_type = onnx_graph.nodes_by_type(exported_model)
    producers = {o: n for n in exported_model.graph.node for o in n.output}
    deform = by_type["DeformConv"]
    assert [n.name for n in deform] == ["/up0/dcn/DeformConv", "/up1/dcn/DeformConv"]
    for node, layer in zip(deform, ("up0", "up1")):
        attrs = onnx_graph.attributes(node)
        assert node.domain in ("", "ai.onnx")
        assert attrs["offset_group"] == 2 and attrs["group"] == 1
        assert attrs["kernel_shape"] == [3, 3] and attrs["pads"] == [1, 1, 1, 1]
        assert attrs["strides"] == [1, 1] and attrs["dilations"] == [1, 1]
        x, w, offset, b, mask = node.input  # ONNX order: X, W, offset, B, mask
        assert (w, b) == (f"{layer}.dcn.weight", f"{layer}.dcn.bias")
        assert producers[x].op_type == "Resize"  # bilinear x2 of the layer input
        # offset = cat(o1, o2) = the first 36 of the 54 offset/mask conv channels; mask = sigmoid(m).
        om = f"/{layer}/dcn/conv_offset_mask/Conv_output_0"
        assert producers[offset].op_type == "Slice" and producers[offset].input[0] == om
        assert producers[mask].op_type == "Sigmoid"
        assert producers[producers[mask].input[0]].op_type == "Slice"
        assert producers[producers[mask].input[0]].input[0] == om
    # No op of the eager deform conv (gathers, the big matmul) leaked into the graph, and no
    # run-time shape arithmetic for the offset/mask split.
    assert not {"Shape", "Gather", "GatherElements", "MatMul", "Floor"} & {n.op_type for n in exported_model.graph.node
                                                                   if n.name.startswith(("/up0/dcn", "/up1/dcn"))}


def test_initializers_are_exactly_the_inference_weights(exported_model, spread_model):
    assert onnx_graph.unused_initializers(exported_model) == []
    eager = {k: v.numpy() for k, v in spread_model.state_dict().items()}
    assert onnx_graph.initializer_parameter_count(exported_model) == sum(v.size for v in eager.values())
    arrays = onnx_graph.initializer_arrays(exported_model)
    folded = {k: v for k, v in arrays.items() if k not in eager}
    for name, array in arrays.items():
        if name in eager:
            np.testing.assert_array_equal(array, eager[name], err_msg=name)
    # Constant folding's only new tensors: each MetaACON's p1 - p2, standing in for its p1.
    acons = [m for m in spread_model.modules() if isinstance(m, MetaAconC)]
    differences = [(m.p1 - m.p2).detach().numpy() for m in acons]
    assert len(folded) == len(acons)
    unmatched = [k for k, v in folded.items() if not any(v.shape == d.shape and np.array_equal(v, d)
                                                          for d in differences)]
    assert not unmatched, f"folded initializers that are not a MetaACON's p1 - p2: {unmatched[:3]}"
    assert all("/folded_" in k for k in folded)


def test_graph_is_tidy(exported_model):
    g = exported_model.graph
    assert not onnx_graph.nodes_by_type(exported_model).get("Identity"), "de-duplicated weights left Identity nodes"
    types = onnx_graph._elem_types(exported_model)
    noop = [n.name for n in g.node if n.op_type == "Cast" and types.get(n.input[0]) == onnx_graph.attributes(n)["to"]]
    assert not noop, f"float-to-float casts: {noop[:3]}"
    names = [n.name for n in g.node]
    assert len(set(names)) == len(names) and all(names)


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose", "DeformConv"])
def test_node_names_locate_their_layer(exported_model, op):
    """A graph pass can find a layer's ops by name: each conv's scope names the module owning its weight."""
    convs = onnx_graph.nodes_by_type(exported_model)[op]
    assert convs
    for node in convs:
        scope = node.name.strip("/").split("/")[:-1]  # ['down2', 'model', 'model.0'] of /down2/model/model.0/Conv
        weight = node.input[1]  # down2.model.0.fc1.weight
        assert weight.startswith(scope[0] + ".") and f".{scope[-1]}." in f".{weight}", (node.name, weight)
    if op == "Conv":
        layers = {n.name.split("/")[1] for n in convs}
        assert {"down_rgb", "down_par", "down2", "down8", "up0", "up6", "final_rgb"} <= layers
