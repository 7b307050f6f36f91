"""python -m hida_rt.export refuses what it cannot export: exit 2, one line, nothing written.

Argument handling runs in-process (testutils.cli, with the entry point's prog); one run goes through
`python -m hida_rt.export` as a user types it.
"""
from __future__ import annotations

import os
import runpy
import stat
import sys
import warnings

import pytest
from testutils.cli import assert_one_line_error as one_line_error
from testutils.cli import run_in_process, run_module

PROG = "hida_rt.export"


def export_cli(argv):
    return run_in_process("hida_rt.export.__main__", argv, prog=PROG)


def assert_one_line_error(result, *phrases: str) -> None:
    one_line_error(result, *phrases, code=2, prog=PROG)


def test_size_not_multiple_of_256_as_a_user_runs_it(tmp_path, spread_ckpt):
    out = tmp_path / "model.onnx"
    proc = run_module("hida_rt.export", "--weights", spread_ckpt, "-o", out, "--height", "300", timeout=120)
    assert_one_line_error(proc, "--height 300", "multiple of 256")
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, phrases", [
    (["--width", "100"], ("--width 100", "multiple of 256")),
    (["--height", "0"], ("--height 0", "multiple of 256")),
    (["--opset", "18"], ("--opset 18", "DeformConv needs opset >= 19")),
])
def test_refused_settings(tmp_path, spread_ckpt, args, phrases):
    out = tmp_path / "model.onnx"
    r = export_cli(["-w", str(spread_ckpt), "-o", str(out)] + args)
    assert_one_line_error(r, *phrases)
    assert list(tmp_path.iterdir()) == []


def test_bad_weights(tmp_path):
    weights = tmp_path / "not_a_checkpoint.pth"
    weights.write_bytes(b"these are not weights")
    out = tmp_path / "model.onnx"
    r = export_cli(["-w", str(weights), "-o", str(out)])
    assert_one_line_error(r, str(weights), "checkpoint")
    assert sorted(p.name for p in tmp_path.iterdir()) == [weights.name]


def test_missing_weights_names_the_fix(tmp_path):
    r = export_cli(["-w", str(tmp_path / "nope.ckpt"), "-o", str(tmp_path / "m.onnx")])
    assert_one_line_error(r, "nope.ckpt", "no such file", "random_weights")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["under_a_file", "a_directory", "a_pipe"])
def test_unwritable_output(tmp_path, spread_ckpt, where):
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
    r = export_cli(["-w", str(spread_ckpt), "-o", str(out)])
    assert_one_line_error(r, str(out), phrase)
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
def test_pt2_refused_settings(tmp_path, spread_ckpt, args, phrases):
    """--format pt2 refuses before any work (the real packaging runs once, in tests/cpp/test_aoti_cpp.py)."""
    r = export_cli(["--format", "pt2", "-w", str(spread_ckpt),
                                                      "-o", str(tmp_path / "m.pt2")] + args)
    assert_one_line_error(r, *phrases)
    assert r.stdout == "" and list(tmp_path.iterdir()) == []


def test_pt2_needs_a_pt2_name(tmp_path, spread_ckpt):
    r = export_cli(["-f", "pt2", "-w", str(spread_ckpt), "-o", str(tmp_path / "m.bin")])
    assert_one_line_error(r, "must end in .pt2")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt, name", [("onnx", "x.pt2"), ("pt2", "x.onnx"), ("onnx", "X.PT2")])
def test_a_format_the_suffix_contradicts_is_refused(tmp_path, spread_ckpt, fmt, name):
    r = export_cli(["-f", fmt, "-w", str(spread_ckpt), "-o", str(tmp_path / name)])
    assert_one_line_error(r, f"-o {tmp_path / name} names a .{name.rsplit('.')[1].lower()} file but --format is "
                             f"{fmt}: end the file in .{fmt} or drop --format")
    assert list(tmp_path.iterdir()) == []


def test_the_format_follows_the_suffix(tmp_path, spread_ckpt):
    """-o x.pt2 alone means pt2: its options are taken, ONNX's refused (both before any work)."""
    from hida_rt.export.__main__ import build_parser, resolve_format

    assert resolve_format(build_parser().parse_args(["-w", "w", "-o", "x.pt2"])) == "pt2"
    assert resolve_format(build_parser().parse_args(["-w", "w", "-o", "x.onnx"])) == "onnx"
    assert resolve_format(build_parser().parse_args(["-w", "w", "-o", "model"])) == "onnx"
    r = export_cli(["-w", str(spread_ckpt), "-o", str(tmp_path / "x.pt2"), "--opset", "19"])
    assert_one_line_error(r, "--opset applies to --format onnx only")
    r = export_cli(["-w", str(spread_ckpt), "-o", str(tmp_path / "x.pt2"), "--batch", "0"])
    assert_one_line_error(r, "--batch must be at least 1, got 0")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["--batch", "2"], ["--max-batch", "4"], ["--device", "cpu"]])
def test_onnx_refuses_the_pt2_options(tmp_path, spread_ckpt, args):
    r = export_cli(["-w", str(spread_ckpt), "-o", str(tmp_path / "m.onnx")] + args)
    assert_one_line_error(r, "apply to --format pt2 only")
    assert list(tmp_path.iterdir()) == []


def test_aoti_is_a_library_module_without_a_second_cli():
    """Run as `python -m hida_rt.export.aoti --help` (its `__main__` run, in-process): it parses and prints nothing."""
    import contextlib
    import io
    out = io.StringIO()
    argv = sys.argv
    sys.argv = ["hida_rt.export.aoti", "--help"]
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "'hida_rt.export.aoti' found in sys.modules", RuntimeWarning)
            runpy.run_module("hida_rt.export.aoti", run_name="__main__", alter_sys=False)
    finally:
        sys.argv = argv
    assert "usage:" not in out.getvalue() and out.getvalue() == ""
    from hida_rt.export import aoti
    assert not hasattr(aoti, "main") and not hasattr(aoti, "build_parser")
