"""benchmarks/gpu_session.sh on a machine without a CUDA GPU, a current pip and no package index.

As on a GPU machine with no network: a copy of the checkout without .git (the
commit in benchmarks/COMMIT, as tools/record-commit.sh leaves it), a Python
whose pip is >= 25.3 (no legacy editable installs, isolated builds that need
an index) and no index (PIP_NO_INDEX, no find-links, no pip config). The venv
sees this machine's site-packages (torch, onnx, setuptools). The script must
install and import the project, then stop with exit code 3 and one line,
leaving each step's status in DIR/session.json (`--out DIR`).

The pip wheel comes from tools/install-test-deps.sh (cached once per machine).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from testutils.checkout_copy import REPO, copy_checkout, recorded_commit
from testutils.tritons import TRITON36_VENV, prepared_envs_required

CACHE = TRITON36_VENV.parent
MIN_PIP = (25, 3)
GPU_STEPS = ["self-check", "parity", "kernels", "l4", "sass", "bench-model", "compile", "bench-kernels"]
MAX_OUT_FILES, MAX_OUT_BYTES = 8, 16 << 20


def _version(wheel: Path) -> tuple[int, ...]:
    m = re.match(r"pip-(\d+(?:\.\d+)*)-", wheel.name)
    return tuple(int(x) for x in m.group(1).split(".")) if m else ()


def current_pip_wheel() -> Path:
    wheels = sorted((CACHE / "wheels").glob("pip-*.whl"), key=_version)
    if not wheels or _version(wheels[-1]) < MIN_PIP:
        reason = f"no pip >= 25.3 wheel in {CACHE / 'wheels'} (bash tools/install-test-deps.sh downloads one)"
        if prepared_envs_required():
            pytest.fail(reason)
        pytest.skip(reason)
    return wheels[-1]


def offline_env(venv: Path, out: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("TRITON_INTERPRET", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull,
               CUDA_VISIBLE_DEVICES="", **extra)
    return env


@pytest.fixture
def offline_checkout(tmp_path):
    """(checkout copy without .git, venv with a current pip, its environment, the --out folder)."""
    wheel = current_pip_wheel()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    # pip runs from its own wheel to install itself (no ensurepip, no index).
    subprocess.run([str(venv / "bin" / "python"), str(wheel / "pip"), "install", "-q", "--no-index", str(wheel)],
                   check=True, env=offline_env(venv, tmp_path))
    root = copy_checkout(tmp_path / "checkout")
    commit = recorded_commit() or "0" * 40
    (root / "benchmarks" / "COMMIT").write_text(commit + "\n")
    out = tmp_path / "out"
    out.mkdir()
    return root, venv, out, commit


def run_session(root: Path, venv: Path, out: Path, **env) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(["bash", str(root / "benchmarks" / "gpu_session.sh"), "--out", str(out)], cwd=root,
                          capture_output=True, text=True, timeout=300, env=offline_env(venv, out, **env))
    return proc, json.loads((out / "session.json").read_text())


def check_no_gpu_session(proc, session, root: Path, out: Path, commit: str, install_mode: str) -> None:
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert len(lines) == 1 and "no CUDA GPU" in lines[0], lines
    steps = {s["name"]: s for s in session["steps"]}
    assert list(steps) == ["commit", "install", "import"] + GPU_STEPS
    assert steps["commit"]["status"] == "ok" and session["commit"] == {"value": commit, "source": "benchmarks/COMMIT"}
    assert steps["install"]["status"] == "ok" and steps["install"]["mode"] == install_mode, steps["install"]
    assert steps["import"]["status"] == "ok", steps["import"]
    assert all(steps[n]["status"] == "skipped" and steps[n]["reason"] == "no CUDA GPU" for n in GPU_STEPS), steps
    assert all(isinstance(s["seconds"], float | int) for s in steps.values())
    machine = session["machine"]
    assert machine["hida_rt"] == str(root) and machine["gpu"] is None
    assert session["finished"] and session["exit_code"] == 3
    files = list(out.iterdir())
    assert len(files) <= MAX_OUT_FILES and all(f.is_file() and f.stat().st_size < MAX_OUT_BYTES for f in files)
    assert {f.name for f in files} <= {"session.json", "session.log", "self_check.json", "bench.json", "bench.md",
                                       "nvidia-smi.txt"}


@pytest.mark.slow
def test_offline_install_with_current_pip_then_exit_3_without_gpu(offline_checkout):
    root, venv, out, commit = offline_checkout
    python = str(venv / "bin" / "python")
    pip = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True, check=True).stdout
    assert tuple(int(x) for x in pip.split()[1].split(".")[:2]) >= MIN_PIP, pip
    # The premise: with no index a current pip cannot build the project in an isolated environment.
    isolated = subprocess.run([python, "-m", "pip", "install", "--no-deps", "-e", str(root)], cwd=root,
                              capture_output=True, text=True, timeout=120, env=offline_env(venv, out))
    assert isolated.returncode != 0, isolated.stdout
    proc, session = run_session(root, venv, out)
    check_no_gpu_session(proc, session, root, out, commit, "pip editable")
    assert session["machine"]["packages"]["pip"] == pip.split()[1]


@pytest.mark.slow
def test_link_tree_fallback_when_pip_cannot_install(offline_checkout):
    """HIDA_SESSION_INSTALL=links takes the path the script falls back to when pip fails."""
    root, venv, out, commit = offline_checkout
    proc, session = run_session(root, venv, out, HIDA_SESSION_INSTALL="links")
    check_no_gpu_session(proc, session, root, out, commit, "link tree on PYTHONPATH")


def test_gpu_session_modules_import_without_onnx_graphsurgeon():
    """The GPU image has no onnx-graphsurgeon: every test and benchmark module the session runs, and their
    conftest files, must collect without it."""
    code = ("import sys; sys.modules['onnx_graphsurgeon'] = None; import pytest; "
            "sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', "
            "'tests/backends/test_triton_backend.py', 'tests/kernels', 'tests/tensorrt/test_l4_ptx_launch.py', "
            "'benchmarks/bench_model.py', 'benchmarks/bench_kernels.py']))")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "error" not in proc.stdout.lower().split("\n")[-2], proc.stdout[-2000:]


def test_a_step_cut_by_its_limit_still_reports(tmp_path, monkeypatch):
    """A pytest step over its limit gets SIGTERM, which its runner turns into KeyboardInterrupt: pytest still
    writes its report (the passed test is counted), the step is 'timed out' in session.json, and the
    session goes on."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import gpu_session

    tests = tmp_path / "t"
    tests.mkdir()
    (tests / "test_slow.py").write_text("import time\n\ndef test_quick():\n    assert True\n\n"
                                        "def test_slow():\n    time.sleep(120)\n")
    out = tmp_path / "out"
    out.mkdir()
    session = gpu_session.Session(out, budget_s=120, gpu_steps=["parity"])
    step = session.pytest("parity", [str(tests / "test_slow.py")], limit=8)
    saved = {s["name"]: s for s in json.loads((out / "session.json").read_text())["steps"]}["parity"]
    assert step["status"] == saved["status"] == "timed out", step
    assert 8 <= step["seconds"] < 8 + gpu_session.GRACE_S
    assert step["tests"] and step["tests"]["passed"] == 1, step
    assert "KeyboardInterrupt" in (out / "session.log").read_text()


