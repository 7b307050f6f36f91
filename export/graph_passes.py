"""Graph passes: the portable ONNX (export/onnx_export.py) -> the TensorRT ONNX (plugin nodes, FP16).

    trt_model, report = tensorrt_onnx(portable_model, precision="fp16")

In order, each on an onnx-graphsurgeon graph, each changing no computed value
beyond float rounding (proven by the L2 test, tests/tensorrt/test_l2_reference.py):

1. `drop_unused`: weights and nodes nothing reads (run again at the end, when
   the rewrites below have orphaned the originals).
2. `merge_ida_convs`: in every decoder layer fc3, norm.mlp_gamma and
   norm.mlp_beta read the same `a`; one 3x3 conv with 3C outputs
   [theta_pre | gamma | beta] plus a Split replaces the three.
3. `fold_constant_betas`: a MetaACON whose input is an InstanceNorm output
   (down3..down8) has mean_hw(x) = 0, so its switch sigmoid(fc2(fc1(0))) is a
   per-channel constant, computed here once (in float64, stored as float32).
4. `insert_plugins`: each IDA tail (reading the merged conv output directly),
   each MetaACON (two plugins with a live switch, one with a constant) and
   each DeformConv (reading the raw 54-channel offset/mask conv output, its
   weight stored as (9, Cin, Cout)) becomes a `hida_rt` plugin node.
5. `to_fp16` (trt_fp16.py): an explicit FP16 graph for a strongly typed
   build; the plugins keep statistics, MLPs and sampling in FP32.

Passes 1-3 leave a standard ONNX graph (onnxruntime runs it); 4-5 need the
plugins' reference ops (export/plugins/reference.py) or TensorRT.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from . import trt_patterns as pat
from .graph_names import FreshNames
from .onnx_graph import unused_initializers
from .plugins.specs import DOMAIN, DOMAIN_VERSION, NAMESPACE, plugin_spec
from .trt_fp16 import refresh_value_info, to_fp16

PRECISIONS = ("fp16", "fp32")
META_PREFIX = "hida_rt."
# Bump when the passes change the graph they write (manifests record it).
TRT_ONNX_FORMAT = 1


@dataclass
class PassReport:
    precision: str = "fp32"
    merged_convs: list[str] = field(default_factory=list)     # layer scopes
    folded_betas: list[str] = field(default_factory=list)
    plugins: dict[str, int] = field(default_factory=dict)      # op -> node count
    initializers_before: int = 0
    initializers_after: int = 0
    parameters_before: int = 0
    parameters_after: int = 0
    unused_weights_in_source: int = 0                          # initializers the source graph never read
    dead_nodes_dropped: int = 0
    fp16: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        plugins = ", ".join(f"{n} {op}" for op, n in sorted(self.plugins.items()))
        return (f"{len(self.merged_convs)} conv triples merged, {len(self.folded_betas)} MetaACON switches folded, "
                f"plugins: {plugins or 'none'}; {self.parameters_after / 1e6:.2f} M parameters "
                f"({self.precision})")


def _weight_prefix(node_scope: str) -> str:
    """Module scope -> state-dict prefix: /up3/metaAcon -> up3.metaAcon, /down3/model/model.0 -> down3.model.0.

    TorchScript names a Sequential's child `<seq>.<index>` inside a `<seq>` scope; the
    state dict has the index once.
    """
    parts = [p for p in node_scope.split("/") if p]
    kept = [p for p, nxt in zip(parts, parts[1:] + [""]) if not nxt.startswith(p + ".")]
    return ".".join(kept) or "hida"


# ---------------------------------------------------------------- 1. unused weights

def drop_unused(graph: gs.Graph) -> int:
    """Remove nodes nothing reads, and with them the weights only they read; returns the nodes removed.

    Weights no node reads are never exported by onnx-graphsurgeon, so after this pass every
    initializer of the written model is read by some node.
    """
    before = len(graph.nodes)
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    return before - len(graph.nodes)


# ---------------------------------------------------------------- 2. merged conv

def merge_ida_convs(graph: gs.Graph) -> list[str]:
    """fc3 | mlp_gamma | mlp_beta -> one Conv (3C outputs) + Split, in every IDA tail."""
    names = FreshNames(graph)
    merged = []
    for m in pat.find_ida(graph):
        convs = [pat.producer(t, "Conv") for t in (m.theta_pre, m.gamma, m.beta)]
        if any(c is None for c in convs):
            continue  # already merged, or not a conv triple
        a = convs[0].inputs[0]
        weights = [pat.const(c.inputs[1]) for c in convs]
        if any(c.inputs[0] is not a or c.attrs != convs[0].attrs for c in convs) or any(w is None for w in weights):
            continue
        biases = [pat.const(c.inputs[2]) if len(c.inputs) > 2 else np.zeros(w.shape[0], np.float32)
                  for c, w in zip(convs, weights)]
        if any(b is None for b in biases) or len({w.shape for w in weights}) != 1:
            continue
        ch = weights[0].shape[0]
        scope = pat.scope(m.anchor)
        prefix = _weight_prefix(scope)
        shape = None
        if m.theta_pre.shape is not None:
            shape = list(m.theta_pre.shape)
            shape[1] = 3 * ch
        tgb = gs.Variable(names(f"{scope}/tgb"), dtype=m.theta_pre.dtype, shape=shape)
        conv = gs.Node("Conv", name=names(f"{scope}/tgb/Conv"), attrs=dict(convs[0].attrs), inputs=[
            a, gs.Constant(names(f"{prefix}.tgb.weight"), np.concatenate(weights).astype(np.float32)),
            gs.Constant(names(f"{prefix}.tgb.bias"), np.concatenate(biases).astype(np.float32))], outputs=[tgb])
        split = gs.Node("Split", name=names(f"{scope}/tgb/Split"), attrs={"axis": 1},
                        inputs=[tgb, gs.Constant(names(f"{prefix}.tgb.split"), np.array([ch] * 3, np.int64))])
        for c in convs:
            c.outputs.clear()
        split.outputs = [m.theta_pre, m.gamma, m.beta]
        graph.nodes.extend([conv, split])
        merged.append(scope)
    graph.cleanup().toposort()
    return merged


def _split_source(m: pat.IdaMatch) -> gs.Tensor | None:
    """The merged conv output when theta_pre, gamma, beta are its three equal channel thirds, in order."""
    split = pat.producer(m.theta_pre, "Split")
    if split is None or split.outputs != [m.theta_pre, m.gamma, m.beta] or split.attrs.get("axis") not in (1, -3):
        return None
    sizes = pat.const(split.inputs[1]) if len(split.inputs) > 1 else None
    if sizes is None or len(set(np.asarray(sizes).tolist())) != 1 or int(np.asarray(sizes)[0]) != m.p1.size:
        return None
    return split.inputs[0]


# ---------------------------------------------------------------- 3. constant MetaACON switches

def constant_switch(fc1_w: np.ndarray, fc1_b: np.ndarray, fc2_w: np.ndarray, fc2_b: np.ndarray) -> np.ndarray:
    """sigmoid(fc2(fc1(0))) per channel: fc1 of a zero mean is its bias. Float64, rounded once to float32."""
    z = fc2_w.astype(np.float64) @ fc1_b.astype(np.float64) + fc2_b.astype(np.float64)
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def fold_constant_betas(graph: gs.Graph) -> list[str]:
    """Replace the live switch of every MetaACON reading an InstanceNorm output by its constant."""
    names = FreshNames(graph)
    folded = []
    for m in pat.find_meta_acon(graph):
        if m.fc is None or not pat.zero_mean_input(m.x):
            continue
        beta = constant_switch(*m.fc)
        scope = pat.scope(m.anchor)
        value = gs.Constant(names(f"{_weight_prefix(scope)}.beta"), beta.reshape(1, -1, 1, 1))
        m.switch_mul.inputs = [value if t is m.switch else t for t in m.switch_mul.inputs]
        folded.append(scope)
    graph.cleanup().toposort()
    return folded


# ---------------------------------------------------------------- 4. plugin nodes

def _plugin_node(names: FreshNames, op: str, scope: str, inputs: list, outputs: list) -> gs.Node:
    spec = plugin_spec(op)
    if len(inputs) != len(spec.inputs):
        raise AssertionError(f"{op}: {len(inputs)} inputs for {spec.inputs}")
    return gs.Node(op=op, name=names(f"{scope}/{op}"), domain=DOMAIN,
                   attrs={"plugin_namespace": NAMESPACE, "aot": 1}, inputs=inputs, outputs=outputs)


def _param(names: FreshNames, scope: str, op: str, what: str, value: np.ndarray) -> gs.Constant:
    """A plugin's parameter input, named <layer scope>.<op>.<what> (up3.ida.p1), always float32 here."""
    return gs.Constant(names(f"{_weight_prefix(scope)}.{op}.{what}"), np.ascontiguousarray(value, dtype=np.float32))


