"""The GPU checks and benchmarks of hida_rt on this machine's GPU, in one command; results go to one folder.

    bash benchmarks/gpu_session.sh --out results/my-gpu      # every step below, in order of value
    bash benchmarks/gpu_session.sh --out DIR compile bench-kernels   # only these GPU steps

Steps, each with its own time limit inside one budget (HIDA_SESSION_BUDGET_S,
default 570 s), each recorded in DIR/session.json (rewritten after every
step) as ok / failed / timed out / skipped, with the reason and seconds:

  commit         the commit under test: `git rev-parse` if .git is here, else benchmarks/COMMIT
                 (tools/record-commit.sh writes it, for a copy of the checkout without .git)
  install        pip install --no-index --no-build-isolation --no-deps -e . (works with no package
                 index and any pip >= 21.3); if that fails, a temporary tree of links with the
                 package mapping (kernels/ -> hida_rt.kernels, export/ -> hida_rt.export) on PYTHONPATH
  import         hida_rt (from this checkout), its kernels and plugins, torch, triton; versions; the GPU
  self-check     the triton backend's self-check run now (python -m hida_rt.doctor --probe): each kernel
                 at a real layer shape and the fused network against eager FP32; verdict and figures
                 in DIR/self_check.json
  parity         triton backend FP16 vs eager FP32 (sample faces, two random checkpoints), CUDA graphs
  kernels        the Triton kernels against their references at full layer shapes
  l4             each AOT plugin's PTX launched with the CUDA driver API (no onnx-graphsurgeon needed)
  sass           each triton-backend kernel configuration compiled for this GPU and loaded: the
                 registers and local memory the driver reports for the loaded cubin (Triton's n_regs,
                 n_spills), beside ptxas -v of the same PTX (the static table of
                 python -m hida_rt.kernels.sass); rows in session.json
  bench-model    eager FP32, eager FP16, triton FP16 at batch 1/8/32, 256x256 (+ device copy bandwidth)
  compile        one torch.compile FP16 figure (batch 1): max-autotune if >= 420 s are left, else
                 reduce-overhead (HIDA_BENCH_COMPILE_MODE overrides); the step's seconds include compiling
  bench-kernels  each kernel against eager at its layer shapes, batch 1/8/32, while time is left

Without a CUDA GPU it stops after `import` with exit code 3 and one line. Files in DIR (at most 6):
session.json, session.log (every step's output, as it comes), self_check.json, bench.json (rewritten
after every benchmark case) and bench.md, nvidia-smi.txt. A pytest step cut by its limit gets SIGTERM,
which its runner turns into KeyboardInterrupt so pytest still reports (and the benchmark file is
already written); SIGKILL follows after a grace period.
"""
from __future__ import annotations

import argparse
import ast
import datetime as _dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMIT_FILE = ROOT / "benchmarks" / "COMMIT"
DEFAULT_BUDGET_S = 570
RESERVE_S = 15          # kept back for the final writes
GRACE_S = 20            # SIGTERM -> SIGKILL
MAX_LOG_BYTES = 12 << 20
NO_GPU_EXIT = 3
# (name, time limit s, least time worth starting with s)
# The self-check is first: it says in seconds whether the triton backend is right on this GPU at all.
GPU_STEPS = [("self-check", 120, 30), ("parity", 150, 60), ("kernels", 120, 45), ("l4", 90, 30),
             ("sass", 120, 45), ("bench-model", 180, 60), ("compile", 600, 120), ("bench-kernels", 600, 60)]
SETUP_STEPS = ["commit", "install", "import"]
PROBE_MODULES = ("hida_rt", "hida_rt.kernels", "hida_rt.kernels._library", "hida_rt.export",
                 "hida_rt.export.plugins.compile", "hida_rt.backends", "hida_rt.kernels.fused_model")
