"""Find HIDA's blocks in the exported ONNX graph (onnx-graphsurgeon), by structure and values.

Matching follows the ops the blocks are made of, never node or tensor names:
names are a tidy-export convenience (export/onnx_graph.py), while the
structure is fixed by the math. Constants are read wherever they live
(initializer or Constant node), commutative operands in either order, and
MetaACON's p1 - p2 either folded into one constant or as Sub(p1, p2).

- `match_ida(inorm)`: a decoder tail, anchored on its InstanceNormalization:
      d = p1*y - p2*y; f = d*sigmoid(sigmoid(theta_pre)*d) + p2*y
      out = IN(f) * (gamma + 1) + beta + f
- `match_meta_acon(add)`: MetaACON, anchored on its final Add:
      dpx = (p1 - p2)*x; out = dpx*sigmoid(b*dpx) + p2*x
  with b = sigmoid(fc2(fc1(mean_hw(x)))) (live) or a constant (folded).
- `match_deform_conv(node)`: a DeformConv whose offset and mask are channel
  ranges [0, 2GK) and [2GK, 3GK) of one conv output `om` (mask through a
  Sigmoid), DCNv2's `conv_offset_mask` layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np
import onnx_graphsurgeon as gs

DCN_TAPS = 9


# ---------------------------------------------------------------- small queries

def producer(t, op: str | None = None) -> gs.Node | None:
    """The node writing tensor t (if op is given, only when it is that op)."""
    if not isinstance(t, gs.Variable) or len(t.inputs) != 1:
        return None
    node = t.inputs[0]
    return node if op is None or node.op == op else None


def const(t) -> np.ndarray | None:
    """The value of a constant tensor (initializer or Constant node output), else None."""
    if isinstance(t, gs.Constant):
        return np.asarray(t.values)
    node = producer(t, "Constant")
    if node is None:
        return None
    value = node.attrs.get("value")
    if isinstance(value, gs.Constant):
        return np.asarray(value.values)
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in node.attrs:
            return np.asarray(node.attrs[key], dtype=dtype)
    return None


def consumers(t) -> list[gs.Node]:
    return list(t.outputs)


def only_consumer(t, op: str) -> gs.Node | None:
    users = consumers(t)
    return users[0] if len(users) == 1 and users[0].op == op else None


def mul_by_const(t) -> tuple[np.ndarray, gs.Tensor] | None:
    """t = Mul(c, v) with c constant and v not: (c, v)."""
    node = producer(t, "Mul")
    if node is None:
        return None
    for a, b in permutations(node.inputs):
        ca = const(a)
        if ca is not None and const(b) is None:
            return ca, b
    return None


def operands(node: gs.Node, first):
    """(a, b) = node's two inputs ordered so that first(a) is truthy, trying both orders."""
    for a, b in permutations(node.inputs):
        if first(a):
            return a, b
    return None


def per_channel(value: np.ndarray, channels: int | None = None) -> np.ndarray | None:
    """A (1, C, 1, 1) / (C,) / (C, 1, 1) parameter as float32 (C,), or None if it has another layout."""
    v = np.asarray(value, dtype=np.float32)
    if v.ndim == 4 and v.shape[0] == 1 and v.shape[2:] == (1, 1):
        v = v.reshape(-1)
    elif v.ndim == 3 and v.shape[1:] == (1, 1):
        v = v.reshape(-1)
    if v.ndim != 1 or (channels is not None and v.shape[0] != channels):
        return None
    return v


def is_scalar(value, want: float) -> bool:
    return value is not None and np.asarray(value).size == 1 and float(np.asarray(value).reshape(-1)[0]) == want


def scope(node: gs.Node) -> str:
    """The module scope of an exported node name (/up3/metaAcon/Add -> /up3/metaAcon)."""
    name = node.name or ""
    return name.rsplit("/", 1)[0] if "/" in name else name


