"""Backends: one interface (hida_rt.backends.base.Backend), chosen by name or "auto".

Each backend lives in `hida_rt/backends/<name>.py` and exposes `BACKEND`, its
class; adding a backend is adding that file and its name below.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import BackendUnavailable
from .base import Backend, check_inputs

# Preference order of "auto": an engine if TensorRT is here, else the fused GPU
# path, else the portable ONNX on onnxruntime, else eager PyTorch.
BACKEND_NAMES = ("tensorrt", "triton", "onnxruntime", "eager")
CHOICES = ("auto",) + BACKEND_NAMES


def backend_class(name: str) -> type[Backend]:
    if name not in BACKEND_NAMES:
        raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(CHOICES)}")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"{__name__}.{name}":
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


def create_backend(name: str = "auto", weights: str | Path | None = None, **options) -> Backend:
    """Load a backend by name ("auto" picks, see BACKEND_NAMES); options are backend-specific
    (device, onnx, engine, ...) and each backend ignores those it does not use."""
    chosen = resolve(name, weights=weights, **options)
    return backend_class(chosen)(weights, **options)


__all__ = ["Backend", "BACKEND_NAMES", "CHOICES", "backend_class", "check_inputs", "create_backend",
           "resolve", "unavailable_reason"]
