"""Fixtures of the C++ tests: one CMake build of engines/cpp per session, in the background.

Needs cmake, a C++17 compiler, stb (Debian: libstb-dev) and nlohmann_json
(nlohmann-json3-dev); without them the tests skip, except under CI=true, where
they fail, so CI cannot pass without running them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from testutils import early_jobs
from testutils.cpp_build import build_command


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"C++ test cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cpp_build(tmp_path_factory):
    """Configure and build engines/cpp in the background, once per session.

    Started with the session when C++ tests were collected (testutils.early_jobs), else here; the build
    (about 25 s on 2 cores) then overlaps other work. HIDA_CPP_BUILD_DIR reuses a build folder across
    sessions (CMake then rebuilds only what changed). Yields (process, build folder, the early job or None:
    then the process's output is a pipe).
    """
    if shutil.which("cmake") is None:
        unavailable("cmake not found")
    job = early_jobs.get("cpp_build")
    if job is not None:
        yield job.proc, job.outputs["build"], job
        return
    build = Path(os.environ.get("HIDA_CPP_BUILD_DIR") or tmp_path_factory.mktemp("cpp_build"))
    proc = subprocess.Popen(["bash", "-c", build_command(build)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    yield proc, build, None
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def cpp_build_output(cpp_build) -> tuple[Path, str]:
    """Waits for `cpp_build`; the build folder and CMake's output."""
    proc, build, job = cpp_build
    if job is not None:
        _, out, err = job.wait(900)
        output = out + err
    else:
        output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, f"C++ configure/build failed:\n{output[-5000:]}"
    return build, output


def built(cpp_build_output: tuple[Path, str], target: str, *components: str) -> Path:
    """The executable `target`; skips (fails in CI) with CMake's line if a component it needs was skipped."""
    build, output = cpp_build_output
    for line in output.splitlines():
        if "skipped" in line and any(c in line for c in (target, *components)):
            unavailable(line.strip("- "))
    return build / target


@pytest.fixture(scope="session")
def cpp_example(cpp_build_output) -> Path:
    """The hida_sketch example, linked with hida::aoti."""
    return built(cpp_build_output, "hida_sketch", "hida::aoti")


@pytest.fixture(scope="session")
def trt_host_checks(cpp_build_output) -> Path:
    """The driver of tests/cpp/trt_host_checks.cpp (hida::tensorrt's host-side code, no TensorRT needed)."""
    return built(cpp_build_output, "hida_trt_host_checks")
