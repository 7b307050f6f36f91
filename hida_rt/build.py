"""Build the TensorRT engine: hida-rt build --weights hida.ckpt [-o engines/hida_fp16.plan]

Steps: export the portable ONNX, run the graph passes (merged convs, folded
MetaACON switches, hida_rt plugin nodes, explicit FP16), write the TensorRT
ONNX beside the engine, build a strongly typed engine with TensorRT (AOT
plugins, batch profile 1..--max-batch, timing cache) and write the manifest
`<engine>.json`. `--verify` compares with FP32 eager on the sample faces and
random inputs and records the figures in the manifest.

Without TensorRT or a GPU the TensorRT ONNX and an "unbuilt" manifest are
still written, and the command stops with one line naming what is missing
and the command that finishes the build on a machine that has both.

This module is the command line only; the build itself is hida_rt.export.trt_build.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import fields
from typing import Sequence

# A thin entry point: the build lives one floor up, in the export layer (the names are re-exported for callers).
from hida_rt.export.trt_build import (DEFAULT_ENGINE, EXIT_NOT_BUILT, EXIT_PARITY,  # noqa: F401
                                      EngineNotBuilt, EngineRequest, ParityFailed, build_engine_files,
                                      finish_command)

from hida_rt.export.triton_repo import add_triton_options, check_triton_args, repository_from_args

from .cli import prog_name, run_cli
from .cli_options import add_size, add_weights


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("build"),
        description="Build HIDA's TensorRT engine (FP16, strongly typed, hida_rt AOT plugins) and its manifest.\n"
                    "Needs TensorRT >= 10.9 and a CUDA GPU for the engine; without them it writes the TensorRT\n"
                    "ONNX and an unbuilt manifest, and says how to finish the build elsewhere.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes beside the engine: <engine stem>.trt.onnx (the TensorRT ONNX), <engine>.json (the\n"
               "manifest), <engine stem>.timing.cache.\n\n"
               f"Exit codes: 0 built (and verified); 2 bad input or build failure; {EXIT_NOT_BUILT} no TensorRT or no\n"
               f"GPU here (ONNX and unbuilt manifest written); {EXIT_PARITY} built, but --verify missed the precision\n"
               "targets (the figures are in the manifest).\n\n"
               "Example: hida-rt build --weights hida.ckpt -o engines/hida_fp16.plan --max-batch 8 --verify")
    add_weights(p)
    p.add_argument("--output", "-o", default=DEFAULT_ENGINE, help=f"engine file to write (default {DEFAULT_ENGINE})")
    p.add_argument("--max-batch", type=int, default=8, help="largest batch the engine takes (default 8)")
    p.add_argument("--opt-batch", type=int, default=1, help="batch TensorRT tunes for (default 1: latency)")
    add_size(p)
    p.add_argument("--verify", action="store_true",
                   help="compare with FP32 eager on the sample faces and random inputs; record figures in the "
                        "manifest (without TensorRT: the TensorRT ONNX in onnx.reference, on the CPU)")
    p.add_argument("--timing-cache", default=None, help="timing cache file (default <engine stem>.timing.cache)")
    p.add_argument("--workspace", type=int, default=None, metavar="MB", help="TensorRT workspace limit in MB")
    p.add_argument("--ptx-isa", default=None, metavar="X.Y",
                   help="PTX ISA version of the plugin kernels stored in the engine (default: the newest the "
                        "installed driver accepts); lower it to run the engine on machines with older drivers, "
                        "e.g. 8.4 for CUDA 12.4 drivers")
    p.add_argument("--verbose", action="store_true", help="TensorRT's full log on stderr")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines, only the result")
    add_triton_options(p, with_max_batch=True)
    return p


class _Steps:
    def __init__(self, enabled: bool):
        self.enabled, self.t0 = enabled, time.perf_counter()

    def __call__(self, what: str) -> None:
        if self.enabled:
            print(f"  [{time.perf_counter() - self.t0:6.1f} s] {what}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_triton_args(args, profile_max=args.max_batch)
    request = EngineRequest(**{f.name: getattr(args, f.name) for f in fields(EngineRequest)})
    try:
        built = build_engine_files(request, progress=_Steps(not args.quiet))
    except EngineNotBuilt as e:
        if args.triton_repo is None:
            raise
        # A Triton repository needs the engine: none is written; the finishing command writes it.
        raise EngineNotBuilt(f"{e} --triton-repo {shlex.quote(args.triton_repo)} (no Triton repository written "
                             f"here: it needs the engine)") from None
    print(built.line())
    if args.triton_repo is not None:
        print(repository_from_args(built.plan, args).line())
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.build"))
