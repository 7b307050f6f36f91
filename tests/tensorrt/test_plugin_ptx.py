"""The AOT plugins without TensorRT: the PTX each `aot_impl` hands TensorRT, and how it computes a launch.

- Every kernel configuration the FP16 and FP32 engines use compiles to sm_90
  PTX through the path `aot_impl` takes (`compile_plugin`'s plan, built by
  hida_rt.kernels._aot), with the installed Triton and with Triton 3.6 (the
  GPU image's), in the AOT contract: no scratch memory, PTX parameters =
  inputs, int32 extras, outputs in that order (then only Triton's hidden
  scratch pointers).
- Every plugin node's launch (extras, grid) is computed the same way from
  integer shapes and from symbolic ones that, like `trtp.ShapeExpr`, only do
  left-operand `+ - * //`; and what a plugin launches (kernel, constexprs,
  warps, grid, extras) is what the kernel's torch launcher really launches
  for the same tensors, observed on the launch itself.
- Each op module's registration follows `tensorrt.plugin`'s schema rules
  (run against a recording stand-in for `tensorrt.plugin`, since TensorRT is
  not installable here), and nothing else in hida_rt.export.plugins imports
  TensorRT.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import inspect
import random
import types

import pytest
import torch
from testutils.kernel_launches import gpu_host_launches
from testutils.tritons import TRITONS, expected_version, python_for

from hida_rt.export.graph_passes import plugin_instances
from hida_rt.export.plugins import compile as pc
from hida_rt.export.plugins import specs
from hida_rt.export.plugins.specs import OP_MODULES, PLUGINS
from hida_rt.kernels._tolerances import tolerance

# Hopper's largest dynamic shared memory per block.
MAX_SHARED = 227 * 1024
PLUGIN_DIR = Path(specs.__file__).parent


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
def engine_requests(trt_models) -> list[dict]:
    """One compile request per distinct kernel configuration of the FP16 and FP32 engines."""
    requests = {}
    for model, _ in trt_models.values():
        for node, dtype, shapes in plugin_instances(model):
            k = pc.plan_launch(node.op_type, shapes, dtype).kernel
            requests.setdefault(k.config_key(), {"plugin": node.op_type, "shapes": [list(s) for s in shapes],
                                                 "dtype": dtype})
    return list(requests.values())


@pytest.fixture(scope="module", params=TRITONS, ids=lambda t: f"triton-{t}")
def ptx_reports(request, engine_requests):
    """(which Triton, [(request, report)]): each configuration compiled as aot_impl compiles it."""
    python = python_for(request.param)
    return request.param, list(zip(engine_requests, pc.compile_isolated(engine_requests, arch=90, python=python)))


@pytest.mark.slow
def test_every_engine_kernel_builds_for_sm90_without_scratch(ptx_reports):
    which, reports = ptx_reports
    assert {req["plugin"] for req, _ in reports} == set(PLUGINS)
    assert {req["dtype"] for req, _ in reports} == {"fp16", "fp32"}
    for req, r in reports:
        what = f"{req['plugin']} {req['dtype']} {req['shapes'][0]} (Triton {r['triton']})"
        assert r["triton"] == expected_version(which), what
        assert r["target"].startswith("sm_90"), what
        assert r["global_scratch_size"] == 0 and r["profile_scratch_size"] == 0, what
        plan = pc.plan_launch(req["plugin"], [tuple(s) for s in req["shapes"]], req["dtype"])
        k = plan.kernel
        assert r["kernel_name"] == k.name
        # The AOT argument order: inputs, int32 extras, outputs; beyond them only Triton's scratch pointers.
        assert tuple(r["args"]) == tuple(f"{i}_ptr" for i in PLUGINS[req["plugin"]].inputs) + k.scalars + k.outputs
        n_in, n_sc, n_out = len(k.inputs), len(k.scalars), len(k.outputs)
        types_ = r["ptx_param_types"]
        assert types_[:len(r["args"])] == ["ptr"] * n_in + ["u32"] * n_sc + ["ptr"] * n_out, what
        assert set(types_[len(r["args"]):]) <= {"ptr"} and 0 <= r["ptx_params"] - len(r["args"]) <= 2, what
        assert f".entry {r['kernel_name']}(" in r["ptx"], what
        assert r["block"] == [k.num_warps * 32, 1, 1] and 0 <= r["shared_mem"] <= MAX_SHARED, what


# CUDA 12.9's assembler (the ptxas Triton 3.9 bundles for archs below sm_90) accepts PTX ISA 8.8 at most.
CUDA129_ISA = "8.8"


@pytest.mark.slow
@pytest.mark.parametrize("isa", [CUDA129_ISA, "8.4"])
def test_engine_ptx_capped_to_an_older_isa_assembles_with_cuda_12_9(engine_requests, isa):
    """The AOT PTX of every engine configuration, built for ISA `isa` (what `build` chooses for a CUDA 12.9
    or 12.4 driver), declares that ISA and assembles for sm_90a with CUDA 12.9's ptxas, without spills."""
    from concurrent.futures import ThreadPoolExecutor

    from hida_rt.export.plugins import ptx_isa
    from hida_rt.kernels import _ptxas, _triton_compat

    ptxas, release = _triton_compat.ptxas(80)
    if ptx_isa.isa_for_cuda(release) != CUDA129_ISA:
        pytest.skip(f"this Triton bundles ptxas {release} below sm_90, not CUDA 12.9's")
    reports = pc.compile_isolated(engine_requests, arch=90, ptx_version=ptx_isa.isa_number(isa))
    with ThreadPoolExecutor(max_workers=2) as pool:
        stats = list(pool.map(lambda r: _ptxas.assemble(r["ptx"], 90, ptxas=ptxas, gpu_name="sm_90a"), reports))
    problems = []
    for req, r, s in zip(engine_requests, reports, stats):
        what = f"{req['plugin']} {req['dtype']} {req['shapes'][0]}"
        if _aot_isa(r["ptx"]) != isa:
            problems.append(f"{what}: PTX declares ISA {_aot_isa(r['ptx'])}, not {isa}")
        if s.error or s.spills:
            problems.append(f"{what}: {s.error or f'{s.spills} B of spills'} (ptxas {s.ptxas})")
    assert not problems, "\n".join(problems)


