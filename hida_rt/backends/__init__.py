"""Backends: one interface (hida_rt.backends.base.Backend), chosen by name or "auto".

Each backend is a module that exposes `BACKEND`, its class; adding one is
adding that module and its entry in BACKEND_MODULES. eager builds on
hida_rt core alone and lives here. onnxruntime (exports the ONNX on first
use) and tensorrt (reads the engine manifest the builder writes) build on
the exporters, so they live in hida_rt.export; triton runs the fused graph
on the Triton kernels, so it lives in hida_rt.kernels; both one floor up.
The table names them and importlib loads them when one is asked for: no
hida_rt core module imports the export or kernels layer.

`choose` (and `resolve`, its name alone) asks a backend that can run for
its first-use self-check verdict (Backend.self_check; the triton backend has
one) before using it: see docs/gpu.md, "The self-check".
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import torch

from ..errors import BackendUnavailable
from .base import Backend, check_inputs
from .devices import parse_device

# Preference order of "auto": an engine if TensorRT is here, else the fused GPU
# path, else the portable ONNX on onnxruntime, else eager PyTorch.
BACKEND_NAMES = ("tensorrt", "triton", "onnxruntime", "eager")
CHOICES = ("auto",) + BACKEND_NAMES
BACKEND_MODULES = {
    "tensorrt": "hida_rt.export.tensorrt_backend",
    "triton": "hida_rt.kernels.triton_backend",
    "onnxruntime": "hida_rt.export.onnxruntime_backend",
    "eager": f"{__name__}.eager",
}


def backend_class(name: str) -> type[Backend]:
    if name not in BACKEND_NAMES:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(CHOICES)}")
    module_name = BACKEND_MODULES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # The module itself, or its package (hida_rt.export/kernels in a build without it), is absent.
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise BackendUnavailable(f"backend {name!r} is not part of this build of hida_rt") from None
        raise
    return module.BACKEND


def unavailable_reason(name: str, **options) -> str | None:
    try:
        return backend_class(name).unavailable_reason(**options)
    except BackendUnavailable as e:
        return str(e)


def _on_gpu(options: dict) -> bool:
    device = parse_device(options.get("device"))
    return device.type == "cuda" if device is not None else torch.cuda.is_available()


def _say_once(topic: str, line: str) -> None:
    # resolve runs more than once per process (prepare, then create_backend): say each fallback once.
    if topic not in _said:
        _said.add(topic)
        print(f"hida_rt: {line}", file=sys.stderr, flush=True)


_said: set[str] = set()


def self_check(name: str, **options):
    """The self-check verdict of backend `name` here (see Backend.self_check), or None if it has none."""
    return backend_class(name).self_check(**options)


def choose(name: str = "auto", **options) -> tuple[str, dict]:
    """The backend `name` stands for here and the options it changes (the eager fallback's dtype).

    A backend with a first-use self-check (triton) is used only with a passing verdict: named explicitly,
    a failing verdict is a one-line refusal with its figures; under "auto" it falls back to eager (FP16
    on a GPU) and says why in one line.
    """
    if name != "auto":
        reason = unavailable_reason(name, **options)
        if reason:
            raise BackendUnavailable(f"backend {name!r} cannot run here: {reason}")
        verdict = self_check(name, **options)
        if verdict is not None and not verdict.passed:
            raise BackendUnavailable(f"backend {name!r} did not pass its self-check: {verdict.summary()}; "
                                     f"`python -m hida_rt.doctor` lists every figure, --recheck probes again")
        return name, {}
    parse_device(options.get("device"))  # a bad --device is its own one-line error, not "no backend can run"
    if options.get("engine"):
        # A named engine means the user wants TensorRT: say why not rather than quietly run another backend.
        reason = unavailable_reason("tensorrt", **options)
        if reason:
            raise BackendUnavailable(f"--engine {options['engine']} was given, but the tensorrt backend cannot run "
                                     f"here: {reason}")
        return "tensorrt", {}
    for candidate in BACKEND_NAMES:
        if unavailable_reason(candidate, **options) is None:
            verdict = self_check(candidate, **options)
            if verdict is not None and not verdict.passed:
                extra = {"dtype": "fp16"} if _on_gpu(options) else {}
                _say_once(candidate, f"the {candidate} backend did not pass its self-check, so eager "
                          f"{extra.get('dtype', 'fp32').upper()} runs instead: {verdict.summary()}")
                return "eager", extra
            return candidate, {}
    raise BackendUnavailable("no backend can run here")


def resolve(name: str = "auto", **options) -> str:
    """The backend name "auto" stands for here, or `name` itself if it can run (see choose)."""
    return choose(name, **options)[0]


def prepare(name: str, weights: str | Path, height: int, width: int, progress: bool = True,
            **options) -> tuple[str, dict]:
    """Resolve `name` once and do the backend's one-off work (e.g. the ONNX export) before many processes
    load it; returns the backend name and the options to create it with."""
    chosen, changed = choose(name, weights=weights, **options)
    options = {**options, **changed}
    extra = backend_class(chosen).prepare(weights, height, width, progress=progress, **options)
    return chosen, {**options, **extra}


def create_backend(name: str = "auto", weights: str | Path | None = None, **options) -> Backend:
    """Load a backend by name ("auto" picks, see BACKEND_NAMES); options are backend-specific
    (device, onnx, engine, ...) and each backend ignores those it does not use."""
    chosen, changed = choose(name, weights=weights, **options)
    return backend_class(chosen)(weights, **{**options, **changed})


__all__ = ["Backend", "BACKEND_MODULES", "BACKEND_NAMES", "CHOICES", "backend_class", "check_inputs", "choose",
           "create_backend", "prepare", "resolve", "self_check", "unavailable_reason"]
