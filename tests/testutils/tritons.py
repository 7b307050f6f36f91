"""The Triton versions the PTX checks build with: the installed one, and 3.6 (the GPU image's) from its own venv.

tools/install-test-deps.sh prepares the second environment once per machine:
a venv with the system site-packages (torch, this checkout's editable
install) and `triton==3.6.0` on top, at TRITON36_VENV (override the Python
with HIDA_TRITON36_PYTHON). Where it is missing the 3.6 cases skip and say
how to make it, unless CI=true or HIDA_REQUIRE_PREPARED_ENVS=1 turns that into a failure.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TRITON36 = "3.6.0"
TRITON36_VENV = Path(os.environ.get("HIDA_RT_CACHE", Path.home() / ".cache" / "hida_rt")) / "venv-triton-3.6"


def triton36_python() -> str | None:
    path = os.environ.get("HIDA_TRITON36_PYTHON") or str(TRITON36_VENV / "bin" / "python")
    return path if os.path.exists(path) else None


def installed_triton() -> str:
    from importlib.metadata import version
    return version("triton")


def prepared_envs_required() -> bool:
    """CI (CI=true, or HIDA_REQUIRE_PREPARED_ENVS=1) fails where a prepared environment is missing; elsewhere
    such tests skip."""
    flag = os.environ.get("HIDA_REQUIRE_PREPARED_ENVS")
    return flag == "1" if flag is not None else os.environ.get("CI") == "true"


def python_for(which: str) -> str:
    """The interpreter that builds with Triton `which` ("installed" or TRITON36); skips if there is none."""
    if which == "installed":
        return sys.executable
    python = triton36_python()
    if python is None:
        reason = (f"no Triton {TRITON36} environment at {TRITON36_VENV} (bash tools/install-test-deps.sh makes it; "
                  f"or set HIDA_TRITON36_PYTHON)")
        if prepared_envs_required():
            pytest.fail(reason)
        pytest.skip(reason)
    return python


def expected_version(which: str) -> str:
    return installed_triton() if which == "installed" else TRITON36


TRITONS = ["installed", TRITON36]


def python_or_none(which: str) -> str | None:
    """The interpreter that builds with Triton `which`, or None where that environment is missing."""
    return sys.executable if which == "installed" else triton36_python()


def sass_cases() -> list[tuple[str, int]]:
    """(Triton, arch) pairs the SASS test assembles: the installed Triton for every CI arch, 3.6 for sm_90."""
    from hida_rt.kernels.sass import CI_ARCHS
    return [("installed", arch) for arch in CI_ARCHS] + [(TRITON36, 90)]