def _aot_isa(ptx: str) -> str:
    from hida_rt.kernels._aot import ptx_isa
    return ptx_isa(ptx)


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


class _Desc:
    """Stands in for trtp.TensorDesc and the other tensorrt.plugin classes (annotations are checked as classes)."""


def _stub_qdp() -> tuple[types.SimpleNamespace, dict]:
    """A recording stand-in for tensorrt.plugin's decorators: kind:plugin_id -> the decorated function."""
    funcs = {}

    def decorator(kind):
        def with_id(plugin_id):
            def record(fn):
                assert f"{kind}:{plugin_id}" not in funcs, f"{kind} registered twice for {plugin_id}"
                funcs[f"{kind}:{plugin_id}"] = fn
                return fn
            return record
        return with_id

    trtp = types.SimpleNamespace(register=decorator("register"), autotune=decorator("autotune"),
                                 aot_impl=decorator("aot_impl"), impl=decorator("impl"), TensorDesc=_Desc,
                                 AutoTuneCombination=_Desc, KernelLaunchParams=_Desc, SymIntExprs=_Desc)
    qdp = types.SimpleNamespace(trtp=trtp, AotResult=tuple, type_combination=None, aot_launch=None,
                                output_desc=None)
    return qdp, funcs


def test_registration_follows_the_tensorrt_plugin_schema():
    """register(tensors) -> desc; autotune(tensors, outputs); aot_impl(tensors, outputs, tactic) -> 4-tuple.

    tensorrt.plugin validates exactly these parameter names and orders (and a return annotation on
    register and aot_impl, and annotations that are classes: it calls issubclass on them); a plugin
    without attributes must not declare any. Each op module's register() runs here against a
    recording stand-in for tensorrt.plugin.
    """
    for path in [PLUGIN_DIR / "tensorrt_qdp.py"] + [Path(m.__file__) for m in OP_MODULES]:
        tree = ast.parse(path.read_text())
        assert not any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body), \
            f"{path.name}: postponed (string) annotations would fail tensorrt.plugin's issubclass checks"
    qdp, funcs = _stub_qdp()
    for module in OP_MODULES:
        module.register(qdp)
    for spec in PLUGINS.values():
        pid = spec.plugin_id
        sigs = {kind: inspect.signature(funcs[f"{kind}:{pid}"]) for kind in ("register", "autotune", "aot_impl")}
        params = {kind: list(sig.parameters) for kind, sig in sigs.items()}
        assert params["register"] == list(spec.inputs), pid
        assert params["autotune"] == list(spec.inputs) + ["outputs"], pid
        assert params["aot_impl"] == list(spec.inputs) + ["outputs", "tactic"], pid
        for kind in ("register", "aot_impl"):
            assert sigs[kind].return_annotation is not inspect.Signature.empty, f"{pid}: {kind} needs a return type"
        for p in sigs["register"].parameters.values():
            assert p.annotation is _Desc, f"{pid}: register parameter {p.name} must be annotated trtp.TensorDesc"
        for name in spec.inputs:
            assert sigs["aot_impl"].parameters[name].annotation is _Desc, f"{pid}: aot_impl {name}"
    assert len(funcs) == 3 * len(PLUGINS), sorted(funcs)
    assert not any(key.startswith("impl:") for key in funcs), "JIT impl registered: the engine must be AOT only"


