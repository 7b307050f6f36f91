"""Sketch photos: python -m hida_rt.sketch PHOTO... --weights W --depth D... --style S

Each photo (with its depth map) is resized to the network size, run through
the chosen backend, and the sketch is resized back to the photo's size and
written as a grey PNG (atomically: temp name, then rename).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from tqdm import tqdm

from . import images, styles
from .backends import CHOICES, create_backend
from .cli import run_cli
from .errors import InputError
from .model import SIZE_MULTIPLE

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
# Photo and depth map must show the same framing; a larger aspect mismatch means wrong pairing.
ASPECT_TOLERANCE = 0.02


@dataclass
class Job:
    photo: Path
    depth: Path | None
    output: Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hida_rt.sketch",
        description="Turn aligned face photos and their depth maps into HIDA pencil sketches.",
        epilog="Example: python -m hida_rt.sketch samples/astronaut_photo.png --depth samples/astronaut_depth.png "
               "--weights hida.ckpt --style 2 -o out/")
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="photo file(s), ideally aligned 256x256 faces")
    p.add_argument("--weights", "-w", required=True, help="HIDA checkpoint: Lightning .ckpt or plain state dict .pth")
    p.add_argument("--depth", "-d", nargs="+", metavar="DEPTH",
                   help="depth map(s), grey, bright = near; one per photo, in the same order")
    p.add_argument("--style", "-s", nargs="+", default=["2"],
                   help="FS2K style 1 (sparse outlines), 2 or 3 (heavy shading), or a mix as three weights "
                        "for styles 1,2,3, e.g. 0.5,0,0.5 (default 2)")
    p.add_argument("--backend", "-b", choices=CHOICES, default="eager", help="inference backend (default eager)")
    p.add_argument("--device", default=None, help="torch device for eager/triton: cpu, cuda, cuda:1 (default: cuda if present)")
    p.add_argument("--onnx", default=None, help="onnxruntime backend: ONNX file to use (default: cached beside the weights)")
    p.add_argument("--engine", default=None, help="tensorrt backend: the .plan engine to load")
    p.add_argument("--size", type=int, default=256,
                   help=f"network resolution, a multiple of {SIZE_MULTIPLE} (default 256, the published one)")
    p.add_argument("--batch-size", type=int, default=8, help="photos per backend call (default 8)")
    p.add_argument("--output", "-o", default=".",
                   help="output file (one photo, ending in .png/.jpg) or directory (default: current directory); "
                        "sketches are named PHOTO-STEM_sketch.png")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    return p


def plan_jobs(args: argparse.Namespace) -> list[Job]:
    photos = [Path(p) for p in args.photos]
    if args.depth is None:
        raise InputError("no --depth given: pass one depth map per photo (grey, bright = near), "
                         "e.g. --depth samples/astronaut_depth.png")
    depths = [Path(d) for d in args.depth]
    if len(depths) != len(photos):
        raise InputError(f"{len(photos)} photo(s) but {len(depths)} depth map(s): give one --depth per photo")
    out = Path(args.output)
    if out.suffix.lower() in IMAGE_SUFFIXES:
        if len(photos) > 1:
            raise InputError(f"-o {out} names one file but {len(photos)} photos were given; pass a directory")
        outputs = [out]
    else:
        outputs = [out / f"{p.stem}_sketch.png" for p in photos]
    seen: dict[Path, Path] = {}
    for photo, o in zip(photos, outputs):
        if o in seen:
            raise InputError(f"{seen[o]} and {photo} would both be written to {o}; rename one of them")
        seen[o] = photo
    return [Job(p, d, o) for p, d, o in zip(photos, depths, outputs)]


def load_pair(job: Job, size: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    photo = images.read_image(job.photo, "RGB")
    depth = images.read_image(job.depth, "L")
    pa, da = photo.width / photo.height, depth.width / depth.height
    if abs(pa - da) > ASPECT_TOLERANCE * pa:
        raise InputError(f"{job.depth}: depth map is {depth.width}x{depth.height} but photo {job.photo} is "
                         f"{photo.width}x{photo.height}; they must show the same aligned face")
    return images.photo_to_tensor(photo, (size, size)), images.depth_to_tensor(depth, (size, size)), photo.size


def check_readable(jobs: list[Job]) -> None:
    """Fail before writing anything if any input cannot be opened."""
    for job in jobs:
        for path in (job.photo, job.depth):
            if not path.is_file():
                raise InputError(f"{path}: no such image file")
            try:
                with Image.open(path) as im:
                    im.verify()
            except Exception as e:  # PIL raises many types for a bad file
                raise InputError(f"{path}: cannot read as an image ({type(e).__name__})") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.size <= 0 or args.size % SIZE_MULTIPLE:
        raise InputError(f"--size {args.size} is not a multiple of {SIZE_MULTIPLE}")
    if args.batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    style = styles.parse_style(args.style)
    jobs = plan_jobs(args)
    check_readable(jobs)
    t0 = time.perf_counter()
    backend = create_backend(args.backend, args.weights, device=args.device, onnx=args.onnx, engine=args.engine,
                             progress=not args.quiet)
    bar = tqdm(total=len(jobs), unit="photo", disable=args.quiet or len(jobs) == 1, desc=f"sketch ({backend.name})")
    for start in range(0, len(jobs), args.batch_size):
        batch = jobs[start:start + args.batch_size]
        pairs = [load_pair(job, args.size) for job in batch]
        photo = torch.cat([p for p, _, _ in pairs])
        depth = torch.cat([d for _, d, _ in pairs])
        sketches = backend.run(photo, depth, style.expand(len(batch), 3).contiguous())
        for job, (_, _, size), sketch in zip(batch, pairs, sketches):
            images.save_image(images.sketch_to_image(sketch, size), job.output)
        bar.update(len(batch))
    bar.close()
    if not args.quiet:
        where = jobs[0].output if len(jobs) == 1 else jobs[0].output.parent
        print(f"wrote {len(jobs)} sketch{'es' if len(jobs) > 1 else ''} to {where} "
              f"(backend {backend.name}, style {styles.describe(style)}, {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.sketch"))
