"""Build the TensorRT engine: python -m hida_rt.build --weights hida.pth [-o engines/hida_fp16.plan]

Steps: export the portable ONNX, run the graph passes (merged convs, folded
MetaACON switches, hida_rt plugin nodes, explicit FP16), write the TensorRT
ONNX beside the engine, build a strongly typed engine with TensorRT (AOT
plugins, batch profile 1..--max-batch, timing cache) and write the manifest
`<engine>.json`. `--verify` compares with FP32 eager on the sample faces and
random inputs and records the figures in the manifest.

Without TensorRT or a GPU the TensorRT ONNX and an "unbuilt" manifest are
still written, and the command stops with one line naming what is missing
and the command that finishes the build on a machine that has both.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from . import __version__
from .checkpoint import file_sha256
from .cli import atomic_path, run_cli
from .errors import BackendUnavailable, HidaError, InputError
from .model import SIZE_MULTIPLE

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hida_rt.build",
        description="Build HIDA's TensorRT engine (FP16, strongly typed, hida_rt AOT plugins) and its manifest.\n"
                    "Needs TensorRT >= 10.9 and a CUDA GPU for the engine; without them it writes the TensorRT\n"
                    "ONNX and an unbuilt manifest, and says how to finish the build elsewhere.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes beside the engine: <engine stem>.trt.onnx (the TensorRT ONNX), <engine>.json (the\n"
               "manifest), <engine stem>.timing.cache.\n\n"
               f"Exit codes: 0 built (and verified); 2 bad input or build failure; {EXIT_NOT_BUILT} no TensorRT or no\n"
               f"GPU here (ONNX and unbuilt manifest written); {EXIT_PARITY} built, but --verify missed the precision\n"
               "targets (the figures are in the manifest).\n\n"
               "Example: python -m hida_rt.build --weights hida.pth -o engines/hida_fp16.plan --max-batch 8 --verify")
    p.add_argument("--weights", "-w", required=True, help="HIDA checkpoint: Lightning .ckpt or plain state dict .pth")
    p.add_argument("--output", "-o", default=DEFAULT_ENGINE, help=f"engine file to write (default {DEFAULT_ENGINE})")
    p.add_argument("--max-batch", type=int, default=8, help="largest batch the engine takes (default 8)")
    p.add_argument("--opt-batch", type=int, default=1, help="batch TensorRT tunes for (default 1: latency)")
    p.add_argument("--height", type=int, default=256, help=f"input height, a multiple of {SIZE_MULTIPLE} (default 256)")
    p.add_argument("--width", type=int, default=256, help=f"input width, a multiple of {SIZE_MULTIPLE} (default 256)")
    p.add_argument("--verify", action="store_true",
                   help="compare with FP32 eager on the sample faces and random inputs; record figures in the "
                        "manifest (without TensorRT: the TensorRT ONNX in onnx.reference, on the CPU)")
    p.add_argument("--timing-cache", default=None, help="timing cache file (default <engine stem>.timing.cache)")
    p.add_argument("--workspace", type=int, default=None, metavar="MB", help="TensorRT workspace limit in MB")
    p.add_argument("--verbose", action="store_true", help="TensorRT's full log on stderr")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines, only the result")
    return p


class _Steps:
    def __init__(self, enabled: bool):
        self.enabled, self.t0 = enabled, time.perf_counter()

    def __call__(self, what: str) -> None:
        if self.enabled:
            print(f"  [{time.perf_counter() - self.t0:6.1f} s] {what}", file=sys.stderr, flush=True)


def _paths(args) -> tuple[Path, Path, Path, Path]:
    from hida_rt.export.manifest import manifest_path
    plan = Path(args.output)
    if plan.is_dir():
        raise InputError(f"{plan}: is a directory; pass -o with a file name such as {plan / 'hida_fp16.plan'}")
    cache = Path(args.timing_cache) if args.timing_cache else plan.with_name(plan.stem + ".timing.cache")
    return plan, plan.with_name(plan.stem + ".trt.onnx"), manifest_path(plan), cache


def _check_args(args) -> None:
    from hida_rt.export.onnx_export import check_size
    check_size(args.height, args.width)
    if args.max_batch < 1:
        raise InputError("--max-batch must be at least 1")
    if args.workspace is not None and args.workspace < 1:
        raise InputError("--workspace must be a positive number of MB")
    if not 1 <= args.opt_batch <= args.max_batch:
        raise InputError(f"--opt-batch must be between 1 and --max-batch ({args.max_batch})")
    if not Path(args.weights).is_file():
        raise InputError(f"{args.weights}: no such checkpoint file (pass --weights with the HIDA .ckpt/.pth)")


def finish_command(args) -> str:
    """The command that builds this engine on another machine (same weights file, same settings)."""
    cmd = ["python", "-m", "hida_rt.build", "--weights", args.weights, "-o", args.output,
           "--max-batch", str(args.max_batch), "--height", str(args.height), "--width", str(args.width)]
    if args.opt_batch != 1:
        cmd += ["--opt-batch", str(args.opt_batch)]
    if args.workspace is not None:
        cmd += ["--workspace", str(args.workspace)]
    if args.verify:
        cmd.append("--verify")
    return shlex.join(cmd)


def _io(args) -> tuple[list[dict], list[dict]]:
    h, w = args.height, args.width
    inputs = [{"name": "photo", "dtype": "float32", "shape": [-1, 3, h, w]},
              {"name": "depth", "dtype": "float32", "shape": [-1, 1, h, w]},
              {"name": "style", "dtype": "float32", "shape": [-1, 3]}]
    return inputs, [{"name": "sketch", "dtype": "float32", "shape": [-1, 1, h, w]}]


def _reference_parity(trt_model, weights: str, args, say) -> dict:
    """L2 on the CPU: the TensorRT ONNX in onnx.reference (plugins by their torch references) vs eager."""
    import torch

    from hida_rt.checkpoint import load_generator
    from hida_rt.export import trt_parity
    from hida_rt.export.plugins.reference import evaluate, evaluator
    say("verifying the TensorRT ONNX in onnx.reference against eager FP32 (CPU)")
    model = load_generator(weights, "cpu")
    ev = evaluator(trt_model)
    cases = {}
    for label, p, d, s in trt_parity.sample_inputs(args.height, args.width) or \
            [trt_parity.random_inputs(1, args.height, args.width)]:
        with torch.no_grad():
            want = model(p, d, s)
        cases[label] = trt_parity.compare(evaluate(ev, p, d, s), want)
    return trt_parity.summarize(cases, "fp16")


def _engine_parity(plan: Path, weights: str, args, say) -> dict:
    """L5: the engine on the GPU vs eager FP32 on the GPU, on the samples and a random batch."""
    import torch

    from hida_rt.backends.tensorrt import TensorRTBackend
    from hida_rt.checkpoint import load_generator
    from hida_rt.export import trt_parity
    say("verifying the engine against eager FP32 on the GPU")
    backend = TensorRTBackend(weights=None, engine=plan)
    model = load_generator(weights, "cuda")
    inputs = trt_parity.sample_inputs(args.height, args.width)
    inputs.append(trt_parity.random_inputs(min(RANDOM_BATCH, args.max_batch), args.height, args.width))
    cases = {}
    for label, p, d, s in inputs:
        with torch.no_grad():
            want = model(p.cuda(), d.cuda(), s.cuda())
        cases[label] = trt_parity.compare(backend.run(p.cuda(), d.cuda(), s.cuda()), want)
    return trt_parity.summarize(cases, "fp16")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check_args(args)
    plan, onnx_path, manifest_file, cache = _paths(args)
    say = _Steps(not args.quiet)
    import onnx

    from hida_rt.export import manifest as mf
    from hida_rt.export import tensorrt_builder as tb
    from hida_rt.export.graph_passes import tensorrt_onnx
    from hida_rt.export.onnx_export import build_onnx_model

    say(f"exporting {args.weights} to the portable ONNX ({args.height}x{args.width})")
    portable = build_onnx_model(args.weights, args.height, args.width, progress=False)
    trt_model, report = tensorrt_onnx(portable, "fp16", progress=say)
    say(f"graph passes: {report.line()}")
    with atomic_path(onnx_path) as tmp:
        onnx.save_model(trt_model, str(tmp))
    say(f"wrote the TensorRT ONNX {onnx_path}")
    inputs, outputs = _io(args)
    env = tb.environment()
    m = mf.Manifest(
        status="unbuilt", engine=plan.name, trt_onnx=onnx_path.name, precision="fp16", height=args.height,
        width=args.width, batch={"min": 1, "opt": args.opt_batch, "max": args.max_batch}, inputs=inputs,
        outputs=outputs, weights_sha256=file_sha256(args.weights), trt_onnx_sha256=file_sha256(onnx_path),
        hida_rt_version=__version__, created=mf.now_utc(), plugins=report.plugins, graph_passes=report.as_dict(),
        weights=str(args.weights), cuda_version=tb.cuda_version(), gpu_name=env.gpu_name,
        compute_capability=env.compute_capability, tensorrt_version=env.tensorrt_version)
    if args.verify:
        m.parity["reference_evaluator"] = _reference_parity(trt_model, args.weights, args, say)
    missing = tb.missing_for_build(env)
    if missing:
        m.missing, m.finish_command = missing, finish_command(args)
        mf.write_manifest(m, manifest_file)
        raise EngineNotBuilt(f"no engine built: {missing}. Wrote {onnx_path} and {manifest_file} (unbuilt). "
                             f"On a machine with TensorRT >= 10.9 and a GPU run: {m.finish_command}")
    built = tb.build_engine(onnx_path, plan, tb.BuildSettings(max_batch=args.max_batch, opt_batch=args.opt_batch,
                                                              timing_cache=cache, workspace_mb=args.workspace,
                                                              verbose=args.verbose), progress=say)
    m.status, m.engine_sha256, m.tensorrt_version = "built", file_sha256(plan), built.tensorrt_version
    m.inputs, m.outputs = built.inputs, built.outputs
    mf.write_manifest(m, manifest_file)
    say(f"wrote {plan} ({plan.stat().st_size / 1e6:.1f} MB, {built.seconds:.0f} s) and {manifest_file}")
    if args.verify:
        m.parity["engine"] = _engine_parity(plan, args.weights, args, say)
        mf.write_manifest(m, manifest_file)
        if not m.parity["engine"]["passed"]:
            e = m.parity["engine"]
            raise ParityFailed(f"{plan}: engine vs eager misses the targets ({e['targets']}): mean |d| "
                               f"{e['mean_abs_01']:.2e}, PSNR {e['psnr_db_01']:.1f} dB, {e['nonfinite']} NaN/Inf; "
                               f"figures in {manifest_file}")
    verified = ""
    if args.verify:
        e = m.parity["engine"]
        verified = f"; vs eager: mean |d| {e['mean_abs_01']:.1e}, PSNR {e['psnr_db_01']:.1f} dB"
    print(f"built {plan} (TensorRT {m.tensorrt_version}, {m.gpu_name}, batch 1..{args.max_batch}, "
          f"{sum(report.plugins.values())} plugin nodes){verified}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.build"))