def test_nothing_but_the_registration_imports_tensorrt():
    code = ("import sys; import hida_rt.export.plugins, hida_rt.export.plugins.compile, "
            "hida_rt.export.plugins.reference, hida_rt.export.graph_passes, hida_rt.export.tensorrt_builder, "
            "hida_rt.export.manifest, hida_rt.export.tensorrt_backend, hida_rt.build; "
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


# ---------------------------------------------------------------- a plugin launches what the torch launcher launches

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture
def gen():
    """A CPU generator with a fresh seed per test (its seed goes into messages)."""
    return torch.Generator().manual_seed(random.SystemRandom().randrange(2**31))


def _rand(g, *shape, dtype=torch.float32, scale=1.0):
    return (torch.randn(*shape, generator=g) * scale).to(DEVICE, dtype)


def _torch_launches(op: str, shape: tuple, dtype: torch.dtype, g):
    """Run the kernel's torch launcher (GPU tile/split choices) and return (launches, [(plugin, inputs, out)])."""
    from hida_rt.kernels import deform_conv, ida, meta_acon
    from hida_rt.model import ops
    n, c, h, w = shape
    if op == "ida":
        y, tgb, p1, p2 = _rand(g, n, c, h, w, dtype=dtype), _rand(g, n, 3 * c, h, w, dtype=dtype), _rand(g, c), \
            _rand(g, c)
        with gpu_host_launches(run=True) as log:
            out = ida.ida(y, tgb, p1, p2)
        return log, [("ida", [y, tgb, p1, p2], out)]
    if op == "meta_acon":
        hid = 16
        x = _rand(g, n, c, h, w, dtype=dtype) + 0.5
        fc1_w, fc1_b, fc2_w, fc2_b = _rand(g, hid, c, scale=0.3), _rand(g, hid), _rand(g, c, hid, scale=0.3), \
            _rand(g, c)
        p1, p2 = _rand(g, c), _rand(g, c)
        with gpu_host_launches(run=True) as log:
            out = meta_acon.meta_acon(x, p1, p2, fc1_w, fc1_b, fc2_w, fc2_b)
        mean = x.float().mean(dim=(2, 3))
        return log, [("meta_acon_mean", [x], mean),
                     ("meta_acon_apply", [x, mean, fc1_w, fc1_b, fc2_w, fc2_b, p1, p2], out)]
    if op == "acon_const":
        x, p1, p2, beta = _rand(g, n, c, h, w, dtype=dtype), _rand(g, c), _rand(g, c), _rand(g, c).sigmoid()
        with gpu_host_launches(run=True) as log:
            out = meta_acon.acon_const(x, p1, p2, beta)
        return log, [("acon_const", [x, p1, p2, beta], out)]
    if op == "deform_conv":
        cout = 16
        x, om = _rand(g, n, c, h, w, dtype=dtype), _rand(g, n, 54, h, w, dtype=dtype, scale=1.5)
        wk, b = ops.kcc_weight(_rand(g, cout, c, 3, 3, scale=c ** -0.5)).to(dtype).contiguous(), _rand(g, cout)
        with gpu_host_launches(run=True) as log:
            # The plugin is the torch host's one-launch path: SPLIT_K = 1 (split-K needs a partial buffer).
            out = deform_conv.deform_conv(x, om, wk, b, split_k=1)
        return log, [("deform_conv", [x, om, wk, b], out)]
    raise KeyError(op)


# Shapes where the torch host takes the plugin's path (IDA: the row path, not the split path of few long rows).
LAUNCH_CASES = [("ida", (2, 8, 32, 32)), ("ida", (1, 4, 48, 48)), ("meta_acon", (2, 8, 16, 16)),
                ("meta_acon", (1, 1, 64, 64)), ("acon_const", (2, 8, 16, 16)), ("deform_conv", (1, 8, 4, 4)),
                ("deform_conv", (2, 8, 8, 8))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("op, shape", LAUNCH_CASES, ids=[f"{o}-{'x'.join(map(str, s))}" for o, s in LAUNCH_CASES])
def test_plugin_launches_what_the_torch_launcher_launches(op, shape, dtype, gen):
    """Recorded on the torch launcher's real launch (`kernel[grid](...)`), run by Triton (the CPU interpreter
    here), with the tile and split choices it makes on a GPU: kernel, constexprs, warps, grid and int32 extras
    equal the plugin's plan for the same tensors, and the launch computes the plugin's reference."""
    data = "fp16" if dtype == torch.float16 else "fp32"
    launches, plugins = _torch_launches(op, shape, dtype, gen)
    assert len(launches) == len(plugins), [l.name for l in launches]
    for launch, (name, inputs, out) in zip(launches, plugins):
        what = f"{name} {data} {shape} (seed {gen.initial_seed()})"
        plan = pc.plan_launch(name, [tuple(t.shape) for t in inputs], data)
        k = plan.kernel
        assert launch.name == k.name, what
        assert launch.constexprs == dict(k.constexprs) and launch.num_warps == k.num_warps, what
        assert tuple(launch.grid) + (1,) * (3 - len(launch.grid)) == plan.grid, what
        assert launch.scalars == tuple(v for _, v in plan.scalars), what
        pointers = [a for a in launch.args if isinstance(a, torch.Tensor)]
        assert [(p.numel(), p.dtype) for p in pointers[:len(inputs)]] == \
            [(t.numel(), t.dtype) for t in inputs], f"{what}: input pointers"
        with torch.no_grad():
            ref = PLUGINS[name].reference(*inputs)
        assert ref.dtype == pointers[-1].dtype and ref.numel() == pointers[-1].numel(), f"{what}: output pointer"
        assert torch.isfinite(out).all(), what
        tol_name = {"meta_acon_mean": "meta_acon", "meta_acon_apply": "meta_acon"}.get(name, name)
        atol, rtol = tolerance(tol_name, dtype)
        torch.testing.assert_close(out.float().reshape(ref.shape), ref.float(), atol=atol, rtol=rtol,
                                   msg=lambda m: f"{what}: {m}")
