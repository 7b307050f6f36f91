"""Refuse a mixed checkout: hida_rt and its sub-packages (export, kernels) in two different folders.

export/ and kernels/ are top-level folders installed as hida_rt.export and
hida_rt.kernels (pyproject.toml's package-dir). Run from a checkout's root, Python
takes `hida_rt` from the current folder but the two sub-packages from
wherever an editable install points, which may be another checkout: the
code would then silently be a mix of two versions.
"""
from __future__ import annotations

import os


def require_same_checkout(package: str, init_file: str) -> None:
    """ImportError (one line) unless `package` (its __init__ at `init_file`) sits beside or inside hida_rt.

    Beside: a checkout or an editable install (ROOT/hida_rt, ROOT/export). Inside: a wheel install
    (site-packages/hida_rt/export). Only paths are compared: nothing is imported.
    """
    import hida_rt

    core = os.path.dirname(os.path.realpath(hida_rt.__file__))
    here = os.path.dirname(os.path.realpath(init_file))
    if os.path.dirname(here) not in (core, os.path.dirname(core)):
        raise ImportError(f"{package} is imported from {here} but hida_rt from {core} (two checkouts or installs "
                          f"mixed); install this checkout with pip install -e {os.path.dirname(core)}, or run from "
                          f"outside it")
