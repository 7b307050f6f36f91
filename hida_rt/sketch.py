"""Sketch photos: hida-rt sketch PHOTO... --weights W [--depth D...] --style S

Each photo (with its depth map) is resized to the network size, run through
the chosen backend, and the sketch is resized back to the photo's size and
written as a grey PNG (atomically: temp name, then rename). Without a depth
map the faces are found, aligned and given an estimated depth; their
sketches are written as aligned 256x256 crops, or with --composite pasted
back into the photo. --whole-frame sketches the whole photo instead.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from . import images, memory, styles
from .cli import check_writable, prog_name, run_cli
from .cli_options import add_backend_options, add_style, add_weights, backend_from_args
from .errors import InputError
from .images import IMAGE_SUFFIXES
from .model import SIZE_MULTIPLE

ASPECT_TOLERANCE = images.ASPECT_TOLERANCE  # photo vs depth map framing (see images.pair_to_tensors)


@dataclass
class Job:
    photo: Path
    depth: Path | None  # None: find the faces, align them and estimate their depth (hida_rt.face)
    output: Path


@dataclass
class NetItem:
    """One network input and what becomes of its sketch."""

    photo: torch.Tensor
    depth: torch.Tensor
    size: tuple[int, int]  # (width, height) the sketch is resized back to
    output: Path | None  # written here; None: part of a composite
    composite: Composite | None = None
    index: int = 0  # the face's place in its composite


class Composite:
    """A photo whose faces' sketches are pasted back into it once all of them are done."""

    def __init__(self, photo: np.ndarray, faces: list, output: Path):
        self.photo, self.faces, self.output = photo, faces, output
        self.sketches: dict[int, np.ndarray] = {}

    def add(self, index: int, sketch: np.ndarray) -> bool:
        """Keep a face's sketch; write the composite once it has them all (True then)."""
        from .face import paste_all

        self.sketches[index] = sketch
        if len(self.sketches) < len(self.faces):
            return False
        pasted = paste_all(self.photo, [self.sketches[i] for i in range(len(self.faces))], self.faces)
        images.save_image(Image.fromarray(pasted), self.output)
        return True


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog_name("sketch"),
        description="Turn photos into HIDA pencil sketches: aligned face photos with their depth maps, or "
                    "any photo, whose faces are found (or which is sketched whole).",
        epilog="Examples:\n"
               "  hida-rt sketch samples/astronaut_photo.png --depth samples/astronaut_depth.png "
               "--weights hida.ckpt --style 2 -o out/\n"
               "  hida-rt sketch team.jpg --max-faces 10 --composite --weights hida.ckpt   "
               "(the photo back, every face drawn)\n"
               "  hida-rt sketch street.jpg --whole-frame --weights hida.ckpt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", nargs="+", metavar="PHOTO",
                   help="photo file(s): aligned 256x256 faces with --depth; otherwise any photo")
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
    p.add_argument("--composite", action="store_true",
                   help="without --depth: write the photo itself with each sketched face pasted back where it was "
                        "(feathered edges, as hida_rt.video does), as PHOTO-STEM_sketch.png, instead of the "
                        "aligned 256x256 face sketches")
    p.add_argument("--whole-frame", action="store_true",
                   help="sketch the whole photo, not its faces (no face extra needed): resized to multiples of 256 "
                        "keeping its aspect ratio, flat depth 0 (no face geometry), resized back; as "
                        "hida_rt.video --whole-frame")
    p.add_argument("--net-height", type=int, default=None,
                   help=f"with --whole-frame: network height, a multiple of {SIZE_MULTIPLE} (default: the photo's "
                        "height rounded to one); the width follows the aspect ratio")
    add_style(p)
    add_backend_options(p)
    p.add_argument("--size", type=int, default=256,
                   help=f"network resolution of photo + depth pairs and face crops, a multiple of {SIZE_MULTIPLE} "
                        "(default 256, the published one)")
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
    return images.pair_to_tensors(photo, depth, (size, size), f"photo {job.photo}", str(job.depth))


def find_faces(jobs: list[Job], max_faces: int, keep_photos: bool = False) -> dict[Path, tuple[np.ndarray | None, list]]:
    """(the photo, if keep_photos, and its aligned faces: hida_rt.face.AlignedFace) of the photos
    given without a depth map, by photo.

    Done for all photos before the model loads, so a photo without a face
    fails the run before any sketch is written.
    """
    todo = [job for job in jobs if job.depth is None]
    if not todo:
        return {}
    from .face import prepare_faces  # the face extra: MissingDependency says how to install it

    found = {}
    for job in todo:
        rgb = np.asarray(images.read_image(job.photo, "RGB"))
        found[job.photo] = (rgb if keep_photos else None, prepare_faces(rgb, max_faces, source=str(job.photo)))
    return found


