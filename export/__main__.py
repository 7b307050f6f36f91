"""Export HIDA for other runtimes: python -m hida_rt.export --weights W -o model.onnx

Formats are entries of FORMATS: a name, the options only it takes, and a
function from the parsed arguments to the written file's one-line summary.
Adding one (e.g. `pt2` for AOTInductor) is adding an entry and its function.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable, Sequence

from hida_rt.cli import run_cli
from hida_rt.errors import InputError
from hida_rt.model import SIZE_MULTIPLE

from .onnx_deform import MIN_OPSET


@dataclass(frozen=True)
class Format:
    help: str
    add_options: Callable[[argparse._ArgumentGroup], None]
    export: Callable[[argparse.Namespace], str]


def _onnx_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--opset", type=int, default=MIN_OPSET,
                       help=f"ONNX opset, {MIN_OPSET} or 20 (DeformConv needs >= {MIN_OPSET}; default {MIN_OPSET})")


def _export_onnx(args: argparse.Namespace) -> str:
    # Imported here so --help and argument errors don't pay for torch.onnx.
    from .onnx_export import export_onnx
    summary = export_onnx(args.weights, args.output, height=args.height, width=args.width,
                          opset=args.opset, progress=not args.quiet)
    return summary.line()


def _pt2_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="pt2: device to compile for (default cpu)")
    group.add_argument("--batch", type=int, default=None, help="pt2: fixed batch size (default 1)")
    group.add_argument("--max-batch", type=int, default=None, help="pt2: dynamic batch 1..MAX instead of a fixed one")


def _export_pt2(args: argparse.Namespace) -> str:
    from .aoti import package_aoti
    if args.batch is not None and args.max_batch is not None:
        raise InputError("--batch (a fixed batch) and --max-batch (a dynamic one) exclude each other; give one")
    return package_aoti(args.weights, args.output, device=args.device, height=args.height, width=args.width,
                        batch=args.batch or 1, max_batch=args.max_batch, progress=not args.quiet).line()


FORMATS: dict[str, Format] = {
    "onnx": Format("portable ONNX (standard DeformConv; runs in onnxruntime)", _onnx_options, _export_onnx),
    "pt2": Format("AOTInductor package for C++ (LibTorch, engines/cpp)", _pt2_options, _export_pt2),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hida_rt.export",
        description="Export the HIDA generator for another runtime. ONNX: opset >= 19, deformable convs as "
                    "the standard DeformConv op, inputs photo/depth/style, output sketch, dynamic batch, "
                    "fixed height x width; only the weights inference reads are stored.",
        epilog="Example: python -m hida_rt.export --weights hida.ckpt -o hida_256.onnx "
               "(then: python -m hida_rt.sketch PHOTO --depth D --weights hida.ckpt --backend onnxruntime "
               "--onnx hida_256.onnx)")
    p.add_argument("--weights", "-w", required=True, help="HIDA checkpoint: Lightning .ckpt or plain state dict .pth")
    p.add_argument("--output", "-o", required=True, help="file to write (replaced atomically)")
    p.add_argument("--format", "-f", choices=sorted(FORMATS), default="onnx",
                   help="; ".join(f"{name}: {fmt.help}" for name, fmt in FORMATS.items()) + " (default onnx)")
    p.add_argument("--height", type=int, default=256, help=f"input height, a multiple of {SIZE_MULTIPLE} (default 256)")
    p.add_argument("--width", type=int, default=256, help=f"input width, a multiple of {SIZE_MULTIPLE} (default 256)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines, only the summary")
    for name, fmt in FORMATS.items():
        fmt.add_options(p.add_argument_group(f"{name} options"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.format != "pt2" and any(getattr(args, o) is not None for o in ("batch", "max_batch")):
        raise InputError("--batch/--max-batch apply to --format pt2 only (ONNX has a dynamic batch)")
    print(FORMATS[args.format].export(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.export"))