# ---------------------------------------------------------------- IDA (decoder tail)

@dataclass
class IdaMatch:
    out: gs.Variable          # the block's output tensor
    y: gs.Tensor              # DCN / ConvTranspose output
    theta_pre: gs.Variable
    gamma: gs.Variable
    beta: gs.Variable
    p1: np.ndarray            # (C,) float32
    p2: np.ndarray
    epsilon: float
    anchor: gs.Node           # the InstanceNormalization


def _info_acon(f) -> tuple | None:
    """f = d*sigmoid(sigmoid(theta_pre)*d) + p2*y with d = p1*y - p2*y: (y, theta_pre, p1, p2)."""
    add = producer(f, "Add")
    if add is None:
        return None
    for m3, m1 in permutations(add.inputs):
        p2y = mul_by_const(m1)
        mul3 = producer(m3, "Mul")
        if p2y is None or mul3 is None:
            continue
        p2, y = p2y
        pair = operands(mul3, lambda t: producer(t, "Sub") is not None)
        if pair is None:
            continue
        d, s = pair
        sub = producer(d, "Sub")
        if sub.inputs[1] is not m1:
            continue
        p1y = mul_by_const(sub.inputs[0])
        if p1y is None or p1y[1] is not y:
            continue
        sig = producer(s, "Sigmoid")
        mul2 = producer(sig.inputs[0], "Mul") if sig else None
        if mul2 is None:
            continue
        pair = operands(mul2, lambda t: t is d)
        theta = producer(pair[1], "Sigmoid") if pair else None
        if theta is None:
            continue
        return y, theta.inputs[0], p1y[0], p2
    return None


def match_ida(inorm: gs.Node) -> IdaMatch | None:
    if inorm.op != "InstanceNormalization":
        return None
    f = inorm.inputs[0]
    scale, bias = const(inorm.inputs[1]), const(inorm.inputs[2])
    if scale is None or bias is None or not (np.all(scale == 1) and np.all(bias == 0)):
        return None
    tail = _info_acon(f)
    if tail is None:
        return None
    y, theta_pre, p1, p2 = tail
    mul4 = only_consumer(inorm.outputs[0], "Mul")
    if mul4 is None:
        return None
    g1 = operands(mul4, lambda t: t is inorm.outputs[0])[1]
    add1 = producer(g1, "Add")
    pair = operands(add1, lambda t: const(t) is None) if add1 else None
    if pair is None or not is_scalar(const(pair[1]), 1.0):
        return None
    gamma = pair[0]
    add2 = only_consumer(mul4.outputs[0], "Add")
    if add2 is None:
        return None
    beta = operands(add2, lambda t: t is mul4.outputs[0])[1]
    add3 = only_consumer(add2.outputs[0], "Add")
    if add3 is None or operands(add3, lambda t: t is add2.outputs[0])[1] is not f:
        return None
    c = len(p1.reshape(-1))
    p1v, p2v = per_channel(p1, c), per_channel(p2, c)
    if p1v is None or p2v is None:
        return None
    return IdaMatch(out=add3.outputs[0], y=y, theta_pre=theta_pre, gamma=gamma, beta=beta, p1=p1v, p2=p2v,
                    epsilon=float(inorm.attrs.get("epsilon", 1e-5)), anchor=inorm)


def find_ida(graph: gs.Graph) -> list[IdaMatch]:
    return [m for m in map(match_ida, [n for n in graph.nodes if n.op == "InstanceNormalization"]) if m]


# ---------------------------------------------------------------- MetaACON

@dataclass
class MetaAconMatch:
    out: gs.Variable
    x: gs.Tensor
    p1: np.ndarray            # (C,) float32
    p2: np.ndarray
    beta: np.ndarray | None   # (C,) when the switch is a constant
    fc: tuple | None          # (fc1_w (HID, C), fc1_b, fc2_w (C, HID), fc2_b) when it is live
    switch: gs.Tensor         # b
    switch_mul: gs.Node       # Mul(b, dpx): where a folded constant switch goes in
    anchor: gs.Node           # the final Add


