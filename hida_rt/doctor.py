"""What hida_rt will do on this machine, on one screen: versions, GPUs, each backend, what `auto` picks and why,
and the GPU self-check verdicts with their figures.

    python -m hida_rt.doctor              # the report
    python -m hida_rt.doctor --probe      # run the GPU self-check now (again), then report
    python -m hida_rt.doctor --json       # the same as one JSON object, for scripts

Exit code 0 when the backend `auto` would pick can run here, 1 when none can,
2 for bad arguments.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import asdict
from importlib import metadata
from typing import Sequence

from . import gpu_info
from .cache_dir import user_cache_dir
from . import self_check as verdicts
from .backends import BACKEND_NAMES, backend_class, parse_device, unavailable_reason
from .cli import prog_name, run_cli
from .cli_options import DEVICE_HELP, ENGINE_HELP

# (label, distributions that provide it): the first installed one is reported.
PACKAGES = (("torch", ("torch",)), ("Triton", ("triton",)), ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
            ("TensorRT", ("tensorrt", "tensorrt-cu13", "tensorrt-cu12")), ("MediaPipe", ("mediapipe",)),
            ("PyAV", ("av",)))
WHAT_FOR = {"Triton": "triton backend", "onnxruntime": "onnxruntime backend", "TensorRT": "tensorrt backend",
            "MediaPipe": "face front end: pip install --no-deps mediapipe==0.10.21 plus 'hida_rt[face]'",
            "PyAV": "video: pip install 'hida_rt[video]'"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog_name("doctor"), description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Example: hida-rt doctor --probe\n\n" + __doc__.split("\n\n")[2])
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.add_argument("--engine", default=None, help=ENGINE_HELP + " (reports whether it can run here)")
    p.add_argument("--probe", action="store_true",
                   help="run the triton backend's self-check on the GPU now, replacing its cached verdict")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    return p


def package_versions() -> dict[str, str | None]:
    found = {}
    for label, dists in PACKAGES:
        found[label] = None
        for dist in dists:
            try:
                found[label] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def driver_summary() -> dict:
    """The driver's version, the CUDA version it supports and the newest PTX ISA it accepts (None: unknown)."""
    cuda = isa = None
    try:  # the table the AOT build chooses its PTX ISA from
        from .export.plugins.ptx_isa import driver_cuda_version, isa_for_cuda
        cuda = driver_cuda_version()
        isa = isa_for_cuda(cuda) if cuda else None
    except ImportError:
        pass
    return dict(driver=gpu_info.driver_version(), cuda=cuda, ptx_isa=isa)


def torch_build() -> dict:
    import torch
    return dict(version=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())


def backend_reasons(options: dict) -> dict[str, str | None]:
    return {name: unavailable_reason(name, **options) for name in BACKEND_NAMES}


def auto_choice(reasons: dict[str, str | None], options: dict, probe: bool) -> dict:
    """What `auto` picks here and why, as hida_rt.backends.choose decides, without probing unless `probe`."""
    if options.get("engine"):
        if reasons["tensorrt"]:
            return dict(backend=None, why=f"--engine was given, but the tensorrt backend cannot run here: "
                                          f"{reasons['tensorrt']}")
        return dict(backend="tensorrt", why="--engine was given and TensorRT can run it here")
    skipped = []
    for name in BACKEND_NAMES:
        if reasons[name]:
            skipped.append(f"{name}: {reasons[name]}")
            continue
        verdict = backend_class(name).self_check(recheck=probe, cached_only=not probe, **options)
        if verdict is not None and not verdict.passed:
            dtype = "fp16" if _on_gpu(options) else "fp32"
            return dict(backend="eager", dtype=dtype,
                        why=f"{name} did not pass its self-check ({verdict.summary()}), so eager {dtype.upper()} "
                            f"runs instead")
        why = f"the first that can run here (order: {', '.join(BACKEND_NAMES)})"
        if name == "triton":
            why = ("its self-check passed here" if verdict is not None else
                   "its self-check has not run on this GPU with these versions yet: it runs on first use (a few "
                   "seconds), and eager FP16 runs instead if it fails")
        elif not gpu_info.gpus():
            why = f"no NVIDIA GPU is present, so {name} runs on the CPU"
        return dict(backend=name, why=why, passed_over=skipped)
    return dict(backend=None, why="no backend can run here: " + "; ".join(skipped))


