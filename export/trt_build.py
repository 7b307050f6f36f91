"""The whole TensorRT build behind `python -m hida_rt.build`: weights -> engine, TensorRT ONNX and manifest.

    request = EngineRequest(weights="hida.ckpt", output="engines/hida_fp16.plan", max_batch=8, verify=True)
    result = build_engine_files(request, progress=print)     # EngineNotBuilt / ParityFailed / HidaError
    print(result.line())

Steps: export the portable ONNX (onnx_export), run the graph passes
(graph_passes: merged convs, folded MetaACON switches, hida_rt plugin nodes,
explicit FP16), write the TensorRT ONNX beside the engine, build a strongly
typed engine (tensorrt_builder: AOT plugins, batch profile 1..max_batch,
timing cache) and write the manifest `<engine>.json` (manifest). `verify`
compares with FP32 eager on the sample faces and random inputs (trt_parity)
and records the figures in the manifest.

Without TensorRT or a GPU the TensorRT ONNX and an "unbuilt" manifest are
still written, and EngineNotBuilt names what is missing and the command that
finishes the build on a machine that has both.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hida_rt import __version__
from hida_rt.checkpoint import check_weights_file, file_sha256
from hida_rt.cli import atomic_path
from hida_rt.errors import BackendUnavailable, HidaError, InputError
from hida_rt.model import check_size

from . import manifest as mf
from .plugins import ptx_isa

DEFAULT_ENGINE = "engines/hida_fp16.plan"
EXIT_NOT_BUILT = 3
EXIT_PARITY = 4
RANDOM_BATCH = 2


class EngineNotBuilt(BackendUnavailable):
    """This machine cannot build the engine; the TensorRT ONNX and an unbuilt manifest were written."""

    exit_code = EXIT_NOT_BUILT


class ParityFailed(HidaError):
    """The engine was built but misses the FP16 precision targets against eager."""

    exit_code = EXIT_PARITY


@dataclass
class EngineRequest:
    """What to build; the fields are the options of python -m hida_rt.build."""

    weights: str
    output: str = DEFAULT_ENGINE
    max_batch: int = 8
    opt_batch: int = 1
    height: int = 256
    width: int = 256
    verify: bool = False
    timing_cache: str | None = None
    workspace: int | None = None      # MB
    verbose: bool = False
    ptx_isa: str | None = None        # "8.4": the plugins' PTX ISA; None: the driver's newest (plugins.ptx_isa)

    def check(self) -> None:
        """One-line HidaError for settings that cannot be built, before any work."""
        check_size(self.height, self.width)
        if self.max_batch < 1:
            raise InputError("--max-batch must be at least 1")
        if self.workspace is not None and self.workspace < 1:
            raise InputError("--workspace must be a positive number of MB")
        if not 1 <= self.opt_batch <= self.max_batch:
            raise InputError(f"--opt-batch must be between 1 and --max-batch ({self.max_batch})")
        if self.ptx_isa is not None:
            self.ptx_isa = ptx_isa.parse_isa(self.ptx_isa)
        check_weights_file(self.weights)

    def paths(self) -> tuple[Path, Path, Path, Path]:
        """(engine, TensorRT ONNX, manifest, timing cache)."""
        plan = Path(self.output)
        if plan.is_dir():
            raise InputError(f"{plan}: is a directory; pass -o with a file name such as {plan / 'hida_fp16.plan'}")
        cache = Path(self.timing_cache) if self.timing_cache else plan.with_name(plan.stem + ".timing.cache")
        return plan, plan.with_name(plan.stem + ".trt.onnx"), mf.manifest_path(plan), cache


def finish_command(request) -> str:
    """The command that builds this engine on another machine (same weights file, same settings).

    `request`: an EngineRequest, or the parsed arguments of python -m hida_rt.build (same names).
    """
    cmd = ["python", "-m", "hida_rt.build", "--weights", request.weights, "-o", request.output,
           "--max-batch", str(request.max_batch), "--height", str(request.height), "--width", str(request.width)]
    if request.opt_batch != 1:
        cmd += ["--opt-batch", str(request.opt_batch)]
    if request.workspace is not None:
        cmd += ["--workspace", str(request.workspace)]
    if getattr(request, "ptx_isa", None):
        cmd += ["--ptx-isa", request.ptx_isa]
    if request.verify:
        cmd.append("--verify")
    return shlex.join(cmd)


def _io(request: EngineRequest) -> tuple[list[dict], list[dict]]:
    h, w = request.height, request.width
    inputs = [{"name": "photo", "dtype": "float32", "shape": [-1, 3, h, w]},
              {"name": "depth", "dtype": "float32", "shape": [-1, 1, h, w]},
              {"name": "style", "dtype": "float32", "shape": [-1, 3]}]
    return inputs, [{"name": "sketch", "dtype": "float32", "shape": [-1, 1, h, w]}]


def _reference_parity(trt_model, request: EngineRequest, say) -> dict:
    """L2 on the CPU: the TensorRT ONNX in onnx.reference (plugins by their torch references) vs eager."""
    import torch

    from hida_rt.checkpoint import load_generator

    from . import trt_parity
    from .plugins.reference import evaluate, evaluator
    say("verifying the TensorRT ONNX in onnx.reference against eager FP32 (CPU)")
    model = load_generator(request.weights, "cpu")
    ev = evaluator(trt_model)
    cases = {}
    for label, p, d, s in trt_parity.sample_inputs(request.height, request.width) or \
            [trt_parity.random_inputs(1, request.height, request.width)]:
        with torch.no_grad():
            want = model(p, d, s)
        cases[label] = trt_parity.compare(evaluate(ev, p, d, s), want)
    return trt_parity.summarize(cases, "fp16")


def _engine_parity(plan: Path, request: EngineRequest, say) -> dict:
    """L5: the engine on the GPU vs eager FP32 on the GPU, on the samples and a random batch."""
    import torch

    from hida_rt.checkpoint import load_generator

    from . import trt_parity
    from .tensorrt_backend import TensorRTBackend
    say("verifying the engine against eager FP32 on the GPU")
    backend = TensorRTBackend(weights=None, engine=plan)
    model = load_generator(request.weights, "cuda")
    inputs = trt_parity.sample_inputs(request.height, request.width)
    inputs.append(trt_parity.random_inputs(min(RANDOM_BATCH, request.max_batch), request.height, request.width))
    cases = {}
    for label, p, d, s in inputs:
        with torch.no_grad():
            want = model(p.cuda(), d.cuda(), s.cuda())
        cases[label] = trt_parity.compare(backend.run(p.cuda(), d.cuda(), s.cuda()), want)
    return trt_parity.summarize(cases, "fp16")


@dataclass
class BuiltFiles:
    plan: Path
    manifest: mf.Manifest
    plugin_nodes: int

    def line(self) -> str:
        m, verified = self.manifest, ""
        if "engine" in m.parity:
            e = m.parity["engine"]
            verified = f"; vs eager: mean |d| {e['mean_abs_01']:.1e}, PSNR {e['psnr_db_01']:.1f} dB"
        return (f"built {self.plan} (TensorRT {m.tensorrt_version}, {m.gpu_name}, batch 1..{m.max_batch()}, "
                f"{self.plugin_nodes} plugin nodes){verified}")


def build_engine_files(request: EngineRequest, progress: Callable[[str], None] | None = None) -> BuiltFiles:
    """Run the whole build (see the module doc); `progress` gets one line per step."""
    say = progress or (lambda _: None)
    request.check()
    plan, onnx_path, manifest_file, cache = request.paths()
    import onnx

    from . import tensorrt_builder as tb
    from .graph_passes import tensorrt_onnx
    from .onnx_export import build_onnx_model

    say(f"exporting {request.weights} to the portable ONNX ({request.height}x{request.width})")
    portable = build_onnx_model(request.weights, request.height, request.width, progress=False)
    trt_model, report = tensorrt_onnx(portable, "fp16", progress=say)
    say(f"graph passes: {report.line()}")
    with atomic_path(onnx_path) as tmp:
        onnx.save_model(trt_model, str(tmp))
    say(f"wrote the TensorRT ONNX {onnx_path}")
    inputs, outputs = _io(request)
    env = tb.environment()
    m = mf.Manifest(
        status="unbuilt", engine=plan.name, trt_onnx=onnx_path.name, precision="fp16", height=request.height,
        width=request.width, batch={"min": 1, "opt": request.opt_batch, "max": request.max_batch}, inputs=inputs,
        outputs=outputs, weights_sha256=file_sha256(request.weights), trt_onnx_sha256=file_sha256(onnx_path),
        hida_rt_version=__version__, created=mf.now_utc(), plugins=report.plugins, graph_passes=report.as_dict(),
        weights=str(request.weights), cuda_version=tb.cuda_version(), gpu_name=env.gpu_name,
        compute_capability=env.compute_capability, tensorrt_version=env.tensorrt_version)
    if request.verify:
        m.parity["reference_evaluator"] = _reference_parity(trt_model, request, say)
    missing = tb.missing_for_build(env)
    if missing:
        m.missing, m.finish_command = missing, finish_command(request)
        mf.write_manifest(m, manifest_file)
        raise EngineNotBuilt(f"no engine built: {missing}. Wrote {onnx_path} and {manifest_file} (unbuilt). "
                             f"On a machine with TensorRT >= 10.9 and a GPU run: {m.finish_command}")
    arch = round(10 * float(env.compute_capability))
    m.ptx_isa = ptx_isa.choose(arch, request.ptx_isa, env.driver_cuda_version, ptx_isa.triton_default_isa(arch))
    say(f"plugin PTX: ISA {m.ptx_isa} for sm_{arch} (driver CUDA {env.driver_cuda_version or 'unknown'})")
    with ptx_isa.building_with(m.ptx_isa):
        built = tb.build_engine(onnx_path, plan, tb.BuildSettings(max_batch=request.max_batch,
                                                                  opt_batch=request.opt_batch, timing_cache=cache,
                                                                  workspace_mb=request.workspace,
                                                                  verbose=request.verbose), progress=say)
    m.status, m.engine_sha256, m.tensorrt_version = "built", file_sha256(plan), built.tensorrt_version
    m.inputs, m.outputs = built.inputs, built.outputs
    mf.write_manifest(m, manifest_file)
    say(f"wrote {plan} ({plan.stat().st_size / 1e6:.1f} MB, {built.seconds:.0f} s) and {manifest_file}")
    if request.verify:
        m.parity["engine"] = _engine_parity(plan, request, say)
        mf.write_manifest(m, manifest_file)
        if not m.parity["engine"]["passed"]:
            e = m.parity["engine"]
            raise ParityFailed(f"{plan}: engine vs eager misses the targets ({e['targets']}): mean |d| "
                               f"{e['mean_abs_01']:.2e}, PSNR {e['psnr_db_01']:.1f} dB, {e['nonfinite']} NaN/Inf; "
                               f"figures in {manifest_file}")
    return BuiltFiles(plan, m, sum(report.plugins.values()))
