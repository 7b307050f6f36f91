"""Command-line options every hida_rt tool shares, defined once, and the backend they select.

Each `add_*` takes anything with argparse's `add_argument` (a parser or an
argument group), so a tool composes the options it needs:

    p = argparse.ArgumentParser(prog="python -m hida_rt.mytool")
    add_weights(p)
    add_style(p)
    add_backend_options(p)
    args = p.parse_args()
    backend = backend_from_args(args)      # hida_rt.backends.create_backend with these options
"""
from __future__ import annotations

import argparse
from typing import Any

from .backends import CHOICES, Backend, create_backend
from .model import SIZE_MULTIPLE

WEIGHTS_HELP = "HIDA checkpoint: Lightning .ckpt or plain state dict .pth"
STYLE_HELP = ("FS2K style 1 (sparse outlines), 2 or 3 (heavy shading), or a mix as three weights "
              "for styles 1,2,3, e.g. 0.5,0,0.5 (default {default})")
BACKEND_HELP = ("inference backend; auto (default): tensorrt when --engine is given (and a one-line error if "
                "TensorRT cannot run it here), else triton on a GPU if it passes its self-check there (else eager "
                "FP16 on the GPU, saying why), else onnxruntime (exports the ONNX on first use and caches it in "
                "$HIDA_RT_CACHE or ~/.cache/hida_rt), else eager")
DEVICE_HELP = "torch device for eager/triton: cpu, cuda, cuda:1 (default: cuda if present)"
ONNX_HELP = "onnxruntime backend: ONNX file to use (default: exported once and cached in the user cache folder)"
ENGINE_HELP = "tensorrt backend: the .plan engine to load"
RECHECK_HELP = ("run the GPU backend's self-check again instead of reading its cached verdict (the check runs by "
                "itself on first use with a new GPU, driver or version)")


def add_weights(p: Any, required: bool = True, help: str = WEIGHTS_HELP) -> None:
    """--weights/-w: the HIDA checkpoint file."""
    p.add_argument("--weights", "-w", required=required, help=help)


def add_style(p: Any, default: str = "2") -> None:
    """--style/-s: an FS2K style or a mix (parse it with hida_rt.styles.parse_style)."""
    p.add_argument("--style", "-s", default=default, help=STYLE_HELP.format(default=default))


def add_backend_options(p: Any) -> None:
    """--backend/-b, --device, --onnx, --engine, --recheck: what backend_from_args reads."""
    p.add_argument("--backend", "-b", choices=CHOICES, default="auto", help=BACKEND_HELP)
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.add_argument("--onnx", default=None, help=ONNX_HELP)
    p.add_argument("--engine", default=None, help=ENGINE_HELP)
    p.add_argument("--recheck", action="store_true", help=RECHECK_HELP)


def add_size(p: Any, default: int = 256, what: str = "input") -> None:
    """--height and --width of the network input (check them with hida_rt.model.check_size)."""
    for side in ("height", "width"):
        p.add_argument(f"--{side}", type=int, default=default,
                       help=f"{what} {side}, a multiple of {SIZE_MULTIPLE} (default {default})")


def backend_from_args(args: argparse.Namespace, progress: bool | None = None, **options) -> Backend:
    """The backend the options of add_backend_options and add_weights select.

    progress: show progress on long work (the first ONNX export); default: not --quiet.
    Extra keyword options go to hida_rt.backends.create_backend unchanged.
    """
    if progress is None:
        progress = not getattr(args, "quiet", False)
    return create_backend(args.backend, getattr(args, "weights", None), device=args.device, onnx=args.onnx,
                          engine=args.engine, progress=progress, recheck=getattr(args, "recheck", False), **options)


__all__ = ["add_backend_options", "add_size", "add_style", "add_weights", "backend_from_args"]
