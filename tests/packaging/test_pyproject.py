"""pyproject.toml: every package folder is listed under its installed name, and the wheel holds every file.

kernels/ and export/ install as hida_rt.kernels and hida_rt.export, so the
package list is explicit (setuptools' discovery cannot rename); a new folder
with Python files that is not listed would be missing from a wheel install
(and silently present in an editable one). The wheel is built offline
(--no-build-isolation --no-index, as the GPU session installs) from a copy.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from testutils.checkout_copy import REPO, copy_checkout

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11")

CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGE_DIR = CONFIG["tool"]["setuptools"]["package-dir"]
ROOTS = {folder: pkg for pkg, folder in PACKAGE_DIR.items()}  # "kernels" -> "hida_rt.kernels"


def source_packages() -> dict[str, Path]:
    """Installed package name -> folder, for every folder under the three roots holding any file."""
    found = {}
    for folder, pkg in ROOTS.items():
        for d in [REPO / folder] + [p for p in (REPO / folder).rglob("*") if p.is_dir()]:
            if d.name == "__pycache__" or not any(f.is_file() and f.suffix != ".pyc" for f in d.iterdir()):
                continue
            rel = d.relative_to(REPO / folder).parts
            found[".".join((pkg,) + rel)] = d
    return found


def test_every_package_folder_is_listed():
    listed = set(CONFIG["tool"]["setuptools"]["packages"])
    found = source_packages()
    missing = sorted(set(found) - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert not sorted(listed - set(found)), f"listed but no such folder: {sorted(listed - set(found))}"


def test_extras():
    extras = CONFIG["project"]["optional-dependencies"]
    assert set(extras) >= {"test", "gpu", "tensorrt", "face", "video", "serve", "ray"}
    assert "ray[serve,data]==2.60.0" in extras["ray"]
    assert not any(d.startswith("torch") and "==" in d for d in CONFIG["project"]["dependencies"]), \
        "a pinned torch in the core dependencies would pull CUDA wheels over the local CPU build"


def test_offline_wheel_holds_every_file(tmp_path):
    root = copy_checkout(tmp_path / "checkout")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(tmp_path / "dist"), str(root)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("hida_rt-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    want = set()
    for pkg, folder in source_packages().items():
        for f in folder.iterdir():
            if f.is_file() and f.suffix != ".pyc":
                want.add("/".join(pkg.split(".")) + "/" + f.name)
    assert not sorted(want - names), f"missing from the wheel: {sorted(want - names)[:20]}"
    assert not any(n.startswith(("kernels/", "export/")) for n in names), "generic top-level names installed"