def test_out_is_where_the_results_go(tmp_path, monkeypatch):
    """--out DIR, relative to where the script runs; without it a dated folder under benchmarks/results/."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import gpu_session

    seen = []
    monkeypatch.setattr(gpu_session, "run_session", lambda session, steps: seen.append((session.out, steps)) or 0)
    monkeypatch.chdir(tmp_path)
    assert gpu_session.main(["--out", "mine", "parity"]) == 0
    assert seen[-1] == ((tmp_path / "mine").resolve(), ["parity"]) and (tmp_path / "mine" / "session.json").is_file()
    monkeypatch.setattr(gpu_session, "ROOT", tmp_path / "checkout")
    assert gpu_session.main([]) == 0
    default = seen[-1][0]
    assert default.parent == tmp_path / "checkout" / "benchmarks" / "results"
    assert re.fullmatch(r"gpu-session-\d{8}-\d{6}", default.name) and seen[-1][1][0] == "self-check"
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit) as e:
        gpu_session.main(["--out", str(tmp_path / "a_file")])
    assert e.value.code == 2


@pytest.mark.parametrize("passed, status", [(True, "ok"), (False, "failed")])
def test_the_self_check_step_records_the_verdict(tmp_path, monkeypatch, passed, status):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import gpu_session

    out = tmp_path / "out"
    out.mkdir()
    session = gpu_session.Session(out, budget_s=120, gpu_steps=["self-check"])
    checks = [{"name": "ida (1, 128, 64, 64) float16", "passed": passed, "figures": {"max_abs": 0.004}}]
    report = {"auto": {"backend": "triton" if passed else "eager", "why": "w"},
              "self_checks": [{"backend": "triton", "passed": passed, "checks": checks}]}

    def child(name, cmd, limit, env=None):
        assert cmd[-2:] == ["--self-check", str(out / "self_check.json")]
        (out / "self_check.json").write_text(json.dumps(report))
        return "ok", 3.0, None
    monkeypatch.setattr(session, "run", child)
    session.gpu_step("self-check")
    step = {s["name"]: s for s in json.loads((out / "session.json").read_text())["steps"]}["self-check"]
    assert step["status"] == status and step["verdict"] == {"passed": passed, "checks": checks}
    assert step["detail"].startswith(f"auto picks {report['auto']['backend']}")
