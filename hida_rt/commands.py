"""The `hida-rt` command: one entry point whose subcommands are hida_rt's tools.

    hida-rt sketch PHOTO --depth DEPTH --weights hida.ckpt -o out/
    python -m hida_rt sketch ...          # the same, where the scripts folder is not on PATH
    python -m hida_rt.sketch ...          # each tool's own entry point, unchanged

Each subcommand runs its tool's own `main` (one parser per tool, defined in
the tool's module); this module only names the tools and imports the one
asked for, so `hida-rt --help` starts without loading torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple, Sequence

from . import __version__, cli


class Tool(NamedTuple):
    module: str     # holds main(argv) -> int (and build_parser())
    summary: str    # one line for `hida-rt --help`


# The user entry points, in the order --help lists them. tests/layering/test_layers.py reads this table:
# these modules (and the __main__ modules) are the only ones allowed to reach every layer.
TOOLS: dict[str, Tool] = {
    "sketch": Tool("hida_rt.sketch", "sketch photos: aligned faces with depth maps, or faces found in any photo"),
    "video": Tool("hida_rt.video.__main__", "sketch a video file or a webcam into an H.264 video"),
    "serve": Tool("hida_rt.serve.__main__", "run the sketch service: HTTP API, live webcam page, metrics"),
    "batch": Tool("hida_rt.batch.__main__", "sketch a photo set, resumably, in process or on Ray Data"),
    "build": Tool("hida_rt.build", "build the FP16 TensorRT engine and its manifest"),
    "export": Tool("hida_rt.export.__main__", "export the network as ONNX or an AOTInductor package"),
    "doctor": Tool("hida_rt.doctor", "report what runs on this machine and check the GPU path"),
    "sass": Tool("hida_rt.kernels.sass", "registers, spills and occupancy of every kernel on each NVIDIA architecture"),
    "random-weights": Tool("hida_rt.random_weights", "write a deterministic random checkpoint for trying things out"),
}


def build_parser(prog: str = "hida-rt") -> argparse.ArgumentParser:
    width = max(map(len, TOOLS))
    listing = "\n".join(f"  {name:<{width}}  {tool.summary}" for name, tool in TOOLS.items())
    p = argparse.ArgumentParser(
        prog=prog,
        usage=f"{prog} [-h] [--version] COMMAND [ARGS ...]",
        description="hida_rt: an optimized inference runtime for HIDA (photo + depth map + style -> pencil sketch).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"commands:\n{listing}\n\n"
               f"`{prog} COMMAND --help` shows a command's options. Exit codes: 0 success, 2 bad input or\n"
               f"an unusable backend (one line on stderr), 130 interrupted; build and batch add their own\n"
               f"(see their --help).\n\n"
               f"Example: {prog} sketch samples/astronaut_photo.png --depth samples/astronaut_depth.png "
               f"--weights hida.ckpt -o sketches/")
    p.add_argument("--version", action="version", version=f"hida_rt {__version__}")
    p.add_argument("command", metavar="COMMAND", choices=list(TOOLS), help=argparse.SUPPRESS)
    p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None, prog: str = "hida-rt") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    tool = TOOLS[args.command]
    cli._command = prog
    return cli.run_cli(importlib.import_module(tool.module).main, args.args, prog=f"{prog} {args.command}")

