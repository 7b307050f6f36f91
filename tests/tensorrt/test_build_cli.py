"""python -m hida_rt.build: arguments, and the machine-without-TensorRT path end to end.

On a machine without TensorRT or a GPU (every CI machine of this project) the
command must still write the TensorRT ONNX and an unbuilt manifest, verify
the ONNX in the reference evaluator when asked, and stop with one line that
names what is missing and the command to run elsewhere (exit code 3).
"""
from __future__ import annotations

import json

import onnx
import pytest
from testutils.cli import assert_one_line_error, run_in_process, run_module

from hida_rt.build import EXIT_NOT_BUILT, build_parser, finish_command
from hida_rt.checkpoint import file_sha256
from hida_rt.export import onnx_export
from hida_rt.export.graph_passes import plugin_nodes
from hida_rt.export.manifest import read_manifest
from hida_rt.export.tensorrt_builder import missing_for_build


def run_build(argv: list) -> tuple[int, str, str]:
    return run_in_process("hida_rt.build", argv)


def test_entry_point_as_a_user_runs_it(tmp_path, spread_ckpt):
    """`python -m hida_rt.build` itself: a refused setting, before any work, in one line and exit 2."""
    r = run_module("hida_rt.build", "--weights", spread_ckpt, "-o", tmp_path / "e.plan", "--height", "300",
                   timeout=300)
    assert_one_line_error(r, "multiple of 256", code=2, prog="hida_rt.build")
    assert r.stdout == "" and list(tmp_path.iterdir()) == []


def test_help_names_the_outputs_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for word in ("--weights", "--max-batch", "--verify", "--height", "Exit codes", ".trt.onnx", "manifest"):
        assert word in text


@pytest.mark.parametrize("extra, message", [
    (["--max-batch", "0"], "--max-batch"),
    (["--max-batch", "2", "--opt-batch", "3"], "--opt-batch"),
    (["--height", "300"], "multiple of 256"),
])
def test_bad_arguments_fail_in_one_line_before_any_work(tmp_path, spread_ckpt, extra, message):
    code, _, err = run_build(["--weights", str(spread_ckpt), "-o", str(tmp_path / "e.plan"), "-q", *extra])
    assert code == 2 and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_missing_weights(tmp_path):
    code, _, err = run_build(["--weights", str(tmp_path / "nope.pth"), "-o", str(tmp_path / "e.plan")])
    assert code == 2 and "nope.pth: no such file" in err and "random_weights" in err and err.count("\n") == 1


@pytest.mark.skipif(missing_for_build() is None, reason="this machine can build engines; see test_l5_engine.py")
def test_without_tensorrt_writes_onnx_and_unbuilt_manifest(tmp_path, spread_ckpt, shared_portable_export):
    plan = tmp_path / "engines" / "hida_fp16.plan"
    argv = ["--weights", str(spread_ckpt), "-o", str(plan), "--max-batch", "4", "--verify", "-q"]
    code, out, err = run_build(argv)
    assert code == EXIT_NOT_BUILT, err
    # The build exported exactly these weights at this size (answered from the session's export).
    assert [(w.resolve(), *settings) for w, *settings in shared_portable_export] == [
        (spread_ckpt.resolve(), 256, 256, onnx_export.DEFAULT_OPSET)]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hida_rt.build: error: no engine built: ")
    assert missing_for_build() in lines[0]
    expected = finish_command(build_parser().parse_args(argv))
    assert lines[0].endswith(f"run: {expected}") and "--max-batch 4" in expected and "--verify" in expected
    assert not plan.exists()
    onnx_file, manifest_file = plan.with_name("hida_fp16.trt.onnx"), plan.with_name("hida_fp16.plan.json")
    m = read_manifest(manifest_file)
    assert (m.status, m.engine, m.trt_onnx, m.precision) == ("unbuilt", "hida_fp16.plan", onnx_file.name, "fp16")
    assert m.finish_command == expected and m.missing == missing_for_build()
    assert m.weights_sha256 == file_sha256(spread_ckpt) and m.trt_onnx_sha256 == file_sha256(onnx_file)
    assert m.batch == {"min": 1, "opt": 1, "max": 4}
    assert [t["name"] for t in m.inputs] == ["photo", "depth", "style"] and m.outputs[0]["name"] == "sketch"
    assert sum(m.plugins.values()) == 45 and m.graph_passes["precision"] == "fp16"
    # --verify without TensorRT: the TensorRT ONNX itself, in the reference evaluator, on the sample faces.
    ref = m.parity["reference_evaluator"]
    assert ref["passed"] and ref["nonfinite"] == 0 and len(ref["cases"]) == 2, json.dumps(ref)
    model = onnx.load(str(onnx_file))
    assert len(plugin_nodes(model)) == 45
    assert {p.key: p.value for p in model.metadata_props}["hida_rt.weights_sha256"] == m.weights_sha256
