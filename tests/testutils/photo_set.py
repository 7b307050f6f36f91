"""A folder of face photos with paired depth maps, made from the two samples (batch tests, bench_batch).

Each variant is a square crop of an aligned sample (offset and scale vary),
optionally mirrored, resized to `size`; the depth map gets the same crop,
so every pair stays aligned. Photos alternate .jpg and .png, and every
third goes into a subfolder, so listing, pairing by stem and output
subfolders are exercised:

    photos/astronaut_00.jpg   depth/astronaut_00.png
    photos/sub/astronaut_02.png   depth/sub/astronaut_02.png   ...
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
NAMES = ("astronaut", "grace_hopper")


@dataclass(frozen=True)
class PhotoSet:
    photos: Path
    depth: Path
    pairs: list[tuple[Path, Path]]   # (photo, depth), in sorted relative-path order of the photos

    def rel(self, photo: Path) -> Path:
        return photo.relative_to(self.photos)


def _variant(im: Image.Image, k: int, size: int) -> Image.Image:
    w = im.width
    side = w - (k % 4) * w // 16                # 100 %, 94 %, 88 %, 81 % of the sample
    x = (k * 7) % (w - side + 1)
    y = (k * 11) % (w - side + 1)
    out = im.crop((x, y, x + side, y + side)).resize((size, size), Image.BILINEAR)
    return ImageOps.mirror(out) if (k // 4) % 2 else out


def make_photo_set(root: Path, count: int, size: int = 256) -> PhotoSet:
    """`count` photo/depth pairs under root/photos and root/depth."""
    photos, depth = root / "photos", root / "depth"
    pairs = []
    for i in range(count):
        name, k = NAMES[i % 2], i // 2
        sub = Path("sub") if k % 3 == 2 else Path()
        stem = f"{name}_{k:02d}"
        p = photos / sub / f"{stem}.{'jpg' if k % 2 == 0 else 'png'}"
        d = depth / sub / f"{stem}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        d.parent.mkdir(parents=True, exist_ok=True)
        _variant(Image.open(SAMPLES / f"{name}_photo.png").convert("RGB"), k, size).save(p, quality=95)
        _variant(Image.open(SAMPLES / f"{name}_depth.png").convert("L"), k, size).save(d)
        pairs.append((p, d))
    pairs.sort(key=lambda pd: pd[0].relative_to(photos).as_posix())
    return PhotoSet(photos, depth, pairs)
