"""The CMake configure-and-build command of engines/cpp the C++ tests run (tests/cpp, testutils.early_jobs)."""
from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
CPP_DIR = REPO / "engines" / "cpp"


def build_command(build: Path) -> str:
    """One bash command: configure engines/cpp into `build` (Release, LibTorch of the installed torch,
    no TensorRT, tests on; Ninja where present), then build it on every core."""
    configure = ["cmake", "-S", str(CPP_DIR), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                 f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
                 "-DHIDA_WITH_TENSORRT=OFF", "-DHIDA_BUILD_TESTS=ON"]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    compile_ = ["cmake", "--build", str(build), "--parallel", str(os.cpu_count() or 2)]
    return f"{shlex.join(configure)} && {shlex.join(compile_)}"
