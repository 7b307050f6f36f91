"""The package layers: imports run one way, and a mixed checkout is refused at import.

hida_rt core is the ground floor; hida_rt.export and hida_rt.kernels build on
it; command-line entry points (`python -m ...` modules) sit on top. Core
modules name the backends that live in hida_rt.export and hida_rt.kernels
only in hida_rt.backends.BACKEND_MODULES (strings importlib loads when one is
asked for); only entry points import either layer, at module level or inside
a function.
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


UPPER_LAYERS = ("hida_rt.export", "hida_rt.kernels")
IMPORT_CALLS = ("import_module", "__import__", "find_spec")


def package_of(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts[:-1])
    parts[0] = INSTALLED_AS.get(parts[0], parts[0])
    return ".".join(parts)


def imported_modules_in(source: str, package: str, filename: str = "<source>") -> set[str]:
    """Absolute names of the modules `source` imports anywhere (module level or inside functions):
    import statements, relative ones resolved against `package`, and importlib calls on a literal name."""
    names = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            names |= {f"{module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in IMPORT_CALLS:
                names.add(node.args[0].value)
    return names


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved against its package)."""
    return imported_modules_in(path.read_text(), package_of(path), str(path))


def upper_layer_imports(names: set[str]) -> list[str]:
    return sorted(m for m in names if any(m == layer or m.startswith(layer + ".") for layer in UPPER_LAYERS))


def is_entry_point(path: Path) -> bool:
    return path.name == "__main__.py" or 'if __name__ == "__main__":' in path.read_text()


def test_core_imports_nothing_from_export_or_kernels_but_the_cli_entry_points():
    offenders = {}
    for path in sorted((REPO / "hida_rt").rglob("*.py")):
        hits = upper_layer_imports(imported_modules(path))
        if hits and not is_entry_point(path):
            offenders[path.relative_to(REPO).as_posix()] = hits
    assert not offenders, f"hida_rt core imports the export or kernels layer: {offenders}"


def test_the_layer_check_sees_function_level_relative_and_importlib_imports():
    source = """
import importlib
def kernel_ops():
    from ..kernels import _library
    return _library
def exporter():
    return importlib.import_module("hida_rt.export.onnx_export")
def fine():
    from ..model import ops
    return importlib.import_module(NAME_FROM_A_TABLE)
"""
    assert upper_layer_imports(imported_modules_in(source, "hida_rt.backends")) == [
        "hida_rt.export.onnx_export", "hida_rt.kernels", "hida_rt.kernels._library"]


def test_backends_above_core_are_named_in_the_table_and_loaded_only_when_asked_for():
    from hida_rt.backends import BACKEND_MODULES, BACKEND_NAMES
    assert set(BACKEND_MODULES) == set(BACKEND_NAMES)
    folders = {installed: folder for folder, installed in INSTALLED_AS.items()}
    for name, module in BACKEND_MODULES.items():
        layer = next((lay for lay in UPPER_LAYERS if module.startswith(lay + ".")), "hida_rt")
        folder = REPO / folders.get(layer, "hida_rt")
        rest = module[len(layer) + 1:].split(".")
        assert (folder.joinpath(*rest[:-1]) / f"{rest[-1]}.py").is_file(), (name, module)
    assert BACKEND_MODULES["triton"].startswith("hida_rt.kernels.")
    assert BACKEND_MODULES["onnxruntime"].startswith("hida_rt.export.")
    code = ("import sys, hida_rt.backends as b; b.backend_class('eager'); "
            "print(sorted(m for m in sys.modules if m.startswith(('hida_rt.export', 'hida_rt.kernels'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


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