def _reduce_axes(node: gs.Node) -> list[int] | None:
    if len(node.inputs) > 1:
        axes = const(node.inputs[1])
        axes = None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
    else:
        axes = node.attrs.get("axes")
    if axes is None or node.attrs.get("keepdims", 1) != 1:
        return None
    return sorted(a % 4 for a in axes)


def _spatial_mean_of(t) -> gs.Tensor | None:
    """The x with t = mean over H and W of x (one ReduceMean over (2, 3), or two in either order)."""
    node = producer(t, "ReduceMean")
    if node is None:
        return None
    axes = _reduce_axes(node)
    if axes == [2, 3]:
        return node.inputs[0]
    inner = producer(node.inputs[0], "ReduceMean")
    if axes in ([2], [3]) and inner is not None and sorted(axes + (_reduce_axes(inner) or [])) == [2, 3]:
        return inner.inputs[0]
    return None


def _pointwise_conv(t) -> tuple[gs.Tensor, np.ndarray, np.ndarray] | None:
    """t = Conv1x1(v, w, b) with constant w, b: (v, w as 2-D, b)."""
    node = producer(t, "Conv")
    if node is None or node.attrs.get("group", 1) != 1:
        return None
    w = const(node.inputs[1])
    if w is None or w.ndim != 4 or w.shape[2:] != (1, 1):
        return None
    b = const(node.inputs[2]) if len(node.inputs) > 2 else np.zeros(w.shape[0], np.float32)
    if b is None:
        return None
    return node.inputs[0], w.reshape(w.shape[0], w.shape[1]).astype(np.float32), b.astype(np.float32)


def _live_switch(b, x) -> tuple | None:
    sig = producer(b, "Sigmoid")
    fc2 = _pointwise_conv(sig.inputs[0]) if sig else None
    fc1 = _pointwise_conv(fc2[0]) if fc2 else None
    if fc1 is None or _spatial_mean_of(fc1[0]) is not x:
        return None
    return fc1[1], fc1[2], fc2[1], fc2[2]


def match_meta_acon(add: gs.Node) -> MetaAconMatch | None:
    if add.op != "Add":
        return None
    for u, v in permutations(add.inputs):
        p2x = mul_by_const(v)
        mul_u = producer(u, "Mul")
        if p2x is None or mul_u is None:
            continue
        p2, x = p2x
        for dpx, s in permutations(mul_u.inputs):
            dp_x = mul_by_const(dpx)
            sig = producer(s, "Sigmoid")
            if dp_x is None or dp_x[1] is not x or sig is None:
                continue
            switch_mul = producer(sig.inputs[0], "Mul")
            pair = operands(switch_mul, lambda t: t is dpx) if switch_mul else None
            if pair is None:
                continue
            b = pair[1]
            c = np.asarray(p2).size
            p2v, dp = per_channel(p2, c), per_channel(dp_x[0], c)
            if p2v is None or dp is None:
                continue
            # p1 as the kernels take it; (p1 - p2) was folded by the export, so p1 = (p1 - p2) + p2.
            p1v = (dp.astype(np.float32) + p2v).astype(np.float32)
            beta = const(b)
            fc = None
            if beta is not None:
                beta = per_channel(beta, c)
                if beta is None:
                    continue
            else:
                fc = _live_switch(b, x)
                if fc is None or fc[0].shape[1] != c or fc[2].shape[0] != c:
                    continue
            return MetaAconMatch(out=add.outputs[0], x=x, p1=p1v, p2=p2v, beta=beta, fc=fc,
                                 switch=b, switch_mul=switch_mul, anchor=add)
    return None


def find_meta_acon(graph: gs.Graph) -> list[MetaAconMatch]:
    return [m for m in map(match_meta_acon, [n for n in graph.nodes if n.op == "Add"]) if m]


