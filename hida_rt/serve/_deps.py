"""The optional `serve` extra (FastAPI, uvicorn, prometheus-client, python-multipart), imported lazily."""
from __future__ import annotations

import importlib
import importlib.util

from ..errors import MissingDependency

SERVE_INSTALL = 'pip install "fastapi>=0.165" "uvicorn>=0.30" "prometheus-client>=0.20" "python-multipart>=0.0.18" "websockets>=13" "tritonclient[grpc]>=2.50"'
# import name -> what pip installs it
_MODULES = {"fastapi": "fastapi", "uvicorn": "uvicorn", "prometheus_client": "prometheus-client",
            "multipart": "python-multipart"}
# Found, not imported: the server imports these only for --grpc-port (see __main__.v2_model for why).
_FOUND = {"tritonclient": "tritonclient[grpc]", "grpc": "tritonclient[grpc]"}  # the Open Inference Protocol


def require_serve() -> None:
    """Raise MissingDependency (one line, with the install command) unless the serve extra is importable."""
    for module, package in _MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise MissingDependency(f"the sketch service needs {package} ({e}); install the serve extra: "
                                    f"{SERVE_INSTALL}") from None
    for module, package in _FOUND.items():
        if importlib.util.find_spec(module) is None:
            raise MissingDependency(f"the sketch service needs {package} (no module named {module!r}); install "
                                    f"the serve extra: {SERVE_INSTALL}")
