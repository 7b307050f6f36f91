"""Export HIDA for other runtimes: python -m hida_rt.export --weights W -o model.onnx

Formats are entries of FORMATS: a name, the options only it takes, and a
function from the parsed arguments to the written file's one-line summary.
Adding one is adding an entry and its function; each format refuses the
options of the others (a silently ignored option would mislead).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable, Sequence

from hida_rt.cli import prog_name, run_cli
from hida_rt.cli_options import add_size, add_weights
from hida_rt.errors import InputError

from .onnx_deform import MIN_OPSET
from .triton_repo import add_triton_options, check_triton_args, repository_from_args

# Options that only --format pt2 reads (argparse dest names); any other format refuses them.
PT2_ONLY = ("device", "batch", "max_batch")


@dataclass(frozen=True)
class Format:
    help: str
    add_options: Callable[[argparse._ArgumentGroup], None]
    export: Callable[[argparse.Namespace], str]


def _onnx_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--opset", type=int, default=None,
                       help=f"ONNX opset, {MIN_OPSET} or 20 (DeformConv needs >= {MIN_OPSET}; default {MIN_OPSET})")


def _export_onnx(args: argparse.Namespace) -> str:
    # Imported here so --help and argument errors don't pay for torch.onnx.
    from .onnx_export import export_onnx
    summary = export_onnx(args.weights, args.output, height=args.height, width=args.width,
                          opset=MIN_OPSET if args.opset is None else args.opset, progress=not args.quiet)
    return summary.line()


def _pt2_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--device", choices=("cpu", "cuda"), default=None,
                       help="pt2: device to compile for, cpu (default) or cuda (this machine's GPU architecture; "
                            "run the package on the same)")
    group.add_argument("--batch", type=int, default=None, help="pt2: fixed batch size (default 1)")
    group.add_argument("--max-batch", type=int, default=None,
                       help="pt2: dynamic batch 1..MAX instead of a fixed one (slower to compile)")


def _export_pt2(args: argparse.Namespace) -> str:
    from .aoti import package_aoti
    if args.batch is not None and args.max_batch is not None:
        raise InputError("--batch (a fixed batch) and --max-batch (a dynamic one) exclude each other; give one")
    # package_aoti refuses a batch below 1 (or a max batch below 2) before any work.
    return package_aoti(args.weights, args.output, device=args.device or "cpu", height=args.height,
                        width=args.width, batch=1 if args.batch is None else args.batch, max_batch=args.max_batch,
                        progress=not args.quiet).line()


FORMATS: dict[str, Format] = {
    "onnx": Format("portable ONNX (standard DeformConv; runs in onnxruntime)", _onnx_options, _export_onnx),
    "pt2": Format("AOTInductor package for C++ (LibTorch, engines/cpp)", _pt2_options, _export_pt2),
}
DEFAULT_FORMAT = "onnx"


def resolve_format(args: argparse.Namespace) -> str:
    """--format, or the one -o's suffix names (.onnx, .pt2); a --format the suffix contradicts is refused."""
    suffix = args.output.lower().rsplit(".", 1)[-1] if "." in args.output else ""
    named = suffix if suffix in FORMATS else None
    if args.format is None:
        return named or DEFAULT_FORMAT
    if named is not None and named != args.format:
        raise InputError(f"-o {args.output} names a .{named} file but --format is {args.format}: end the file in "
                         f".{args.format} or drop --format")
    return args.format


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("export"),
        description="Export the HIDA generator for another runtime. ONNX: opset >= 19, deformable convs as "
                    "the standard DeformConv op, inputs photo/depth/style, output sketch, dynamic batch, "
                    "fixed height x width; only the weights inference reads are stored.",
        epilog="Examples: hida-rt export --weights hida.ckpt -o hida_256.onnx "
               "(then: hida-rt sketch PHOTO --depth D --weights hida.ckpt --backend onnxruntime "
               "--onnx hida_256.onnx); hida-rt export --weights hida.ckpt -o hida_256.pt2 (the format follows "
               "the suffix; then, with the C++ library built as in the README: build/cpp/hida_sketch --model "
               "hida_256.pt2 PHOTO DEPTH OUT.png)")
    add_weights(p)
    p.add_argument("--output", "-o", required=True, help="file to write (replaced atomically; pt2: ending in .pt2)")
    p.add_argument("--format", "-f", choices=sorted(FORMATS), default=None,
                   help="; ".join(f"{name}: {fmt.help}" for name, fmt in FORMATS.items())
                        + f" (default: the suffix of -o, .onnx or .pt2; else {DEFAULT_FORMAT})")
    add_size(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines, only the summary")
    for name, fmt in FORMATS.items():
        fmt.add_options(p.add_argument_group(f"{name} options"))
    add_triton_options(p, with_max_batch=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.format = resolve_format(args)
    if args.format != "pt2" and any(getattr(args, o) is not None for o in PT2_ONLY):
        raise InputError("--device/--batch/--max-batch apply to --format pt2 only (ONNX has a dynamic batch and "
                         "runs on any device)")
    if args.format != "onnx" and args.opset is not None:
        raise InputError("--opset applies to --format onnx only")
    if args.format != "onnx" and args.triton_repo is not None:
        raise InputError("--triton-repo takes --format onnx here (or a TensorRT engine: python -m hida_rt.build "
                         "--triton-repo DIR)")
    check_triton_args(args)
    print(FORMATS[args.format].export(args))
    if args.triton_repo is not None:
        print(repository_from_args(args.output, args).line())
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.export"))