def zero_mean_input(x) -> bool:
    """True when x is an InstanceNormalization output without affine shift: its mean over H*W is 0."""
    node = producer(x, "InstanceNormalization")
    if node is None:
        return False
    bias = const(node.inputs[2])
    return bias is not None and np.all(bias == 0)


# ---------------------------------------------------------------- deformable conv

@dataclass
class DeformMatch:
    node: gs.Node
    x: gs.Tensor
    om: gs.Tensor             # raw offset/mask conv output, (N, 3*G*9, H, W)
    weight: np.ndarray        # (Cout, Cin, 3, 3)
    bias: np.ndarray          # (Cout,)
    groups: int


def _channels(t) -> int | None:
    node = producer(t, "Conv")
    if node is not None:
        w = const(node.inputs[1])
        return None if w is None else int(w.shape[0])
    shape = getattr(t, "shape", None)
    return int(shape[1]) if shape is not None and isinstance(shape[1], (int, np.integer)) else None


def channel_range(t) -> tuple[gs.Tensor, int, int] | None:
    """(source, start, end) when t is channels [start, end) of source (Slice on axis 1, or a Concat of such)."""
    node = producer(t)
    if node is None:
        return None
    if node.op == "Slice":
        starts, ends = const(node.inputs[1]), const(node.inputs[2])
        axes = const(node.inputs[3]) if len(node.inputs) > 3 else np.arange(np.asarray(starts).size)
        steps = const(node.inputs[4]) if len(node.inputs) > 4 else None
        if starts is None or ends is None or axes is None or np.asarray(axes).size != 1:
            return None
        if int(np.asarray(axes).reshape(-1)[0]) % 4 != 1 or (steps is not None and np.any(steps != 1)):
            return None
        total = _channels(node.inputs[0])
        start, end = int(np.asarray(starts).reshape(-1)[0]), int(np.asarray(ends).reshape(-1)[0])
        if total is None or start < 0 or end < 0:
            return None
        return node.inputs[0], start, min(end, total)
    if node.op == "Concat" and node.attrs.get("axis") in (1, -3):
        parts = [channel_range(i) for i in node.inputs]
        if not parts or any(p is None for p in parts) or any(p[0] is not parts[0][0] for p in parts):
            return None
        if any(a[2] != b[1] for a, b in zip(parts, parts[1:])):
            return None
        return parts[0][0], parts[0][1], parts[-1][2]
    return None


def match_deform_conv(node: gs.Node) -> DeformMatch | None:
    if node.op != "DeformConv" or len(node.inputs) < 5:
        return None
    a = node.attrs
    if (a.get("group", 1) != 1 or list(a.get("pads", [0] * 4)) != [1] * 4
            or list(a.get("strides", [1, 1])) != [1, 1] or list(a.get("dilations", [1, 1])) != [1, 1]):
        return None
    x, w_t, offset, b_t, mask = node.inputs[:5]
    weight, bias = const(w_t), const(b_t)
    if weight is None or weight.shape[2:] != (3, 3) or bias is None:
        return None
    groups = int(a.get("offset_group", 1))
    off = channel_range(offset)
    sig = producer(mask, "Sigmoid")
    msk = channel_range(sig.inputs[0]) if sig else None
    k = groups * DCN_TAPS
    if off is None or msk is None or off[0] is not msk[0]:
        return None
    om = off[0]
    if (off[1], off[2], msk[1], msk[2]) != (0, 2 * k, 2 * k, 3 * k) or _channels(om) != 3 * k:
        return None
    return DeformMatch(node=node, x=x, om=om, weight=weight.astype(np.float32), bias=bias.astype(np.float32),
                       groups=groups)


def find_deform_convs(graph: gs.Graph) -> list[DeformMatch]:
    return [m for m in map(match_deform_conv, [n for n in graph.nodes if n.op == "DeformConv"]) if m]
