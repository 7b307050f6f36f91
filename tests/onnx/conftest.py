"""Fixtures of the L1 (ONNX) tests. The session's one export (`sketch_runs`, `exported_onnx`,
`exported_model`) lives in tests/conftest.py, shared with tests/tensorrt."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ort_backend(spread_ckpt, exported_onnx):
    from hida_rt.backends import create_backend
    return create_backend("onnxruntime", spread_ckpt, device="cpu", onnx=str(exported_onnx))
