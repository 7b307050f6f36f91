"""Slow, self-contained preparations started with the session, at low CPU priority, for tests that come late.

Most of the suite keeps one core busy; these jobs (each a child process that
needs nothing the session makes later) run, at idle priority, on the core
the tests leave free, and the fixtures that need their results wait for
them. A job starts only when a test that needs it was collected (`NEEDS`);
run alone (or with HIDA_TEST_EARLY_JOBS=0), those fixtures do the work
themselves. Nothing is
shared but files in a temporary folder of the session's own, removed at the
end with any job still running.

- "cpp_build": the CMake build of engines/cpp (tests/cpp/conftest.py);
- "aoti": `python -m hida_rt.export --format pt2` of the spread checkpoint (tests/cpp/test_aoti_cpp.py);
  the checkpoint is written here, before the job starts, and the `spread_ckpt` fixture returns that file;
- "sass": every kernel configuration assembled for every CI architecture (tests/tensorrt/test_sass.py,
  through testutils/sass_job.py).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
def _idle_priority() -> None:
    """In the job's process: run only on a core the tests leave idle (SCHED_IDLE, else the lowest nice).
    The job stays in the session (no setsid): the kernel's autogroups would otherwise share the CPU
    between the two sessions whatever their priorities."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)
NEEDS = {
    "cpp_build": ("tests/cpp/",),
    "aoti": ("tests/cpp/test_aoti_cpp.py",),
    "sass": ("tests/tensorrt/test_sass.py::test_every_configuration_assembles_without_spills",),
}


@dataclass
class Job:
    name: str
    proc: subprocess.Popen
    stdout: Path
    stderr: Path
    outputs: dict

    def wait(self, timeout: float) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) once the job has ended (raises on timeout)."""
        self.proc.wait(timeout)
        return self.proc.returncode, self.stdout.read_text(), self.stderr.read_text()


_state: dict = {"folder": None, "jobs": {}, "spread": None}


def folder() -> Path | None:
    return _state["folder"]


def get(name: str) -> Job | None:
    """The job `name` if this session started it."""
    return _state["jobs"].get(name)


def needed(items) -> set[str]:
    ids = [item.nodeid for item in items]
    return {name for name, prefixes in NEEDS.items() if any(i.startswith(p) for i in ids for p in prefixes)}


def _start(name: str, argv: list[str], outputs: dict | None = None, env: dict | None = None) -> Job:
    base = _state["folder"]
    out, err = base / f"{name}.out", base / f"{name}.err"
    # Without TRITON_INTERPRET (tests/conftest.py sets it for this process): the jobs run as a user would.
    env = {**{k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}, **(env or {})}
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen(argv, stdout=o, stderr=e, text=True, cwd=REPO, process_group=0, env=env,
                                preexec_fn=_idle_priority)
    job = Job(name, proc, out, err, outputs or {})
    _state["jobs"][name] = job
    return job


def start(items, spread_name: str, write_spread) -> None:
    """Start the jobs the collected `items` need. `write_spread(path)` writes the spread checkpoint."""
    names = needed(items) if os.environ.get("HIDA_TEST_EARLY_JOBS", "1") != "0" else set()
    if not names:
        return
    base = Path(tempfile.mkdtemp(prefix="hida_early_jobs_"))
    _state["folder"] = base
    # The jobs' own user cache: the session's (tests/conftest.py: user_cache) does not exist yet.
    env = {"HIDA_RT_CACHE": str(base / "user_cache"), "PYTHONUNBUFFERED": "1"}
    # HIDA_CPP_BUILD_DIR: the fixture rebuilds that folder itself (incrementally); no second build here.
    if "cpp_build" in names and shutil.which("cmake") and not os.environ.get("HIDA_CPP_BUILD_DIR"):
        from testutils.cpp_build import build_command
        build = base / "cpp_build"
        _start("cpp_build", ["bash", "-c", build_command(build)], {"build": build})
    if "aoti" in names:
        spread = base / "weights" / spread_name
        spread.parent.mkdir()
        write_spread(spread)
        _state["spread"] = spread
        package = base / "aoti" / "hida_spread_b1.pt2"
        package.parent.mkdir()
        _start("aoti", [sys.executable, "-m", "hida_rt.export", "--format", "pt2", "--weights", str(spread),
                        "-o", str(package), "--quiet"], {"package": package, "weights": spread}, env)
    if "sass" in names:
        from testutils.tritons import triton36_python
        result = base / "sass.json"
        env = {**env, "HIDA_TRITON36_PYTHON": triton36_python() or ""}  # found under the real user cache
        _start("sass", [sys.executable, str(REPO / "tests" / "testutils" / "sass_job.py"), str(result)],
               {"result": result}, env)


def spread_checkpoint() -> Path | None:
    """The spread checkpoint written before the jobs started, if they needed one."""
    return _state.get("spread")


def sass_result(timeout: float) -> dict | None:
    """The SASS job's rows and kernel keys (testutils/sass_job.py), or None if it was not started."""
    job = get("sass")
    if job is None:
        return None
    code, out, err = job.wait(timeout)
    if code != 0:
        raise AssertionError(f"the SASS job failed (exit {code}):\n{out[-2000:]}\n{err[-4000:]}")
    return json.loads(job.outputs["result"].read_text())


def stop() -> None:
    """End every job still running (its whole process group) and remove the folder."""
    for job in _state["jobs"].values():
        if job.proc.poll() is None:
            try:
                os.killpg(job.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while job.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
    if _state["folder"] is not None:
        shutil.rmtree(_state["folder"], ignore_errors=True)
    _state.update(folder=None, jobs={}, spread=None)
