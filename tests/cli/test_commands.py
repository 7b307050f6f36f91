"""The hida-rt command: every tool as a subcommand, with the tool's own parser, help, exit codes."""
from __future__ import annotations

import importlib
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import hida_rt
from hida_rt import cli
from hida_rt.commands import TOOLS, main
from testutils.cli import assert_one_line_error, run_in_process

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_command_name():
    yield
    cli._command = None


def _options(parser) -> list[tuple[str, ...]]:
    return sorted(tuple(a.option_strings) for a in parser._actions if a.option_strings)


def test_the_console_script_is_declared_and_installed():
    text = (REPO / "pyproject.toml").read_text()
    assert '[project.scripts]\nhida-rt = "hida_rt.commands:main"' in text
    script = Path(sysconfig.get_path("scripts")) / "hida-rt"
    if not script.exists():
        pytest.skip(f"hida_rt is not pip-installed into this interpreter ({script} missing)")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: hida-rt ")
    for name, tool in TOOLS.items():
        assert f"  {name} " in proc.stdout and tool.summary in proc.stdout


def test_help_lists_every_tool_with_one_line_and_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.split("commands:\n")[1].split("\n\n")[0].splitlines()]
    assert listed == list(TOOLS)
    assert set(TOOLS) >= {"sketch", "video", "serve", "batch", "build", "export", "doctor", "random-weights"}
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"hida_rt {hida_rt.__version__}"


def test_no_command_or_an_unknown_one_exits_2(capsys):
    assert main([]) == 2
    assert "commands:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["paint"])
    assert e.value.code == 2 and "invalid choice: 'paint'" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(TOOLS))
def test_each_subcommand_is_the_tools_own_parser(name, capsys):
    module = importlib.import_module(TOOLS[name].module)
    own = _options(module.build_parser())
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: hida-rt {name} ")
    assert _options(module.build_parser()) == own  # the same parser, now named after the command
    for option in own:
        assert option[0] in out
    cli._command = None
    assert module.build_parser().prog == f"python -m hida_rt.{TOOLS[name].module[8:].removesuffix('.__main__')}"


@pytest.mark.parametrize("name", list(TOOLS))
def test_each_tools_help_ends_with_an_example_in_the_hida_rt_form(name):
    epilog = importlib.import_module(TOOLS[name].module).build_parser().epilog or ""
    assert f"hida-rt {name} " in epilog, f"{name} --help shows no `hida-rt {name} ...` example"
    assert "python -m hida_rt." not in epilog and "hida.pth" not in epilog


def test_errors_are_one_line_prefixed_with_the_subcommand(tmp_path):
    r = run_in_process(lambda argv: main(argv), ["sketch", tmp_path / "missing.png", "--depth", tmp_path / "d.png",
                                               "--weights", tmp_path / "none.pth", "-o", tmp_path / "out.png"])
    assert_one_line_error(r, "missing.png", prog="hida-rt sketch")


def test_python_dash_m_hida_rt_runs_a_tool_as_a_user_would(tmp_path):
    out = tmp_path / "w.ckpt"
    proc = subprocess.run([sys.executable, "-m", "hida_rt", "random-weights", "-o", str(out), "--plain"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and proc.stdout.startswith(f"wrote {out}: plain state dict")
    proc = subprocess.run([sys.executable, "-m", "hida_rt", "random-weights"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == "usage: python -m hida_rt random-weights [-h] -o OUTPUT [--seed SEED]"
