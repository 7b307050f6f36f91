"""The sketch service: python -m hida_rt.serve --weights W (HTTP API, live webcam page, metrics).

See docs/serve.md for the API (routes, parameters, errors, auth, curl
examples). The pieces, so that other hosts (Ray Serve) can reuse them:

- core.SketchService: decode/validate/preprocess -> run_batch (one backend
  call for many inputs) -> encode; StreamSession for live frames;
- batcher.DynamicBatcher: the in-process batcher (any object with
  start/submit/stop and `depth` can replace it);
- app.create_app(service, settings, batcher=...): the FastAPI app.

Needs the optional `serve` extra; importing this package does not.
"""
from __future__ import annotations

__all__ = ["DynamicBatcher", "Settings", "SketchService", "create_app"]


def __getattr__(name: str):
    # Lazy, so `import hida_rt.serve` needs neither FastAPI nor torch until something is used.
    if name == "create_app":
        from .app import create_app
        return create_app
    if name == "DynamicBatcher":
        from .batcher import DynamicBatcher
        return DynamicBatcher
    if name == "Settings":
        from .settings import Settings
        return Settings
    if name == "SketchService":
        from .core import SketchService
        return SketchService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
