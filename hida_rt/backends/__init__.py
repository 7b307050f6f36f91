"""Backends: one interface (hida_rt.backends.base.Backend), chosen by name or "auto".

Each backend is a module that exposes `BACKEND`, its class; adding one is
adding that module and its entry in BACKEND_MODULES. eager builds on
hida_rt core alone and lives here. onnxruntime (exports the ONNX on first
use) and tensorrt (reads the engine manifest the builder writes) build on
the exporters, so they live in hida_rt.export; triton runs the fused graph
on the Triton kernels, so it lives in hida_rt.kernels; both one floor up.
The table names them and importlib loads them when one is asked for: no
hida_rt core module imports the export or kernels layer.
"""
from __future__ import annotations

import importlib
from pathlib import Path

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


def resolve(name: str = "auto", **options) -> str:
    """The backend name "auto" stands for here, or `name` itself if it can run."""
    if name != "auto":
        reason = unavailable_reason(name, **options)
        if reason:
            raise BackendUnavailable(f"backend {name!r} cannot run here: {reason}")
        return name
    parse_device(options.get("device"))  # a bad --device is its own one-line error, not "no backend can run"
    if options.get("engine"):
        # A named engine means the user wants TensorRT: say why not rather than quietly run another backend.
        reason = unavailable_reason("tensorrt", **options)
        if reason:
            raise BackendUnavailable(f"--engine {options['engine']} was given, but the tensorrt backend cannot run "
                                     f"here: {reason}")
        return "tensorrt"
    for candidate in BACKEND_NAMES:
        if unavailable_reason(candidate, **options) is None:
            return candidate
    raise BackendUnavailable("no backend can run here")


def prepare(name: str, weights: str | Path, height: int, width: int, progress: bool = True,
            **options) -> tuple[str, dict]:
    """Resolve `name` once and do the backend's one-off work (e.g. the ONNX export) before many processes
    load it; returns the backend name and the options to create it with."""
    chosen = resolve(name, weights=weights, **options)
    extra = backend_class(chosen).prepare(weights, height, width, progress=progress, **options)
    return chosen, {**options, **extra}


def create_backend(name: str = "auto", weights: str | Path | None = None, **options) -> Backend:
    """Load a backend by name ("auto" picks, see BACKEND_NAMES); options are backend-specific
    (device, onnx, engine, ...) and each backend ignores those it does not use."""
    chosen = resolve(name, weights=weights, **options)
    return backend_class(chosen)(weights, **options)


__all__ = ["Backend", "BACKEND_MODULES", "BACKEND_NAMES", "CHOICES", "backend_class", "check_inputs",
           "create_backend", "prepare", "resolve", "unavailable_reason"]
