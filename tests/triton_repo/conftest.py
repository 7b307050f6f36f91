"""One ONNX export with --triton-repo per session (~1 min here): the CLI under test, and the model the
repository checks read back. Nothing here needs TensorRT, a GPU or a Triton server."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from testutils.cli import run_in_process


def run_captured(main, argv: list[str], prog: str = "test") -> tuple[int, str, str]:
    return run_in_process(main, argv, prog=prog)


@dataclass(frozen=True)
class TritonExport:
    onnx: Path
    repo: Path
    stdout: str


@pytest.fixture(scope="session")
def triton_export(tmp_path_factory, spread_ckpt) -> TritonExport:
    from hida_rt.export.__main__ import main as export_main
    root = tmp_path_factory.mktemp("triton_export")
    onnx_path, repo = root / "hida_256.onnx", root / "models"
    code, out, err = run_captured(export_main, ["--weights", str(spread_ckpt), "-o", str(onnx_path),
                                                "--triton-repo", str(repo), "-q"])
    assert code == 0, err
    return TritonExport(onnx_path, repo, out)


@pytest.fixture
def captured():
    """run_captured, for test modules (a conftest is not importable under importlib mode)."""
    return run_captured
