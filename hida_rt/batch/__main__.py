"""Sketch a whole photo set: hida-rt batch INPUT OUTPUT --weights W [--ray]

Every image under INPUT (a folder, a glob, or a URI a pyarrow filesystem
reads) becomes OUTPUT/<same subfolder>/<stem>_sketch.png. Depth maps come
from --depth DIR, paired by file stem; without --depth the face front end
finds the largest face, aligns it and estimates its depth (as
`python -m hida_rt.sketch` does without --depth).

Resumable: outputs are written atomically (hida_rt.batch.files), so a file
under its final name is complete; a rerun skips those, removes stale temp
files of a killed run and sketches exactly the missing ones. A bad image is
one line in the summary, not the end of the run.

In-process by default; with --ray, Ray Data reads the photos and a pool of
actors, each holding one backend, sketches and writes them (hida_rt.batch.ray_job).
Both paths run the same Sketcher (hida_rt.batch.job), so their outputs are the same.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import memory, styles
from ..checkpoint import check_weights_file
from ..cli import prog_name, run_cli
from ..cli_options import add_backend_options, add_style, add_weights
from ..errors import InputError
from ..model import SIZE_MULTIPLE
from . import files as bf
from .job import RESERVED_CPUS, Outcome, Plan, Settings, Sketcher, Task, plan

EXIT_SOME_FAILED = 1


# ---------------------------------------------------------------- the run

@dataclass
class Summary:
    images: int                      # found under INPUT
    sketched: int                    # written by this run
    skipped: int                     # complete before this run
    failed: list[dict] = field(default_factory=list)   # [{"file", "reason"}]
    seconds: float = 0.0             # from the start of work (backend/Ray start included) to the last write
    first_result_s: float | None = None   # until the first image came back: start-up cost
    images_per_s: float = 0.0        # sketched / seconds
    backend: str = ""
    mode: str = "in-process"         # or "ray: N actor(s), C CPU(s) each"

    def lines(self, output: str) -> list[str]:
        head = (f"sketched {self.sketched} of {self.images} image(s) into {output} in {self.seconds:.1f} s "
                f"({self.images_per_s:.2f} images/s, {self.mode}, backend {self.backend or 'none loaded'})")
        if self.first_result_s is not None:
            head += f"; first result after {self.first_result_s:.1f} s"
        rest = [f"skipped {self.skipped} already complete"] if self.skipped else []
        if self.failed:
            rest.append(f"{len(self.failed)} failed:")
        return [head] + rest + [f"  {f['file']}: {f['reason']}" for f in self.failed]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("batch"),
        description="Sketch every image under INPUT into OUTPUT (resumable: a rerun sketches only what is "
                    "missing). Runs in this process, or on Ray with --ray (Ray Data reads, an actor pool "
                    "with one backend per actor sketches and writes).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="INPUT: a folder (searched recursively, hidden files skipped), a glob ('photos/**/*.jpg'; quote "
               "it), a single image, or a URI an installed pyarrow filesystem reads (file://, s3://, gs://, "
               "hdfs://). OUTPUT: a folder or such a URI; sketches keep the input's subfolders and are named "
               "STEM_sketch.png.\n\n"
               "Exit codes: 0 every image sketched (or already there); 1 some images failed (listed, one line "
               "each; a rerun retries them); 2 bad arguments or input.\n\n"
               "Ray: --ray starts a local Ray instance, or joins the cluster at --address / $RAY_ADDRESS.\n\n"
               "Example: hida-rt batch photos/ sketches/ --weights hida.ckpt --ray --actors 2")
    p.add_argument("input", metavar="INPUT", help="folder, glob, image file or URI of the photos")
    p.add_argument("output", metavar="OUTPUT", help="folder (or URI) to write the sketches into")
    add_weights(p)
    p.add_argument("--depth", "-d", default=None, metavar="DIR",
                   help="folder (or URI) of depth maps, grey, bright = near, paired with the photos by file stem "
                        "(same subfolder first, else a unique stem anywhere under DIR). Without it the largest "
                        "face of each photo is found, aligned and its depth estimated (face extra, MediaPipe); "
                        "the sketch is then of the aligned 256x256 face")
    add_style(p)
    add_backend_options(p)
    p.add_argument("--size", type=int, default=256,
                   help=f"network resolution, a multiple of {SIZE_MULTIPLE} (default 256, the published one)")
    p.add_argument("--batch-size", "-k", type=int, default=8, help="photos per backend call (default 8)")
    ray = p.add_argument_group("Ray (with --ray)")
    ray.add_argument("--ray", action="store_true", help="run on Ray Data with a pool of backend actors")
    ray.add_argument("--actors", "-n", type=int, default=None, help="actors in the pool, one backend each (default 1)")
    ray.add_argument("--cpus-per-actor", type=float, default=None,
                     help="CPUs Ray reserves per actor, fractions allowed (default: the cluster's CPUs less "
                          f"{RESERVED_CPUS} kept for reading and writing, shared by the actors). An actor pool "
                          "holding every CPU starves Ray Data's read tasks and hangs")
    ray.add_argument("--gpus-per-actor", type=float, default=None, help="GPUs per actor, e.g. 1 or 0.5 (default 0)")
    ray.add_argument("--address", default=None,
                     help="Ray cluster to join (auto, or HOST:PORT of the head; default: $RAY_ADDRESS, else a new "
                          "local instance)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar; only failures and the summary")
    return p


def check_args(args: argparse.Namespace) -> None:
    if args.size <= 0 or args.size % SIZE_MULTIPLE:
        raise InputError(f"--size {args.size} is not a positive multiple of {SIZE_MULTIPLE}")
    if args.batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    if args.address is None:  # a cluster's nodes have their own memory; this machine's says nothing of it
        memory.check_fits(args.size, args.size, args.batch_size, multiple=SIZE_MULTIPLE)
    ray_only = [o for o in ("actors", "cpus_per_actor", "gpus_per_actor", "address") if getattr(args, o) is not None]
    if ray_only and not args.ray:
        raise InputError(f"--{ray_only[0].replace('_', '-')} applies only with --ray")
    if args.actors is not None and args.actors < 1:
        raise InputError("--actors must be at least 1")
    for o in ("cpus_per_actor", "gpus_per_actor"):
        v = getattr(args, o)
        if v is not None and not (v >= 0 and np.isfinite(v)):
            raise InputError(f"--{o.replace('_', '-')} must be a number >= 0")
    if args.cpus_per_actor == 0 and not args.gpus_per_actor:
        raise InputError("--cpus-per-actor 0 needs --gpus-per-actor: an actor must reserve something")
    check_weights_file(args.weights)


def settings_from_args(args: argparse.Namespace, pl: Plan, style: torch.Tensor) -> Settings:
    return Settings(weights=str(args.weights), backend=args.backend, device=args.device, onnx=args.onnx,
                    engine=args.engine, style=tuple(float(v) for v in style.reshape(-1)), size=args.size,
                    in_fs=pl.source.fs, depth_fs=pl.depth.fs if pl.depth is not None else None,
                    out_fs=pl.output.fs)


def prepare_backend(settings: Settings, args: argparse.Namespace) -> Settings:
    """Settle once, here, which backend runs and the ONNX export it needs (Ray actors would otherwise
    all export it at the same time on first use). With GPU actors their machines decide, not this one."""
    from dataclasses import replace

    from ..backends import prepare
    if args.ray and args.gpus_per_actor:
        return replace(settings, recheck=getattr(args, "recheck", False))
    name, options = prepare(settings.backend, settings.weights, settings.size, settings.size,
                            progress=not args.quiet, device=settings.device, onnx=settings.onnx,
                            engine=settings.engine, recheck=getattr(args, "recheck", False))
    return replace(settings, backend=name, onnx=options["onnx"], dtype=options.get("dtype"))


def run_in_process(tasks: list[Task], settings: Settings, batch_size: int, progress: bool,
                   on_start=None) -> Iterator[Outcome]:
    sketcher = Sketcher(settings, progress=progress)
    if on_start:
        on_start(sketcher.backend.name)
    for i in range(0, len(tasks), batch_size):
        yield from sketcher.sketch(tasks[i: i + batch_size])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_args(args)
    style = styles.parse_style(args.style)  # a bad --style fails before any listing
    pl = plan(args.input, args.output, args.depth)
    settings = settings_from_args(args, pl, style)
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if not args.quiet else (lambda line: None)
    bf.remove_files(pl.output, pl.stale_temps)
    say(f"{pl.total} image(s) under {pl.source.text}: {pl.done} already sketched, {len(pl.tasks)} to do"
        + (f", {len(pl.failed)} refused" if pl.failed else "")
        + (f"; removed {len(pl.stale_temps)} stale temp file(s)" if pl.stale_temps else ""))
    summary = Summary(images=pl.total, sketched=0, skipped=pl.done,
                      failed=[{"file": o.name, "reason": o.error} for o in pl.failed])
    t0 = time.perf_counter()
    if pl.tasks:
        if pl.output.local:
            from ..cli import check_writable
            check_writable(Path(pl.tasks[0].output))  # before the slow part, not after it
        settings = prepare_backend(settings, args)
        summary.backend = settings.backend
        if args.ray:
            from .ray_job import ray_outcomes
            outcomes, summary.mode = ray_outcomes(pl.tasks, settings, args)
        else:
            outcomes = run_in_process(pl.tasks, settings, args.batch_size, progress=not args.quiet,
                                      on_start=lambda name: setattr(summary, "backend", name))
        _consume(outcomes, summary, len(pl.tasks), args, t0)
    summary.seconds = time.perf_counter() - t0
    summary.images_per_s = summary.sketched / summary.seconds if summary.sketched and summary.seconds > 0 else 0.0
    if args.json:
        print(json.dumps(asdict(summary)))
    else:
        print("\n".join(summary.lines(pl.output.text)))
    return EXIT_SOME_FAILED if summary.failed else 0


def _consume(outcomes: Iterable[Outcome], summary: Summary, total: int, args, t0: float) -> None:
    bar = tqdm(total=total, unit="image", disable=args.quiet, desc="sketch", file=sys.stderr)
    try:
        for o in outcomes:
            if summary.first_result_s is None:
                summary.first_result_s = time.perf_counter() - t0
            if o.error is None:
                summary.sketched += 1
            else:
                summary.failed.append({"file": o.name, "reason": o.error})
                bar.write(f"failed: {o.name}: {o.error}", file=sys.stderr)
            bar.update(1)
    finally:
        bar.close()


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.batch"))