def _replace_producer(out: gs.Variable, node: gs.Node) -> None:
    out.inputs.clear()
    node.outputs = [out]


def insert_plugins(graph: gs.Graph) -> dict[str, int]:
    """IDA tails, MetaACONs and DeformConvs -> hida_rt plugin nodes. Needs merge_ida_convs first."""
    names = FreshNames(graph)
    counts: Counter[str] = Counter()
    new_nodes = []
    for m in pat.find_ida(graph):
        tgb = _split_source(m)
        if tgb is None:
            raise ValueError(f"{m.anchor.name}: the IDA tail does not read a merged conv; run merge_ida_convs first")
        scope = pat.scope(m.anchor)
        node = _plugin_node(names, "ida", scope, [m.y, tgb, _param(names, scope, "ida", "p1", m.p1),
                                                  _param(names, scope, "ida", "p2", m.p2)], [])
        _replace_producer(m.out, node)
        new_nodes.append(node)
        counts["ida"] += 1
    for m in pat.find_meta_acon(graph):
        scope = pat.scope(m.anchor)
        op = "acon_const" if m.beta is not None else "meta_acon_apply"
        p1, p2 = _param(names, scope, op, "p1", m.p1), _param(names, scope, op, "p2", m.p2)
        if m.beta is not None:
            node = _plugin_node(names, op, scope, [m.x, p1, p2, _param(names, scope, op, "beta", m.beta)], [])
            _replace_producer(m.out, node)
            new_nodes.append(node)
            counts["acon_const"] += 1
            continue
        fc1_w, fc1_b, fc2_w, fc2_b = m.fc
        batch = m.x.shape[0] if m.x.shape is not None else "batch"
        mean = gs.Variable(names(f"{scope}/mean"), dtype=np.float32, shape=[batch, m.p1.size])
        mean_node = _plugin_node(names, "meta_acon_mean", scope, [m.x], [mean])
        node = _plugin_node(names, "meta_acon_apply", scope, [
            m.x, mean, _param(names, scope, op, "fc1_w", fc1_w), _param(names, scope, op, "fc1_b", fc1_b),
            _param(names, scope, op, "fc2_w", fc2_w), _param(names, scope, op, "fc2_b", fc2_b), p1, p2], [])
        _replace_producer(m.out, node)
        new_nodes.extend([mean_node, node])
        counts["meta_acon_mean"] += 1
        counts["meta_acon_apply"] += 1
    for m in pat.find_deform_convs(graph):
        scope = pat.scope(m.node)
        cout, cin = m.weight.shape[:2]
        # kernels.deform_conv reads the weight as (tap, Cin, Cout): contiguous along Cout per tap and channel.
        w_kcc = m.weight.transpose(2, 3, 1, 0).reshape(9, cin, cout)
        w, b = (_param(names, scope, "deform_conv", "w", w_kcc), _param(names, scope, "deform_conv", "b", m.bias))
        node = _plugin_node(names, "deform_conv", scope, [m.x, m.om, w, b], [])
        _replace_producer(m.node.outputs[0], node)
        new_nodes.append(node)
        counts["deform_conv"] += 1
    graph.nodes.extend(new_nodes)
    graph.cleanup().toposort()
    return dict(counts)


