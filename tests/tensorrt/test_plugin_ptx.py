"""The AOT plugins without TensorRT: the PTX each `aot_impl` hands TensorRT, and how it computes a launch.

- Every kernel configuration the FP16 engine uses compiles to sm_90 PTX
  through `compile_plugin`, the function `aot_impl` calls, with the AOT
  contract: no scratch memory, parameters = inputs, int32 extras, outputs
  (then only Triton's hidden scratch pointers).
- Every plugin node's launch (extras, grid) is computed the same way from
  integer shapes and from symbolic ones that, like `trtp.ShapeExpr`, only do
  left-operand `+ - * //`: what TensorRT evaluates per batch is what the
  kernels' torch launchers use.
- The registration module follows `tensorrt.plugin`'s schema rules (checked on
  its source, since TensorRT is not importable here), and nothing else in
  hida_rt.export.plugins imports TensorRT.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from hida_rt.export.graph_passes import plugin_instances
from hida_rt.export.plugins import compile as pc
from hida_rt.export.plugins import specs
from hida_rt.export.plugins.specs import PLUGINS

# Hopper's largest dynamic shared memory per block.
MAX_SHARED = 227 * 1024
QDP_SOURCE = Path(specs.__file__).with_name("tensorrt_qdp.py")


class SymDim:
    """An integer expression like trtp.ShapeExpr: `+ - * //` with the expression on the left only."""

    def __init__(self, fn, constant: int | None = None):
        self.fn, self._constant = fn, constant

    @classmethod
    def of(cls, value: int) -> "SymDim":
        return cls(lambda env: value, value)

    def _op(self, other, f):
        o = other if isinstance(other, SymDim) else SymDim.of(other)
        const = f(self._constant, o._constant) if self._constant is not None and o._constant is not None else None
        return SymDim(lambda env: f(self.fn(env), o.fn(env)), const)

    def __add__(self, o):
        return self._op(o, lambda a, b: a + b)

    def __sub__(self, o):
        return self._op(o, lambda a, b: a - b)

    def __mul__(self, o):
        return self._op(o, lambda a, b: a * b)

    def __floordiv__(self, o):
        return self._op(o, lambda a, b: a // b)

    is_fake = False

    @property
    def is_constant(self) -> bool:
        return self._constant is not None

    def constant_value(self) -> int:
        return self._constant


def evaluate(value, batch: int) -> int:
    return value.fn({"batch": batch}) if isinstance(value, SymDim) else value


@pytest.fixture(scope="module")
def fp16_instances(trt_models):
    return plugin_instances(trt_models["fp16"][0])


@pytest.fixture(scope="module")
def ptx_reports(fp16_instances):
    """One report per distinct kernel configuration of the FP16 engine, compiled as aot_impl compiles."""
    requests = {}
    for node, dtype, shapes in fp16_instances:
        k = pc.plan_launch(node.op_type, shapes, dtype).kernel
        key = (k.name, tuple(sorted(k.dtypes.items())), tuple(sorted(k.constexprs.items())), k.num_warps)
        requests.setdefault(key, {"plugin": node.op_type, "shapes": [list(s) for s in shapes], "dtype": dtype})
    return list(zip(requests.values(), pc.compile_isolated(list(requests.values()), arch=90)))


def test_every_engine_kernel_builds_for_sm90_without_scratch(ptx_reports):
    assert {req["plugin"] for req, _ in ptx_reports} == set(PLUGINS)
    for req, r in ptx_reports:
        what = f"{req['plugin']} {req['dtype']} {req['shapes'][0]}"
        assert r["target"].startswith("sm_90"), what
        assert r["global_scratch_size"] == 0 and r["profile_scratch_size"] == 0, what
        plan = pc.plan_launch(req["plugin"], [tuple(s) for s in req["shapes"]], req["dtype"])
        assert r["kernel_name"] == plan.kernel.name
        # The AOT argument order: inputs, int32 extras, outputs; beyond them only Triton's scratch pointers.
        assert tuple(r["args"]) == tuple(f"{i}_ptr" for i in PLUGINS[req["plugin"]].inputs) + \
            plan.kernel.scalars + plan.kernel.outputs, what
        assert 0 <= r["ptx_params"] - len(r["args"]) <= 2, what
        assert f".entry {r['kernel_name']}(" in r["ptx"], what
        assert r["block"] == [plan.kernel.num_warps * 32, 1, 1] and 0 <= r["shared_mem"] <= MAX_SHARED, what


def test_every_plugin_node_launch_is_the_same_from_symbolic_shapes(trt_models):
    """aot_impl computes extras and grid on TensorRT's expressions; evaluated per batch they are the ints'."""
    for precision, (model, _) in trt_models.items():
        for node, dtype, shapes in plugin_instances(model, batch=-1):
            batch = SymDim(lambda env: env["batch"])
            sym = [tuple(batch if d == -1 else SymDim.of(d) for d in s) for s in shapes]
            plan_sym = pc.plan_launch(node.op_type, sym, dtype)
            for n in (1, 3, 8):
                plan = pc.plan_launch(node.op_type, [tuple(n if d == -1 else d for d in s) for s in shapes], dtype)
                assert [(k, evaluate(v, n)) for k, v in plan_sym.scalars] == list(plan.scalars), node.name
                assert [evaluate(v, n) for v in plan_sym.grid] == list(plan.grid), node.name
                assert all(isinstance(v, int) and v >= 1 for v in plan.grid), (node.name, plan.grid)
            assert plan_sym.kernel.constexprs == plan.kernel.constexprs  # config fixed at build time


def test_extras_describe_the_tensors(trt_models):
    for node, dtype, shapes in plugin_instances(trt_models["fp16"][0], batch=2):
        extras = dict(pc.plan_launch(node.op_type, shapes, dtype).scalars)
        n, c, h, w = shapes[0]
        if "n_rows" in extras:
            assert extras["n_rows"] == n * c
        if "HW" in extras:
            assert extras["HW"] == h * w
        if node.op_type == "deform_conv":
            assert extras == {"N": n, "C_in": c, "H": h, "W": w, "C_out": shapes[2][2]}
        if node.op_type == "meta_acon_apply":
            assert extras["HID"] == shapes[2][0] and shapes[1] == (n, c)


def test_only_the_batch_may_be_symbolic():
    batch = SymDim(lambda env: env["batch"])
    height = SymDim(lambda env: env["h"])  # not a build-time constant
    with pytest.raises(ValueError, match="build-time constant"):
        pc.plan_launch("ida", [(batch, SymDim.of(8), height, SymDim.of(4)), (batch, SymDim.of(24), height,
                                                                                SymDim.of(4)),
                               (SymDim.of(8),), (SymDim.of(8),)], "fp16")


def _functions(tree) -> dict[str, ast.FunctionDef]:
    out = {}
    for fn in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
        for dec in fn.decorator_list:
            if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute):
                out[f"{dec.func.attr}:{dec.args[0].value}"] = fn
    return out


def test_registration_follows_the_tensorrt_plugin_schema():
    """register(tensors) -> desc; autotune(tensors, outputs); aot_impl(tensors, outputs, tactic) -> 4-tuple.

    tensorrt.plugin validates exactly these parameter names and orders (and a return annotation on
    register and aot_impl); a plugin without attributes must not declare any.
    """
    tree = ast.parse(QDP_SOURCE.read_text())
    # tensorrt.plugin calls issubclass() on the annotations: postponed (string) annotations would fail there.
    assert not any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body)
    funcs = _functions(tree)
    for spec in PLUGINS.values():
        pid = spec.plugin_id
        params = {kind: [a.arg for a in funcs[f"{kind}:{pid}"].args.args] for kind in ("register", "autotune",
                                                                                     "aot_impl")}
        assert params["register"] == list(spec.inputs), pid
        assert params["autotune"] == list(spec.inputs) + ["outputs"], pid
        assert params["aot_impl"] == list(spec.inputs) + ["outputs", "tactic"], pid
        for kind in ("register", "aot_impl"):
            assert funcs[f"{kind}:{pid}"].returns is not None, f"{pid}: {kind} needs a return annotation"
        assert all(a.annotation is not None for a in funcs[f"register:{pid}"].args.args), pid
    assert not any(key.startswith("impl:") for key in funcs), "JIT impl registered: the engine must be AOT only"


def test_nothing_but_the_registration_imports_tensorrt():
    code = ("import sys; import hida_rt.export.plugins, hida_rt.export.plugins.compile, "
            "hida_rt.export.plugins.reference, hida_rt.export.graph_passes, hida_rt.export.tensorrt_builder, "
            "hida_rt.export.manifest, hida_rt.backends.tensorrt, hida_rt.build; "
            "assert 'tensorrt' not in sys.modules, 'tensorrt imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_autotune_types_are_the_kernels_dtypes():
    """What autotune advertises: data FP32 or FP16 together, parameters and means FP32 either way."""
    both, f32 = "FP32|FP16", "FP32"
    assert PLUGINS["ida"].type_columns() == [both, both, f32, f32, both]
    assert PLUGINS["meta_acon_mean"].type_columns() == [both, f32]
    assert PLUGINS["meta_acon_apply"].type_columns() == [both] + [f32] * 7 + [both]
    assert PLUGINS["acon_const"].type_columns() == [both, f32, f32, f32, both]
    assert PLUGINS["deform_conv"].type_columns() == [both, both, both, f32, both]