def _on_gpu(options: dict) -> bool:
    device = parse_device(options.get("device"))
    return device.type == "cuda" if device is not None else bool(gpu_info.gpus())


def gather(device: str | None = None, engine: str | None = None, probe: bool = False) -> dict:
    parse_device(device)  # a bad --device is one line, exit 2
    options = dict(device=device, engine=engine, weights=None)
    versions = package_versions()
    report = dict(python=platform.python_version(), platform=platform.platform(), torch=torch_build(),
                  packages=versions, gpus=gpu_info.gpus(), driver=driver_summary())
    reasons = backend_reasons(options)
    report["backends"] = {name: dict(usable=reason is None, reason=reason) for name, reason in reasons.items()}
    probe_note = None
    if probe and reasons["triton"]:
        probe_note = f"nothing to probe: the triton backend cannot run here ({reasons['triton']})"
    report["auto"] = auto_choice(reasons, options, probe=probe and reasons["triton"] is None)
    report["probe"] = probe_note
    report["self_checks"] = [asdict(v) for v in verdicts.cached_verdicts()]
    report["cache"] = str(user_cache_dir() / verdicts.FOLDER)
    return report


def _gpu_lines(report: dict) -> list[str]:
    if not report["gpus"]:
        lines = ["GPU          none: no NVIDIA GPU is present (PyTorch sees no CUDA device)"]
    else:
        lines = [f"GPU {g['index']}        {g['name']}, compute capability {g['compute_capability']}, "
                 f"{g['memory_gib']} GiB, {g['sms']} SMs" for g in report["gpus"]]
    d = report["driver"]
    if d["driver"] or d["cuda"]:
        lines.append(f"driver       {d['driver'] or 'version unknown'}, CUDA {d['cuda'] or '?'}, accepts PTX ISA up "
                     f"to {d['ptx_isa'] or '?'}")
    return lines


def render(report: dict) -> str:
    t = report["torch"]
    lines = [f"Python       {report['python']} ({report['platform']})",
             f"torch        {t['version']}" + (f" (CUDA {t['cuda']} build)" if t["cuda"] else " (CPU-only build)")]
    for label, version in report["packages"].items():
        if label != "torch":
            lines.append(f"{label:<12} {version or 'not installed'}"
                         + ("" if version or label not in WHAT_FOR else f" ({WHAT_FOR[label]})"))
    lines += _gpu_lines(report)
    lines.append("backends")
    for name, b in report["backends"].items():
        lines.append(f"  {name:<12} " + ("usable" if b["usable"] else f"no: {b['reason']}"))
    a = report["auto"]
    picked = a["backend"] + (f" {a['dtype'].upper()}" if a.get("dtype") else "") if a["backend"] else "nothing"
    lines.append(f"auto picks   {picked}: {a['why']}")
    if report["probe"]:
        lines.append(f"probe        {report['probe']}")
    lines.append(f"self-checks  ({report['cache']})")
    if not report["self_checks"]:
        lines.append("  none cached" + ("" if report["gpus"] else " (they run on a GPU only)"))
    for v in report["self_checks"]:
        verdict = verdicts.Verdict(**v)
        k = v["key"]
        what = k["dtype"] if k.get("dtype") else f"engine {str(k.get('engine_sha256'))[:12]}"
        lines.append(f"  {v['backend']} {what}: {'PASSED' if v['passed'] else 'FAILED'} on "
                     f"{k.get('gpu')} (driver {k.get('driver')}, torch {k.get('torch')}, "
                     f"{'Triton ' + str(k['triton']) if 'triton' in k else 'TensorRT ' + str(k.get('tensorrt'))}, "
                     f"hida_rt {k.get('hida_rt')}), {v['created']}, {v['seconds']} s")
        lines += [f"    {verdicts.describe(c)}" for c in v["checks"]]
        if verdict.note:
            lines.append(f"    {verdict.note}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = gather(args.device, args.engine, probe=args.probe)
    report["exit_code"] = 0 if report["auto"]["backend"] else 1
    print(json.dumps(report, indent=1) if args.json else render(report))
    return report["exit_code"]


if __name__ == "__main__":
    sys.exit(run_cli(main, prog=prog_name("doctor")))