DISTRIBUTIONS = ("numpy", "onnx", "onnxruntime", "pytest", "pytest-benchmark", "cuda-python", "cuda-bindings",
                 "cupy-cuda13x", "cupy-cuda12x", "pip", "setuptools")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Session:
    def __init__(self, out: Path, budget_s: float, gpu_steps: list[str]):
        self.out, self.budget_s, self.t0 = out, budget_s, time.monotonic()
        self.log_path = out / "session.log"
        self.tmp = Path(tempfile.mkdtemp(prefix="hida_gpu_session_"))
        self.env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        self.env.update(PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        self.data = dict(schema=1, started=now(), updated=None, finished=False, budget_s=budget_s, elapsed_s=0,
                         root=str(ROOT), out=str(out), commit=None, machine=None, exit_code=None,
                         steps=[dict(name=n, status="pending") for n in SETUP_STEPS + gpu_steps])
        self.child: subprocess.Popen | None = None
        self.write()

    # ------------------------------------------------------------ bookkeeping

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.t0)

    def step(self, name: str) -> dict:
        return next(s for s in self.data["steps"] if s["name"] == name)

    def finish_step(self, name: str, status: str, seconds: float, **info) -> dict:
        s = self.step(name)
        s.update(status=status, seconds=round(seconds, 1), **{k: v for k, v in info.items() if v is not None})
        self.write()
        return s

    def write(self) -> None:
        self.data["updated"] = now()
        self.data["elapsed_s"] = round(time.monotonic() - self.t0, 1)
        tmp = self.out / ".session.json.tmp"
        tmp.write_text(json.dumps(self.data, indent=1) + "\n")
        os.replace(tmp, self.out / "session.json")

    def log(self, text: str) -> None:
        with open(self.log_path, "a") as f:
            f.write(text)

    def say(self, line: str) -> None:
        print(f"gpu_session: {line}", flush=True)

    # ------------------------------------------------------------ running one command

    def run(self, name: str, cmd: list[str], limit: float, env: dict | None = None) -> tuple[str, float, str]:
        """Run cmd (its output appended to session.log as it comes) under `limit` seconds.

        Returns (status, seconds, reason): "ok", "failed" (with the exit code) or "timed out".
        """
        self.log(f"\n===== {name}: {' '.join(cmd)}  (limit {limit:.0f} s, {now()})\n")
        t = time.monotonic()
        with open(self.log_path, "ab") as logf:
            self.child = subprocess.Popen(cmd, cwd=ROOT, env=env or self.env, stdout=logf, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                rc = self.child.wait(timeout=limit)
                status, reason = ("ok", None) if rc == 0 else ("failed", f"exit code {rc}")
            except subprocess.TimeoutExpired:
                self.stop_child()
                status, reason = "timed out", f"stopped after its {limit:.0f} s limit"
            finally:
                self.child = None
        secs = time.monotonic() - t
        self.log(f"===== {name}: {status} in {secs:.1f} s{'' if not reason else ' (' + reason + ')'}\n")
        self.trim_log()
        return status, secs, reason

    def stop_child(self) -> None:
        """SIGTERM the child's process group, SIGKILL it after GRACE_S."""
        child = self.child
        if child is None or child.poll() is not None:
            return
        try:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        except ProcessLookupError:
            pass

    def trim_log(self) -> None:
        size = self.log_path.stat().st_size
        if size > MAX_LOG_BYTES:
            data = self.log_path.read_bytes()
            keep = MAX_LOG_BYTES // 2
            self.log_path.write_bytes(data[:keep // 4] + b"\n[... session.log trimmed ...]\n" + data[-keep:])

    # ------------------------------------------------------------ setup steps

    def commit(self) -> None:
        t = time.monotonic()
        value, source = None, None
        if (ROOT / ".git").exists() and shutil.which("git"):
            proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                   capture_output=True, text=True).stdout.strip()
            if proc.returncode == 0:
                value, source = proc.stdout.strip() + ("-dirty" if dirty else ""), "git"
        if value is None and COMMIT_FILE.is_file():
            value, source = COMMIT_FILE.read_text().split()[0], "benchmarks/COMMIT"
        self.data["commit"] = dict(value=value, source=source)
        if value:
            self.env["HIDA_RT_COMMIT"] = value
            self.finish_step("commit", "ok", time.monotonic() - t, detail=f"{value} (from {source})")
        else:
            self.finish_step("commit", "failed", time.monotonic() - t,
                             reason="no .git and no benchmarks/COMMIT: run tools/record-commit.sh in the "
                                    "git checkout first and copy benchmarks/COMMIT along")

    def install(self) -> bool:
        t = time.monotonic()
        pip_reason = "HIDA_SESSION_INSTALL=links"
        if os.environ.get("HIDA_SESSION_INSTALL") != "links":
            cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps",
                   "-e", str(ROOT)]
            status, _, pip_reason = self.run("install", cmd, limit=min(150, max(10, self.left() - RESERVE_S)))
            if status == "ok":
                self.finish_step("install", "ok", time.monotonic() - t, mode="pip editable",
                                 detail=" ".join(cmd[1:]))
                return True
            pip_reason = f"pip {status}: {pip_reason} (see session.log)"
        try:
            tree = self.link_tree()
        except OSError as e:
            self.finish_step("install", "failed", time.monotonic() - t, reason=f"{pip_reason}; link tree: {e}")
            return False
        self.env["PYTHONPATH"] = os.pathsep.join([str(tree)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
        self.finish_step("install", "ok", time.monotonic() - t, mode="link tree on PYTHONPATH",
                         detail=f"{tree} (hida_rt, kernels -> hida_rt.kernels, export -> hida_rt.export)",
                         reason=pip_reason)
        return True

    def link_tree(self) -> Path:
        """TMP/hida_rt/: links to every entry of hida_rt/, plus kernels/ and export/ under their package names."""
        tree = self.tmp / "path"
        pkg = tree / "hida_rt"
        pkg.mkdir(parents=True)
        for entry in (ROOT / "hida_rt").iterdir():
            if entry.name != "__pycache__":
                (pkg / entry.name).symlink_to(entry)
        (pkg / "kernels").symlink_to(ROOT / "kernels")
        (pkg / "export").symlink_to(ROOT / "export")
        return tree

    def probe(self) -> dict | None:
        t = time.monotonic()
        out = self.tmp / "probe.json"
        status, _, reason = self.run("import", [sys.executable, str(Path(__file__)), "--probe", str(out)],
                                     limit=min(120, max(10, self.left() - RESERVE_S)))
        info = json.loads(out.read_text()) if out.is_file() else None
        if status == "ok" and info:
            self.data["machine"] = info
            gpu = info.get("gpu") or {}
            detail = (f"torch {info['torch']} (CUDA {info['torch_cuda']}), triton {info['triton']}, "
                      f"{gpu.get('name', 'no CUDA GPU')}")
            self.finish_step("import", "ok", time.monotonic() - t, detail=detail)
            return info
        self.finish_step("import", status if status != "ok" else "failed", time.monotonic() - t,
                         reason=(info or {}).get("error") or reason or "no probe output")
        return None

    # ------------------------------------------------------------ GPU steps

    def pytest(self, name: str, args: list[str], limit: float, env: dict | None = None) -> dict:
        junit = self.tmp / f"{name}.xml"
        cmd = [sys.executable, str(Path(__file__)), "--pytest", "--", *args, "-p", "no:cacheprovider",
               f"--junitxml={junit}", "-q", "-rfEs"]
        status, secs, reason = self.run(name, cmd, limit, env)
        tests = junit_summary(junit)
        if status == "failed" and tests and tests.get("tests") == 0:
            reason = "no tests ran"
        elif status != "timed out" and tests and tests["skipped"] and not (tests["passed"] or tests["failures"]
                                                                           or tests["errors"]):
            # pytest exits 5 when a module skips itself: every test skipping is a skip, with its reason.
            status, reason = "skipped", f"all {tests['skipped']} skipped: {next(iter(tests['skip_reasons']))}"
        return self.finish_step(name, status, secs, reason=reason, tests=tests)

    def bench_env(self, **extra) -> dict:
        return {**self.env, **extra}

    def gpu_step(self, name: str) -> None:
        limit, least = next((lim, least) for n, lim, least in GPU_STEPS if n == name)
        left = self.left() - RESERVE_S
        if left < least:
            self.finish_step(name, "skipped", 0, reason=f"{left:.0f} s left in the budget; it needs at least {least} s")
            return
        limit = min(limit, left)
        bench = ["--benchmark-only", f"--bench-results={self.out / 'bench.json'}",
                 "--benchmark-columns=median,min,rounds"]
        if name == "self-check":
            self.self_check(limit)
        elif name == "parity":
            self.pytest(name, ["tests/backends/test_triton_backend.py"], limit)
        elif name == "kernels":
            # The AOT PTX builds are proven on the CPU machines (both Tritons); here the kernels run.
            self.pytest(name, ["tests/kernels", "--ignore=tests/kernels/test_aot_ptx.py"], limit)
        elif name == "l4":
            self.pytest(name, ["tests/tensorrt/test_l4_ptx_launch.py"], limit)
        elif name == "sass":
            self.sass(limit)
        elif name == "bench-model":
            env = self.bench_env(HIDA_BENCH_SIZES="1x256,8x256,32x256", HIDA_BENCH_PEERS="eager-fp32,eager-fp16,"
                                 "triton-fp16")
            self.pytest(name, ["benchmarks/bench_kernels.py::test_copy_bandwidth", "benchmarks/bench_model.py",
                               *bench], limit, env)
            self.render_bench()
        elif name == "compile":
            mode = os.environ.get("HIDA_BENCH_COMPILE_MODE") or ("max-autotune" if left >= 420 else "reduce-overhead")
            env = self.bench_env(HIDA_BENCH_SIZES="1x256", HIDA_BENCH_COMPILE_SIZES="1x256",
                                 HIDA_BENCH_PEERS="compile-fp16", HIDA_BENCH_COMPILE_MODE=mode)
            s = self.pytest(name, ["benchmarks/bench_model.py", *bench], limit, env)
            s["detail"] = f"torch.compile mode {mode} at batch 1, 256x256 ({left:.0f} s were left)"
            self.write()
            self.render_bench()
        elif name == "bench-kernels":
            self.pytest(name, ["benchmarks/bench_kernels.py", *bench], limit)
            self.render_bench()

    def self_check(self, limit: float) -> None:
        """python -m hida_rt.doctor --probe --json: the triton backend's verdict on this GPU, kept as self_check.json."""
        report_path = self.out / "self_check.json"
        cmd = [sys.executable, str(Path(__file__)), "--self-check", str(report_path)]
        status, secs, reason = self.run("self-check", cmd, limit)
        try:
            report = json.loads(report_path.read_text())
        except (OSError, ValueError):
            self.finish_step("self-check", status if status != "ok" else "failed", secs,
                             reason=reason or "the doctor wrote no report")
            return
        verdict = next((v for v in report.get("self_checks", []) if v["backend"] == "triton"), None)
        auto = report.get("auto", {})
        if verdict is None:
            status, reason = "failed", f"no verdict: {report.get('probe') or auto.get('why')}"
        elif not verdict["passed"]:
            status, reason = "failed", "the triton backend did not pass its self-check (figures in self_check.json)"
        self.finish_step("self-check", status, secs, reason=reason,
                         detail=f"auto picks {auto.get('backend')}: {auto.get('why')}",
                         verdict=None if verdict is None else dict(passed=verdict["passed"], checks=verdict["checks"]))

    def sass(self, limit: float) -> None:
        """Registers and spills of the loaded cubins beside the static ptxas table (sass_report), into session.json."""
        path = self.tmp / "sass.json"
        status, secs, reason = self.run("sass", [sys.executable, str(Path(__file__)), "--sass", str(path)], limit)
        try:
            rows = json.loads(path.read_text())
        except (OSError, ValueError):
            self.finish_step("sass", status if status != "ok" else "failed", secs,
                             reason=reason or "no kernel was loaded")
            return
        differ = [r for r in rows if r["loaded"]["registers"] != r["static"]["registers"]]
        local = [r for r in rows if r["loaded"]["local_words"]]
        spill = [r for r in rows if r["static"]["spills"] or r["static"]["error"]]
        if spill and status == "ok":
            status, reason = "failed", f"{len(spill)} configurations spill or fail to assemble: see the rows"
        self.finish_step("sass", status, secs, reason=reason, rows=rows,
                         detail=f"{len(rows)} configurations; loaded registers differ from ptxas -v in "
                                f"{len(differ)}; {len(local)} use local memory once loaded")

    def render_bench(self) -> None:
        if (self.out / "bench.json").is_file():
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py"), str(self.out / "bench.json"),
                            "-o", str(self.out / "bench.md")], cwd=ROOT, env=self.env, capture_output=True,
                           timeout=60)

    def nvidia_smi(self) -> None:
        if shutil.which("nvidia-smi"):
            proc = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
            (self.out / "nvidia-smi.txt").write_text(proc.stdout + proc.stderr)


def junit_summary(path: Path) -> dict | None:
    """Counts, failures (first line of each message) and skip reasons from a pytest JUnit XML file."""
    if not path.is_file():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed, skips = [], {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        for kind in ("failure", "error"):
            for el in case.findall(kind):
                msg = (el.get("message") or el.text or "").strip().splitlines()
                failed.append(f"{name}: {msg[0][:300] if msg else kind}")
        for el in case.findall("skipped"):
            reason = (el.get("message") or "").strip()
            if reason == "collection skipped" and el.text:  # a module that skips itself: (path, line, reason)
                try:
                    reason = str(ast.literal_eval(el.text.strip())[2]).removeprefix("Skipped: ")
                except (ValueError, SyntaxError, IndexError, TypeError):
                    reason = el.text.strip()
            reason = reason[:200]
            skips[reason] = skips.get(reason, 0) + 1
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return dict(counts, failed=failed[:30], skip_reasons=dict(list(skips.items())[:10]))


# ---------------------------------------------------------------- child modes

def probe(out: str) -> int:
    """Import what the GPU steps need, check it is this checkout, record versions and the GPU."""
    import importlib
    import platform
    from importlib import metadata

    info: dict = dict(python=platform.python_version(), platform=platform.platform())
    try:
        for module in PROBE_MODULES:
            importlib.import_module(module)
        import hida_rt.export
        import hida_rt.kernels
        for pkg in (hida_rt.kernels, hida_rt.export):
            where = Path(os.path.realpath(pkg.__file__)).parents[1]
            if where != ROOT:
                raise ImportError(f"{pkg.__name__} is imported from {where}, not this checkout {ROOT}")
        if "onnx_graphsurgeon" in sys.modules:
            raise ImportError("onnx_graphsurgeon was imported: the GPU image has none")
        import torch
        info.update(hida_rt=str(ROOT), torch=torch.__version__, torch_cuda=torch.version.cuda)
        try:
            import triton
            info["triton"] = triton.__version__
        except ImportError:
            info["triton"] = None
        versions = {}
        for dist in DISTRIBUTIONS:
            try:
                versions[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
        info["packages"] = versions
        info["gpu"] = None
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info["gpu"] = dict(name=p.name, compute_capability=f"{p.major}.{p.minor}", sms=p.multi_processor_count,
                               memory_gib=round(p.total_memory / 2**30, 1), count=torch.cuda.device_count())
            if shutil.which("nvidia-smi"):
                q = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                   capture_output=True, text=True, timeout=30)
                info["gpu"]["driver"] = q.stdout.strip().splitlines()[0] if q.stdout.strip() else None
        rc = 0
    except Exception as e:  # the session records the one-line reason; the traceback goes to session.log
        import traceback
        traceback.print_exc()
        info["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
        rc = 1
    Path(out).write_text(json.dumps(info))
    return rc


def self_check_report(out: str) -> int:
    """The doctor's report after running the self-check now (python -m hida_rt.doctor --probe --json), to `out`."""
    from hida_rt.doctor import gather
    report = gather(probe=True)
    Path(out).write_text(json.dumps(report, indent=1) + "\n")
    return 0 if report["auto"]["backend"] else 1


def sass_report(out: str) -> int:
    """Each triton-backend kernel configuration compiled for this GPU by Triton and loaded by the driver: the
    registers and local memory Triton reads back for the loaded cubin, beside ptxas -v of the same PTX."""
    import torch

    from hida_rt.checkpoint import load_generator
    from hida_rt.kernels import _ptxas, _triton_compat, launch_recorder
    from hida_rt.kernels.sass import describe
    from hida_rt.random_weights import random_generator_state

    major, minor = torch.cuda.get_device_capability()
    arch = 10 * major + minor
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "random.pth"
        torch.save(random_generator_state(seed=0), weights)
        generator = load_generator(weights)
    rows = []
    for kernel in launch_recorder.backend_kernels(generator):
        compiled = kernel.compile(arch=arch)
        regs, local_words = _triton_compat.loaded_resources(compiled)
        static = _ptxas.assemble(compiled.asm["ptx"], arch)
        dtype, config = describe(kernel)
        rows.append(dict(kernel=kernel.name, dtype=dtype, config=config, num_warps=kernel.num_warps,
                         loaded=dict(registers=regs, local_words=local_words),
                         static=dict(registers=static.registers, spills=static.spills, stack=static.stack,
                                     ptxas=static.ptxas, error=static.error)))
        Path(out).write_text(json.dumps(rows, indent=1) + "\n")  # rewritten per kernel: a time-out keeps the rest
    return 0


def run_pytest(args: list[str]) -> int:
    """pytest.main with SIGTERM turned into KeyboardInterrupt, so a time-out still ends in a report."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupt)
    import pytest
    return int(pytest.main(args))


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--pytest"]:
        return run_pytest(argv[2:] if argv[1:2] == ["--"] else argv[1:])
    if argv[:1] == ["--probe"]:
        return probe(argv[1])
    if argv[:1] == ["--self-check"]:
        return self_check_report(argv[1])
    if argv[:1] == ["--sass"]:
        return sass_report(argv[1])
    names = [n for n, _, _ in GPU_STEPS]
    limits = ", ".join(f"{n} {lim} s (starts with >= {least} s left)" for n, lim, least in GPU_STEPS)
    p = argparse.ArgumentParser(prog="bash benchmarks/gpu_session.sh", description=__doc__.split("\n\n    bash")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__[__doc__.index("Steps, each"):] + f"\nTime limits: {limits}.\n"
                                       f"Environment: HIDA_SESSION_BUDGET_S (default {DEFAULT_BUDGET_S}), "
                                       "HIDA_BENCH_COMPILE_MODE, HIDA_SESSION_INSTALL=links (skip pip), PYTHON "
                                       "(default python3).")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="folder for the results (default: benchmarks/results/gpu-session-<UTC date and time>)")
    p.add_argument("steps", nargs="*", metavar="STEP", help=f"GPU steps to run (default all: {' '.join(names)})")
    args = p.parse_args(argv)
    unknown = [s for s in args.steps if s not in names]
    if unknown:
        p.error(f"unknown step(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"gpu-session-{stamp}").resolve()
    if out.exists() and not out.is_dir():
        p.error(f"--out {args.out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        p.error(f"--out {args.out}: cannot create it ({e.strerror or e})")
    budget = float(os.environ.get("HIDA_SESSION_BUDGET_S", DEFAULT_BUDGET_S))
    session = Session(out, budget, args.steps or names)

    def terminated(signum, frame):
        session.stop_child()
        running = [s for s in session.data["steps"] if s["status"] == "pending"]
        if running:
            running[0].update(status="timed out", reason=f"the session got signal {signum}")
        session.data.update(exit_code=124, finished=True)
        session.write()
        os._exit(124)
    signal.signal(signal.SIGTERM, terminated)

    try:
        return run_session(session, args.steps or names)
    finally:
        shutil.rmtree(session.tmp, ignore_errors=True)


def run_session(session: Session, steps: list[str]) -> int:
    session.commit()
    installed = session.install()
    info = session.probe()
    gpu = (info or {}).get("gpu")
    if not gpu:
        why = "no CUDA GPU" if info else "hida_rt did not import"
        for name in steps:
            session.finish_step(name, "skipped", 0, reason=why)
        ok = installed and info is not None
        code = NO_GPU_EXIT if ok else 1
        session.data.update(exit_code=code, finished=True)
        session.write()
        if ok:
            mode = session.step("install").get("mode")
            session.say(f"no CUDA GPU (torch {info['torch']} sees none): installed ({mode}) and imported hida_rt, "
                        f"nothing measured; steps in {session.out / 'session.json'}")
        else:
            bad = next(s for s in session.data["steps"] if s["status"] != "ok" and s["name"] != "commit")
            session.say(f"{bad['name']} {bad['status']}: {bad.get('reason')}; steps in {session.out / 'session.json'}")
        return code
    session.nvidia_smi()
    session.say(f"{gpu['name']} (cc {gpu['compute_capability']}), torch {info['torch']}, triton {info['triton']}, "
                f"commit {(session.data['commit'] or {}).get('value')}")
    for name in steps:
        session.gpu_step(name)
        s = session.step(name)
        tests = s.get("tests") or {}
        counts = f", {tests.get('passed', 0)} passed, {tests.get('failures', 0) + tests.get('errors', 0)} failed, " \
                 f"{tests.get('skipped', 0)} skipped" if tests else ""
        session.say(f"{name}: {s['status']} ({s.get('seconds', 0):.0f} s{counts})"
                    + (f" - {s['reason']}" if s.get("reason") and s["status"] != "ok" else ""))
    bad = [s["name"] for s in session.data["steps"] if s["status"] in ("failed", "timed out")]
    code = 1 if bad else 0
    session.data.update(exit_code=code, finished=True)
    session.write()
    session.say(("all steps ok" if not bad else f"not ok: {', '.join(bad)}") + f"; {session.out}/session.json")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