def network_inputs(jobs: list[Job], faces: dict[Path, tuple], args: argparse.Namespace):
    """A NetItem per network input, loaded lazily."""
    size = (args.size, args.size)
    for job in jobs:
        if args.whole_frame:
            photo = images.read_image(job.photo, "RGB")
            net = images.whole_frame_size(photo.height, photo.width, args.net_height)
            # As the video's whole-frame mode: flat depth 0, "no face geometry here".
            yield NetItem(images.photo_to_tensor(photo, net), images.depth_to_tensor(np.zeros(net, np.uint8), net),
                          photo.size, job.output)
            continue
        if job.depth is not None:
            photo, depth, photo_size = load_pair(job, args.size)
            yield NetItem(photo, depth, photo_size, job.output)
            continue
        rgb, found = faces[job.photo]
        composite = Composite(rgb, found, job.output) if args.composite else None
        for k, face in enumerate(found):
            out = job.output if k == 0 else job.output.with_name(f"{job.output.stem}_face{k + 1}{job.output.suffix}")
            if args.save_depth:
                images.save_image(Image.fromarray(face.depth, mode="L"), out.with_name(f"{out.stem}_depth.png"))
            # The sketch is of the aligned face, at the template's 256x256 (pasted back from there).
            yield NetItem(images.photo_to_tensor(face.photo, size), images.depth_to_tensor(face.depth, size),
                          (256, 256), None if composite else out, composite, k)


def batches(items, batch_size: int):
    """Lists of up to batch_size consecutive items whose tensors have one shape (whole photos differ)."""
    batch: list[NetItem] = []
    for item in items:
        if batch and (len(batch) == batch_size or item.photo.shape != batch[0].photo.shape):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def check_readable(jobs: list[Job]) -> None:
    """Fail before writing anything if any input cannot be opened."""
    for job in jobs:
        for path in (job.photo, job.depth):
            if path is None:
                continue
            # Decoded in full (and dropped): a truncated file fails here, with the reason every tool gives.
            images.read_image(path, "RGB" if path == job.photo else "L")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.size <= 0 or args.size % SIZE_MULTIPLE:
        raise InputError(f"--size {args.size} is not a positive multiple of {SIZE_MULTIPLE}")
    if args.batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    if args.max_faces < 1:
        raise InputError("--max-faces must be at least 1")
    check_modes(args)
    style = styles.parse_style(args.style)
    jobs = plan_jobs(args)
    check_readable(jobs)
    # Before the face search: at most max_faces network inputs per photo.
    check_memory(jobs, args, min(args.batch_size, len(jobs) * args.max_faces))
    faces = {} if args.whole_frame else find_faces(jobs, args.max_faces, keep_photos=args.composite)
    for job in jobs:
        check_writable(job.output)  # before the slow part, not after it
    t0 = time.perf_counter()
    backend = backend_from_args(args)
    total = sum(len(faces[job.photo][1]) if job.photo in faces else 1 for job in jobs)
    bar = tqdm(total=total, unit="sketch", disable=args.quiet or total == 1, desc=f"sketch ({backend.name})")
    written = 0
    for batch in batches(network_inputs(jobs, faces, args), args.batch_size):
        photo = torch.cat([item.photo for item in batch])
        depth = torch.cat([item.depth for item in batch])
        sketches = backend.run(photo, depth, style.expand(len(batch), 3).contiguous())
        for item, sketch in zip(batch, sketches):
            if item.composite is not None:
                written += item.composite.add(item.index, images.sketch_to_uint8(sketch))
            else:
                images.save_image(images.sketch_to_image(sketch, item.size), item.output)
                written += 1
        bar.update(len(batch))
    bar.close()
    if not args.quiet:
        where = jobs[0].output if written == 1 else jobs[0].output.parent
        if args.composite:
            what = f"{written} photo{'s' if written > 1 else ''} with {total} face{'s' if total > 1 else ''} sketched"
        else:
            what = f"{written} sketch{'es' if written > 1 else ''}"
        print(f"wrote {what} to {where} "
              f"(backend {backend.name}, style {styles.describe(style)}, {time.perf_counter() - t0:.1f} s)")
    return 0


def check_memory(jobs: list[Job], args: argparse.Namespace, batch: int) -> None:
    """Refuse, before the model loads, a network size whose activations would not fit here (hida_rt.memory)."""
    available = memory.available_bytes()  # once: on a GPU machine it asks nvidia-smi
    if not args.whole_frame:
        memory.check_fits(args.size, args.size, batch, multiple=SIZE_MULTIPLE, available=available)
        return
    for job in jobs:  # each whole photo runs at its own size; Image.open reads only the header
        with Image.open(job.photo) as im:
            net = images.whole_frame_size(im.height, im.width, args.net_height)
        memory.check_fits(*net, batch, option=f"{job.photo} at --whole-frame", multiple=SIZE_MULTIPLE,
                          available=available)


def check_modes(args: argparse.Namespace) -> None:
    """Options that belong to one way of running only (a photo + depth pair, found faces, the whole photo)."""
    if args.depth is not None and (args.save_depth or args.max_faces != 1 or args.composite):
        raise InputError("--save-depth, --max-faces and --composite apply only without --depth (when faces are "
                         "found and their depth estimated)")
    if args.whole_frame:
        if args.depth is not None:
            raise InputError("--whole-frame sketches the photo with a flat depth; it takes no --depth")
        if args.save_depth or args.max_faces != 1 or args.composite:
            raise InputError("--save-depth, --max-faces and --composite are for faces; --whole-frame sketches the "
                             "whole photo")
        if args.size != 256:
            raise InputError("--size is for photo + depth pairs and faces; with --whole-frame set --net-height")
    if args.net_height is not None:
        if not args.whole_frame:
            raise InputError("--net-height applies to --whole-frame only")
        if args.net_height <= 0 or args.net_height % SIZE_MULTIPLE:
            raise InputError(f"--net-height {args.net_height} is not a positive multiple of {SIZE_MULTIPLE}")


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="hida_rt.sketch"))
