"""The package layers: imports run one way, and a mixed checkout is refused at import.

hida_rt core is the ground floor; hida_rt.export and hida_rt.kernels build on
it; command-line entry points (`python -m ...` modules) sit on top. Core
modules name the backends that live in hida_rt.export only in
hida_rt.backends.BACKEND_MODULES; only entry points import hida_rt.export.
"""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Folders installed under another package name (pyproject.toml's package-dir).
INSTALLED_AS = {"export": "hida_rt.export", "kernels": "hida_rt.kernels"}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved against its package)."""
    parts = list(path.relative_to(REPO).with_suffix("").parts[:-1])
    parts[0] = INSTALLED_AS.get(parts[0], parts[0])
    package = ".".join(parts)
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            names |= {f"{module}.{a.name}" for a in node.names}
    return names


def is_entry_point(path: Path) -> bool:
    return path.name == "__main__.py" or 'if __name__ == "__main__":' in path.read_text()


def test_core_imports_nothing_from_export_but_the_cli_entry_points():
    offenders = {}
    for path in sorted((REPO / "hida_rt").rglob("*.py")):
        hits = sorted(m for m in imported_modules(path) if m == "hida_rt.export" or m.startswith("hida_rt.export."))
        if hits and not is_entry_point(path):
            offenders[path.relative_to(REPO).as_posix()] = hits
    assert not offenders, f"hida_rt core imports the export layer: {offenders}"


def test_graph_passes_and_fp16_pass_do_not_import_each_other_both_ways():
    passes = imported_modules(REPO / "export" / "graph_passes.py")
    fp16 = imported_modules(REPO / "export" / "trt_fp16.py")
    assert not any(m.startswith("hida_rt.export.graph_passes") for m in fp16)
    assert any(m.startswith("hida_rt.export.trt_fp16") for m in passes)


@pytest.mark.parametrize("package, folder", [("hida_rt.export", "export"), ("hida_rt.kernels", "kernels")])
def test_a_subpackage_from_another_checkout_is_refused_in_one_line(tmp_path, package, folder):
    # Another checkout's copy of the sub-package, found before this checkout's (as an editable install of
    # another checkout would be when Python runs from this checkout's root).
    other = tmp_path / "other_checkout"
    (other / folder).mkdir(parents=True)
    shutil.copy(REPO / folder / "__init__.py", other / folder / "__init__.py")
    code = f"import hida_rt; hida_rt.__path__.insert(0, {str(other)!r}); import {package}"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ") and str(other / folder) in last
    assert str(REPO / "hida_rt") in last and "pip install -e" in last


@pytest.mark.parametrize("package", ["hida_rt.export", "hida_rt.kernels"])
def test_this_checkout_imports(package):
    proc = subprocess.run([sys.executable, "-c", f"import {package}"], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr
