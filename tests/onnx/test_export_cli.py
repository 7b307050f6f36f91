"""python -m hida_rt.export refuses what it cannot export: exit 2, one line, nothing written."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from hida_rt.export.__main__ import main as export_main


def assert_one_line_error(code: int, stderr: str, *phrases: str) -> None:
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1, f"expected one error line, got:\n{stderr}"
    assert "Traceback" not in stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def test_size_not_multiple_of_256_as_a_user_runs_it(tmp_path, spread_ckpt):
    out = tmp_path / "model.onnx"
    proc = subprocess.run([sys.executable, "-m", "hida_rt.export", "--weights", str(spread_ckpt), "-o", str(out),
                           "--height", "300"], capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc.returncode, proc.stderr, "--height 300", "multiple of 256")
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, phrases", [
    (["--width", "100"], ("--width 100", "multiple of 256")),
    (["--height", "0"], ("--height 0", "multiple of 256")),
    (["--opset", "18"], ("--opset 18", "DeformConv needs opset >= 19")),
])
def test_refused_settings(tmp_path, spread_ckpt, run_captured, args, phrases):
    out = tmp_path / "model.onnx"
    code, stdout, stderr = run_captured(export_main, ["-w", str(spread_ckpt), "-o", str(out)] + args)
    assert_one_line_error(code, stderr, *phrases)
    assert list(tmp_path.iterdir()) == []


def test_bad_weights(tmp_path, run_captured):
    weights = tmp_path / "not_a_checkpoint.pth"
    weights.write_bytes(b"these are not weights")
    out = tmp_path / "model.onnx"
    code, _, stderr = run_captured(export_main, ["-w", str(weights), "-o", str(out)])
    assert_one_line_error(code, stderr, str(weights), "checkpoint")
    assert sorted(p.name for p in tmp_path.iterdir()) == [weights.name]


def test_missing_weights_names_the_fix(tmp_path, run_captured):
    code, _, stderr = run_captured(export_main, ["-w", str(tmp_path / "nope.ckpt"), "-o", str(tmp_path / "m.onnx")])
    assert_one_line_error(code, stderr, "nope.ckpt", "no such file", "random_weights")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["under_a_file", "a_directory", "a_pipe"])
def test_unwritable_output(tmp_path, spread_ckpt, run_captured, where):
    blocker = tmp_path / "blocker"
    if where == "under_a_file":
        blocker.write_text("a file where a folder would have to be")
        out, phrase = blocker / "sub" / "model.onnx", "is a file, not a directory"
    elif where == "a_directory":
        blocker.mkdir()
        out, phrase = blocker, "is a directory"
    else:  # like -o /dev/null: the atomic rename must not replace the pipe with a file
        os.mkfifo(blocker)
        out, phrase = blocker, "not a regular file"
    code, _, stderr = run_captured(export_main, ["-w", str(spread_ckpt), "-o", str(out)])
    assert_one_line_error(code, stderr, str(out), phrase)
    assert [p.name for p in tmp_path.iterdir()] == ["blocker"]
    if blocker.is_dir():
        assert list(blocker.iterdir()) == []
    if where == "a_pipe":
        assert stat.S_ISFIFO(blocker.stat().st_mode)


def test_help_names_the_formats_and_sizes():
    from hida_rt.export.__main__ import build_parser
    text = build_parser().format_help()
    for phrase in ("--weights", "--height", "--opset", "multiple of 256", "onnx", "Example"):
        assert phrase in text


@pytest.mark.parametrize("args, phrases", [
    (["--batch", "0"], ("--batch must be at least 1, got 0",)),
    (["--batch", "-2"], ("--batch must be at least 1, got -2",)),
    (["--max-batch", "1"], ("--max-batch must be at least 2",)),
    (["--batch", "2", "--max-batch", "4"], ("--batch", "--max-batch", "exclude each other")),
    (["--height", "300"], ("--height 300", "multiple of 256")),
    (["--opset", "19"], ("--opset applies to --format onnx only",)),
])
def test_pt2_refused_settings(tmp_path, spread_ckpt, run_captured, args, phrases):
    """--format pt2 refuses before any work (the real packaging runs once, in tests/cpp/test_aoti_cpp.py)."""
    code, stdout, stderr = run_captured(export_main, ["--format", "pt2", "-w", str(spread_ckpt),
                                                      "-o", str(tmp_path / "m.pt2")] + args)
    assert_one_line_error(code, stderr, *phrases)
    assert stdout == "" and list(tmp_path.iterdir()) == []


def test_pt2_needs_a_pt2_name(tmp_path, spread_ckpt, run_captured):
    code, _, stderr = run_captured(export_main, ["-f", "pt2", "-w", str(spread_ckpt), "-o", str(tmp_path / "m.onnx")])
    assert_one_line_error(code, stderr, "must end in .pt2")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["--batch", "2"], ["--max-batch", "4"], ["--device", "cpu"]])
def test_onnx_refuses_the_pt2_options(tmp_path, spread_ckpt, run_captured, args):
    code, _, stderr = run_captured(export_main, ["-w", str(spread_ckpt), "-o", str(tmp_path / "m.onnx")] + args)
    assert_one_line_error(code, stderr, "apply to --format pt2 only")
    assert list(tmp_path.iterdir()) == []


def test_aoti_is_a_library_module_without_a_second_cli():
    proc = subprocess.run([sys.executable, "-m", "hida_rt.export.aoti", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert "usage:" not in proc.stdout
    from hida_rt.export import aoti
    assert not hasattr(aoti, "main") and not hasattr(aoti, "build_parser")