# ---------------------------------------------------------------- the pipeline

def _parameter_count(model: onnx.ModelProto) -> int:
    return sum(int(np.prod(i.dims, dtype=np.int64)) for i in model.graph.initializer)


def _export(graph: gs.Graph, source: onnx.ModelProto, report: PassReport) -> onnx.ModelProto:
    model = gs.export_onnx(graph, do_type_check=False)
    if not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(DOMAIN, DOMAIN_VERSION))
    model.ir_version = max(model.ir_version, source.ir_version)
    meta = {p.key: p.value for p in source.metadata_props}
    meta.update({META_PREFIX + "trt_onnx_format": str(TRT_ONNX_FORMAT), META_PREFIX + "precision": report.precision,
                 META_PREFIX + "plugins": ",".join(f"{k}={v}" for k, v in sorted(report.plugins.items()))})
    onnx.helper.set_model_props(model, meta)
    model.graph.name = (source.graph.name or "hida_generator") + "_tensorrt"
    refresh_value_info(model)
    return model


def tensorrt_onnx(portable: onnx.ModelProto, precision: str = "fp16",
                  progress: Callable[[str], None] | None = None) -> tuple[onnx.ModelProto, PassReport]:
    """The TensorRT ONNX of a portable export: all passes, FP16 (or FP32, for the L2 exactness check)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    say = progress or (lambda _: None)
    report = PassReport(precision=precision, initializers_before=len(portable.graph.initializer),
                        parameters_before=_parameter_count(portable))
    report.unused_weights_in_source = len(unused_initializers(portable))
    graph = gs.import_onnx(portable)
    report.dead_nodes_dropped = drop_unused(graph)
    say("merging the three convs that read each decoder layer's `a`")
    report.merged_convs = merge_ida_convs(graph)
    say("folding the constant MetaACON switches of the encoder")
    report.folded_betas = fold_constant_betas(graph)
    say("replacing IDA tails, MetaACONs and deformable convs with hida_rt plugin nodes")
    report.plugins = insert_plugins(graph)
    report.dead_nodes_dropped += drop_unused(graph)
    if precision == "fp16":
        say("casting weights and activations to FP16 (plugins keep FP32 statistics)")
        report.fp16 = to_fp16(graph)
    model = _export(graph, portable, report)
    report.initializers_after = len(model.graph.initializer)
    report.parameters_after = _parameter_count(model)
    return model, report


def apply_passes(model: onnx.ModelProto, *passes: Callable[[gs.Graph], object]) -> tuple[onnx.ModelProto, list]:
    """Run some passes on their own (tests): import, apply in order, export. Returns (model, pass results)."""
    graph = gs.import_onnx(model)
    results = [p(graph) for p in passes]
    out = gs.export_onnx(graph, do_type_check=False)
    if any(n.domain == DOMAIN for n in out.graph.node) and not any(o.domain == DOMAIN for o in out.opset_import):
        out.opset_import.append(onnx.helper.make_opsetid(DOMAIN, DOMAIN_VERSION))
    out.ir_version = max(out.ir_version, model.ir_version)
    return out, results


def plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.domain == DOMAIN]


def count_ops(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


_ELEM = {onnx.TensorProto.FLOAT: "fp32", onnx.TensorProto.FLOAT16: "fp16"}


def plugin_instances(model: onnx.ModelProto, batch: int = 1) -> list[tuple[onnx.NodeProto, str, list[tuple]]]:
    """Each plugin node with its data dtype ("fp16"/"fp32") and input shapes, the symbolic batch set to `batch`."""
    g = model.graph
    info = {i.name: (i.data_type, tuple(i.dims)) for i in g.initializer}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        info[vi.name] = (t.elem_type, tuple(d.dim_value if d.HasField("dim_value") else batch for d in t.shape.dim))
    out = []
    for node in plugin_nodes(model):
        missing = [t for t in node.input if t not in info]
        if missing:
            raise ValueError(f"{node.name}: no type/shape recorded for input(s) {missing}")
        out.append((node, _ELEM[info[node.input[0]][0]], [info[t][1] for t in node.input]))
    return out

