"""Benchmarks (pytest-benchmark), run apart from the tests:

    python -m pytest benchmarks --benchmark-only [--bench-results PATH]

Files named bench_*.py are collected here. Every case times through the
`bench` fixture (benchmarks/harness.py); at the end of the session the
results go to benchmarks/results/<device>-<date>.json (merged with an
earlier run of the same device, day and commit) and a markdown table
beside it. Without a CUDA GPU only the CPU cases run; GPU cases skip and
say so.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # harness.py and report.py, whatever pytest's import mode

ON_GPU = torch.cuda.is_available()

import harness  # noqa: E402
import report  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--bench-results", default=None,
                     help="results JSON to write (default benchmarks/results/<device>-<date>.json)")


def pytest_collect_file(file_path: Path, parent):
    # bench_*.py are benchmark modules; one named on the command line is collected by pytest itself.
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


_HARNESS: harness.Harness | None = None


@pytest.fixture(scope="session")
def bench_device() -> torch.device:
    return torch.device("cuda" if ON_GPU else "cpu")


@pytest.fixture(scope="session")
def bench_harness(bench_device) -> harness.Harness:
    global _HARNESS
    _HARNESS = harness.Harness(bench_device)
    return _HARNESS


@pytest.fixture
def bench(benchmark, bench_harness, pytestconfig):
    """bench(fn, group=..., peer=..., items=, calls=, bytes_moved=, flops=, graph=, **info) -> Result.

    With --bench-results, the file is rewritten after every case: a session cut short by a time-out
    keeps every figure measured before it.
    """
    path = pytestconfig.getoption("--bench-results")

    def run(fn, **kwargs):
        result = bench_harness.run(benchmark, fn, **kwargs)
        if path and result is not None:
            bench_harness.write(path)
        return result
    return run


@pytest.fixture(scope="session")
def bench_weights(tmp_path_factory) -> Path:
    """A random checkpoint with the spread gain (sketches span [-1, 1]), as in the tests."""
    from hida_rt.random_weights import random_generator_state
    path = tmp_path_factory.mktemp("bench_weights") / "hida_spread.pth"
    torch.save(random_generator_state(seed=1, gain=1.0), path)
    return path


@pytest.fixture
def bench_inputs(bench_device):
    """bench_inputs(n, size): fresh random photo, depth, style on the benchmark device (never zeros)."""
    def make(n: int, size: int):
        from hida_rt.export.trt_parity import random_inputs  # the one maker (tests use it too)
        _, photo, depth, style = random_inputs(n, size, size, seed=n * 1000 + size)
        return tuple(t.to(bench_device) for t in (photo, depth, style))
    return make


def pytest_sessionfinish(session, exitstatus):
    if _HARNESS is None or not _HARNESS.results:
        return
    path = _HARNESS.write(session.config.getoption("--bench-results"))
    md = path.with_suffix(".md")
    md.write_text(report.render(path))
    session.config.pluginmanager.get_plugin("terminalreporter").write_line(
        f"benchmark results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path} (+ {md.name})")
