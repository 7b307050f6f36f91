"""Each graph pass on its own: what it rewrites, and that the rewrite computes the same.

Passes that leave a standard ONNX graph (merged convs, folded switches) run
in onnxruntime against the portable export; the plugin and FP16 passes are
checked for structure and weights here and for values by the L2 test.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from hida_rt.checkpoint import load_state_dict
from hida_rt.export import graph_passes as gp
from hida_rt.export.onnx_graph import unused_initializers
from hida_rt.export.plugins.specs import DOMAIN, NAMESPACE, PLUGINS
from hida_rt.kernels.deform_conv import kcc_weight
from hida_rt.model import ops

PASS_TOLERANCE = 1e-5  # same math, other summation order
DECODER = [f"up{k}" for k in range(7)]


def run_ort(model: onnx.ModelProto, feeds: dict) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


@pytest.fixture(scope="module")
def feeds(l2_case) -> dict:
    return {"photo": l2_case.photo.numpy(), "depth": l2_case.depth.numpy(), "style": l2_case.style.numpy()}


@pytest.fixture(scope="module")
def portable_out(portable_model, feeds) -> np.ndarray:
    return run_ort(portable_model, feeds)


@pytest.fixture(scope="module")
def state(spread_ckpt) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in load_state_dict(spread_ckpt).items()}


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def plugin_params(model: onnx.ModelProto, node_name: str) -> dict[str, np.ndarray]:
    """A plugin node's constant inputs by the kernel's parameter name."""
    node = next(n for n in model.graph.node if n.name == node_name)
    inits = initializers(model)
    return {name: inits[t] for name, t in zip(PLUGINS[node.op_type].inputs, node.input) if t in inits}


def test_merge_ida_convs_is_one_conv_per_layer_and_exact(portable_model, feeds, portable_out, state):
    merged_model, (merged,) = gp.apply_passes(portable_model, gp.merge_ida_convs)
    assert merged == [f"/{u}" for u in DECODER]
    before, after = gp.count_ops(portable_model), gp.count_ops(merged_model)
    assert after["Conv"] == before["Conv"] - 2 * len(DECODER) and after["Split"] == len(DECODER)
    inits = initializers(merged_model)
    for u in DECODER:
        # [theta_pre | gamma | beta]: the channel order the ida kernel reads.
        want = np.concatenate([state[f"{u}.fc3.weight"], state[f"{u}.norm.mlp_gamma.weight"],
                               state[f"{u}.norm.mlp_beta.weight"]])
        np.testing.assert_array_equal(inits[f"{u}.tgb.weight"], want)
        for gone in ("fc3", "norm.mlp_gamma", "norm.mlp_beta"):
            assert f"{u}.{gone}.weight" not in inits
    err = np.abs(run_ort(merged_model, feeds) - portable_out).max()
    assert err <= PASS_TOLERANCE, f"merged convs change the sketch by {err:.3g}"


def test_fold_constant_betas_only_where_the_input_mean_is_zero(portable_model, feeds, portable_out, state,
                                                               spread_model, l2_case):
    folded_model, (folded,) = gp.apply_passes(portable_model, gp.fold_constant_betas)
    assert folded == [f"/down{k}/model/model.0" for k in range(3, 9)]  # not down2: d1 is not normalised
    assert gp.count_ops(portable_model)["ReduceMean"] - gp.count_ops(folded_model)["ReduceMean"] == 2 * 6
    err = np.abs(run_ort(folded_model, feeds) - portable_out).max()
    assert err <= PASS_TOLERANCE, f"folded switches change the sketch by {err:.3g}"
    # The folded constant is the switch eager computes from the live activations.
    inits = initializers(folded_model)
    acons = {k: getattr(spread_model, f"down{k}").model[0] for k in range(3, 9)}
    seen = {}
    hooks = [a.register_forward_hook(lambda mod, args, out, k=k: seen.setdefault(k, args[0])) for k, a in acons.items()]
    with torch.no_grad():
        spread_model(l2_case.photo, l2_case.depth, l2_case.style)
    for h in hooks:
        h.remove()
    for k, acon in acons.items():
        live = ops.meta_acon_beta(seen[k], acon.fc1.weight, acon.fc1.bias, acon.fc2.weight, acon.fc2.bias)
        const = inits[f"down{k}.model.0.beta"].reshape(1, -1, 1, 1)
        assert np.abs(live.numpy() - const).max() <= 1e-6, f"down{k}: folded switch differs from the live one"


def test_insert_plugins_requires_the_merged_convs(portable_model):
    with pytest.raises(ValueError, match="merge_ida_convs"):
        gp.apply_passes(portable_model, gp.insert_plugins)


def test_drop_unused_removes_what_nothing_reads():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    used = numpy_helper.from_array(np.ones((1, 2), np.float32), "used")
    unused = numpy_helper.from_array(np.ones((3, 3), np.float32), "unused")
    dead_out = helper.make_node("Mul", ["x", "used"], ["dead"], name="dead")
    graph = helper.make_graph([helper.make_node("Add", ["x", "used"], ["y"], name="add"), dead_out], "g", [x], [y],
                              [used, unused])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    assert unused_initializers(model) == ["unused"]
    out, (removed,) = gp.apply_passes(model, gp.drop_unused)
    assert removed == 1 and [n.name for n in out.graph.node] == ["add"]
    assert [i.name for i in out.graph.initializer] == ["used"]


def test_tensorrt_onnx_reads_every_weight_and_no_retired_one(trt_models, portable_model):
    model, report = trt_models["fp32"]
    assert unused_initializers(model) == []
    names = set(initializers(model))
    for k in range(3, 9):  # the folded switches' MLPs are gone
        assert not {f"down{k}.model.0.fc1.weight", f"down{k}.model.0.fc2.weight"} & names
    assert not any(".fc3." in n or "mlp_gamma" in n or "mlp_beta" in n for n in names)
    assert report.parameters_after < report.parameters_before == gp._parameter_count(portable_model)
    assert report.unused_weights_in_source == 0


def test_plugin_nodes_carry_what_the_tensorrt_parser_needs(trt_models):
    for precision, (model, _) in trt_models.items():
        onnx.checker.check_model(model)
        assert (DOMAIN, 1) in {(o.domain, o.version) for o in model.opset_import}
        for node in gp.plugin_nodes(model):
            assert node.op_type in PLUGINS and len(node.input) == len(PLUGINS[node.op_type].inputs)
            # No other attributes: TensorRT does not serialize an AOT plugin's attributes into the engine.
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            assert attrs == {"plugin_namespace": NAMESPACE.encode(), "aot": 1}, node.name
        assert [i.name for i in model.graph.input] == ["photo", "depth", "style"]
        assert [o.name for o in model.graph.output] == ["sketch"]
        for vi in list(model.graph.input) + list(model.graph.output):
            assert vi.type.tensor_type.elem_type == TensorProto.FLOAT, f"{precision}: {vi.name} must stay FP32"
            assert vi.type.tensor_type.shape.dim[0].dim_param, f"{precision}: {vi.name} has no dynamic batch"


def test_plugin_weights_are_the_checkpoints_in_the_kernels_layouts(trt_models, state):
    model, _ = trt_models["fp32"]
    for u in DECODER:
        p = plugin_params(model, f"/{u}/ida")
        np.testing.assert_array_equal(p["p1"], state[f"{u}.p1"].reshape(-1))
        np.testing.assert_array_equal(p["p2"], state[f"{u}.p2"].reshape(-1))
        a = plugin_params(model, f"/{u}/metaAcon/meta_acon_apply")
        np.testing.assert_array_equal(a["fc1_w"], state[f"{u}.metaAcon.fc1.weight"][:, :, 0, 0])
        np.testing.assert_array_equal(a["fc2_b"], state[f"{u}.metaAcon.fc2.bias"])
        np.testing.assert_array_equal(a["p2"], state[f"{u}.metaAcon.p2"].reshape(-1))
        # p1 comes back from the exported (p1 - p2) + p2: equal up to one rounding.
        np.testing.assert_allclose(a["p1"], state[f"{u}.metaAcon.p1"].reshape(-1), rtol=0, atol=1e-6)
    for u in ("up0", "up1"):
        d = plugin_params(model, f"/{u}/dcn/deform_conv")
        np.testing.assert_array_equal(d["w"], kcc_weight(torch.from_numpy(state[f"{u}.dcn.weight"])).numpy())
        np.testing.assert_array_equal(d["b"], state[f"{u}.dcn.bias"])


def test_fp16_graph_is_explicit(trt_models):
    model, report = trt_models["fp16"]
    by_output = {o: n for n in model.graph.node for o in n.output}
    consumers = {}
    for n in model.graph.node:
        for i, t in enumerate(n.input):
            consumers.setdefault(t, []).append((n, i))
    for init in model.graph.initializer:
        if init.data_type not in (TensorProto.FLOAT, TensorProto.FLOAT16):
            continue
        slots = consumers[init.name]
        want32 = [n.domain == DOMAIN and PLUGINS[n.op_type].dtypes("fp16")[0][PLUGINS[n.op_type].inputs[i]] == "fp32"
                  or n.op_type == "InstanceNormalization" or (n.op_type, i) in {("Resize", 1), ("Resize", 2)}
                  for n, i in slots]
        assert (init.data_type == TensorProto.FLOAT) == all(want32), f"{init.name} is the wrong float type"
    for n in model.graph.node:
        if n.op_type == "InstanceNormalization":  # an FP32 island: statistics over up to 128x128 values
            cast_in = by_output[n.input[0]]
            assert cast_in.op_type == "Cast" and helper.get_attribute_value(cast_in.attribute[0]) == TensorProto.FLOAT
            (after, _), = consumers[n.output[0]]
            assert after.op_type == "Cast" and helper.get_attribute_value(after.attribute[0]) == TensorProto.FLOAT16
    weight_bytes = sum(numpy_helper.to_array(i).nbytes for i in model.graph.initializer)
    assert weight_bytes < 0.55 * 4 * report.parameters_after, "most weights should be FP16"
    assert report.fp16["fp32_instance_norms"] == 6 and report.fp16["input_casts"] == 3
