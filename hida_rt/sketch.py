"""Sketch photos: python -m hida_rt.sketch PHOTO... --weights W --depth D... --style S

Each photo (with its depth map) is resized to the network size, run through
the chosen backend, and the sketch is resized back to the photo's size and
written as a grey PNG (atomically: temp name, then rename).
"""
from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from . import images, styles
from .cli import check_writable, run_cli
from .cli_options import add_backend_options, add_style, add_weights, backend_from_args
from .errors import InputError
from .model import SIZE_MULTIPLE

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
ASPECT_TOLERANCE = images.ASPECT_TOLERANCE  # photo vs depth map framing (see images.pair_to_tensors)


@dataclass
class Job:
    photo: Path
    depth: Path | None  # None: find the faces, align them and estimate their depth (hida_rt.face)
    output: Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hida_rt.sketch",
        description="Turn aligned face photos and their depth maps into HIDA pencil sketches.",
        epilog="Example: python -m hida_rt.sketch samples/astronaut_photo.png --depth samples/astronaut_depth.png "
               "--weights hida.ckpt --style 2 -o out/")
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="photo file(s), ideally aligned 256x256 faces")
    add_weights(p)
    p.add_argument("--depth", "-d", nargs="+", metavar="DEPTH",
                   help="depth map(s), grey, bright = near; one per photo, in the same order. Without --depth the "
                        "faces are found, aligned to the training template and their depth estimated "
                        "(needs the face extra, MediaPipe); the sketch is of the aligned 256x256 face")
    p.add_argument("--max-faces", type=int, default=1,
                   help="without --depth: faces sketched per photo, largest first; the 2nd, 3rd... are written "
                        "as STEM_sketch_face2.png, ... (default 1)")
    p.add_argument("--save-depth", action="store_true",
                   help="without --depth: also write each estimated depth map beside its sketch (..._depth.png)")
    add_style(p)
    add_backend_options(p)
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
        depths: list[Path | None] = [None] * len(photos)
    else:
        depths = [Path(d) for d in args.depth]
        if len(depths) != len(photos):
            raise InputError(f"{len(photos)} photo(s) but {len(depths)} depth map(s): give one --depth per photo")
    out = Path(args.output)
    if out.suffix and out.suffix.lower() not in IMAGE_SUFFIXES and not out.is_dir():
        raise InputError(f"-o {out}: unknown image extension {out.suffix!r}; name a .png/.jpg file or a directory")
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
    return images.pair_to_tensors(photo, depth, (size, size), str(job.photo), str(job.depth))


def find_faces(jobs: list[Job], max_faces: int) -> dict[Path, list]:
    """Aligned faces (hida_rt.face.AlignedFace) of the photos given without a depth map, by photo.

    Done for all photos before the model loads, so a photo without a face
    fails the run before any sketch is written.
    """
    todo = [job for job in jobs if job.depth is None]
    if not todo:
        return {}
    from .face import prepare_faces  # the face extra: MissingDependency says how to install it

    return {job.photo: prepare_faces(np.asarray(images.read_image(job.photo, "RGB")), max_faces, source=str(job.photo))
            for job in todo}


def network_inputs(jobs: list[Job], faces: dict[Path, list], args: argparse.Namespace):
    """(photo tensor, depth tensor, output size, output path) per network input, loaded lazily."""
    size = (args.size, args.size)
    for job in jobs:
        if job.depth is not None:
            photo, depth, photo_size = load_pair(job, args.size)
            yield photo, depth, photo_size, job.output
            continue
        for k, face in enumerate(faces[job.photo]):
            out = job.output if k == 0 else job.output.with_name(f"{job.output.stem}_face{k + 1}{job.output.suffix}")
            if args.save_depth:
                images.save_image(Image.fromarray(face.depth, mode="L"), out.with_name(f"{out.stem}_depth.png"))
            # The sketch is of the aligned face, at the template's 256x256.
            yield images.photo_to_tensor(face.photo, size), images.depth_to_tensor(face.depth, size), (256, 256), out


def check_readable(jobs: list[Job]) -> None:
    """Fail before writing anything if any input cannot be opened."""
    for job in jobs:
        for path in (job.photo, job.depth):
            if path is None:
                continue
            if path.is_dir():
                raise InputError(f"{path}: is a directory, expected an image file")
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
        raise InputError(f"--size {args.size} is not a positive multiple of {SIZE_MULTIPLE}")
    if args.batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    if args.max_faces < 1:
        raise InputError("--max-faces must be at least 1")
    if args.depth is not None and (args.save_depth or args.max_faces != 1):
        raise InputError("--save-depth and --max-faces apply only without --depth (when faces are found and "
                         "their depth estimated)")
    style = styles.parse_style(args.style)
    jobs = plan_jobs(args)
    check_readable(jobs)
    faces = find_faces(jobs, args.max_faces)
    for job in jobs:
        check_writable(job.output)  # before the slow part, not after it
    t0 = time.perf_counter()
    backend = backend_from_args(args)
    total = sum(len(faces[job.photo]) if job.depth is None else 1 for job in jobs)
    bar = tqdm(total=total, unit="sketch", disable=args.quiet or total == 1, desc=f"sketch ({backend.name})")
    inputs = network_inputs(jobs, faces, args)
    while batch := list(itertools.islice(inputs, args.batch_size)):
        photo = torch.cat([p for p, _, _, _ in batch])
        depth = torch.cat([d for _, d, _, _ in batch])
        sketches = backend.run(photo, depth, style.expand(len(batch), 3).contiguous())
        for (_, _, size, output), sketch in zip(batch, sketches):
            images.save_image(images.sketch_to_image(sketch, size), output)
        bar.update(len(batch))
    bar.close()
    if not args.quiet:
        where = jobs[0].output if total == 1 else jobs[0].output.parent
        print(f"wrote {total} sketch{'es' if total > 1 else ''} to {where} "
              f"(backend {backend.name}, style {styles.describe(style)}, {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.sketch"))
