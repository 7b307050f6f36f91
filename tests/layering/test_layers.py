"""The package layers: imports run one way, with no cycle, and a mixed checkout is refused at import.

Layers, lowest first (docs/architecture.md draws them); a module imports only
from its own layer or below:

    foundation      hida_rt (version), errors, styles, checkout, cache_dir, memory
    model           hida_rt.model, checkpoint
    core libraries  backends (the interface and eager), images (the one preprocessing module), face, cli, cli_options
    kernels, export hida_rt.kernels, hida_rt.export: the triton, onnxruntime and tensorrt backends, exporters
    jobs            video, batch, serve (their library modules)
    entry points    the tools of hida_rt.commands.TOOLS, every __main__ module, hida_rt.commands

Jobs and core libraries name the backends that live in hida_rt.export and
hida_rt.kernels only in hida_rt.backends.BACKEND_MODULES (strings importlib
loads when one is asked for); only entry points import either layer, at
module level or inside a function.
"""
from __future__ import annotations

import ast
import itertools
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


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    parts[0] = INSTALLED_AS.get(parts[0], parts[0])
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def entry_points() -> set[str]:
    from hida_rt.commands import TOOLS
    return {tool.module for tool in TOOLS.values()} | {"hida_rt.commands"}


def is_entry_point(path: Path) -> bool:
    return path.name == "__main__.py" or module_name(path) in entry_points()


LAYERS = [
    ("foundation", {"hida_rt", "hida_rt.errors", "hida_rt.styles", "hida_rt.checkout", "hida_rt.cache_dir",
                    "hida_rt.memory"}),
    ("model", {"hida_rt.model", "hida_rt.checkpoint"}),
    ("core libraries", {"hida_rt.backends", "hida_rt.images", "hida_rt.face", "hida_rt.cli", "hida_rt.cli_options",
                        "hida_rt.self_check"}),
    ("kernels, export", {"hida_rt.kernels", "hida_rt.export"}),
    ("jobs", {"hida_rt.video", "hida_rt.batch", "hida_rt.serve"}),
]
ENTRY_LAYER = len(LAYERS)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for folder in ("hida_rt", *INSTALLED_AS) for path in (REPO / folder).rglob("*.py")}


def layer_of(module: str) -> int | None:
    """Index in LAYERS of the module (or package) `module` belongs to; ENTRY_LAYER for entry points."""
    if module.endswith(".__main__") or module in entry_points():
        return ENTRY_LAYER
    for depth in range(module.count(".") + 1, 0, -1):
        prefix = ".".join(module.split(".")[:depth])
        for i, (_, members) in enumerate(LAYERS):
            if prefix in members:
                return i
    return None


def module_graph(sources: dict[str, str], packages: set[str]) -> dict[str, set[str]]:
    """Module -> the modules of `sources` it imports (anywhere in the file); `packages` are the __init__
    modules. Importing a submodule also runs its package's __init__, but that is Python's doing, not a
    dependency: `from . import ops` is an edge to the package's `ops`, not to the package."""
    graph = {}
    for name, source in sources.items():
        names = imported_modules_in(source, name if name in packages else name.rpartition(".")[0])
        names = {m for m in names if not any(o.startswith(m + ".") and o in sources for o in names)}
        deps = set()
        for m in names:
            while m and m not in sources:
                m = m.rpartition(".")[0]
            if m and m != name:
                deps.add(m)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `graph`: its strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], itertools.count()

    def visit(v):
        index[v] = low[v] = next(counter)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def repo_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return module_graph({name: path.read_text() for name, path in modules.items()},
                        {name for name, path in modules.items() if path.name == "__init__.py"})


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


def test_no_import_cycle_in_the_tree():
    assert cycles(repo_graph()) == []


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import():
    # The shape of the old batch.py / batch_ray.py pair: one side imports the other inside a function.
    sources = {
        "pkg": "",
        "pkg.job": "from .runner import ray_outcomes\n",
        "pkg.runner": "def go():\n    from .job import Task\n",
        "pkg.files": "from . import job\n",
    }
    graph = module_graph(sources, {"pkg"})
    assert cycles(graph) == [["pkg.job", "pkg.runner"]]
    graph["pkg.runner"] = set()
    assert cycles(graph) == []


def test_every_module_has_a_layer_and_imports_only_its_own_layer_or_below():
    graph = repo_graph()
    unplaced = sorted(m for m in graph if layer_of(m) is None)
    assert not unplaced, f"modules in no layer (add them to LAYERS or hida_rt.commands.TOOLS): {unplaced}"
    upward = {}
    for module, deps in graph.items():
        here = layer_of(module)
        up = sorted(d for d in deps if layer_of(d) > here)
        if up:
            upward[module] = up
    assert not upward, f"imports that go up a layer: {upward}"


def test_every_tool_is_a_module_with_main_and_the_jobs_are_packages():
    for name in ("video", "batch", "serve"):
        assert (REPO / "hida_rt" / name / "__init__.py").is_file()
        assert (REPO / "hida_rt" / name / "__main__.py").is_file()
    flat = sorted(p.stem for p in (REPO / "hida_rt").glob("*.py"))
    assert not [f for f in flat if f.startswith(("video_", "batch_"))], flat
    modules = all_modules()
    for module in entry_points() - {"hida_rt.commands"}:
        assert module in modules, module
        assert "\ndef main(" in modules[module].read_text(), module
