"""Running the CLIs in tests: in-process (argument handling, errors) or as a user runs them (a few end-to-end runs).

    r = run_in_process("hida_rt.sketch", ["photo.png", "--depth", "d.png", "-o", "out.png"])
    r.returncode, r.stdout, r.stderr            # also unpacks: code, out, err = r
    r = run_module("hida_rt.sketch", "photo.png", ...)   # python -m hida_rt.sketch ... in a fresh process

`run_in_process` calls the module's `main` through `hida_rt.cli.run_cli` with
the prog its `python -m` entry point uses, so the error lines are the same
ones a user sees; argparse's own exits (usage errors, --help) are caught and
returned like any other exit code. Only the interpreter start and the
`__main__` guard are left to the subprocess runs.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import subprocess
import sys
from typing import NamedTuple, Sequence

from hida_rt.cli import run_cli


class CliRun(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run_in_process(module_or_main, argv: Sequence, prog: str | None = None) -> CliRun:
    """Run a CLI (a module name with a `main`, or a main function) in this process, capturing its output."""
    if isinstance(module_or_main, str):
        module = importlib.import_module(module_or_main)
        main = module.main
        prog = prog or module_or_main.removesuffix(".__main__")
    else:
        main = module_or_main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run_cli(main, [str(a) for a in argv], prog=prog or "hida_rt")
        except SystemExit as e:  # argparse: usage errors and --help
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return CliRun(code, out.getvalue(), err.getvalue())


def run_module(module: str, *args, cwd=None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m module args...` in a fresh interpreter, as a user runs it."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def assert_one_line_error(result, *fragments: str, code: int | None = 2, prog: str | None = None) -> str:
    """The run failed (with `code`, if given) with exactly one stderr line holding every fragment; returns it."""
    lines = result.stderr.splitlines()  # blank lines count: the message is one line, nothing around it
    assert result.returncode != 0 if code is None else result.returncode == code, \
        f"exit {result.returncode}: {result.stderr}"
    assert len(lines) == 1 and lines[0].strip() and "Traceback" not in result.stderr, result.stderr
    if prog is not None:
        assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
