"""Image I/O and the published test script's pre/post-processing (Pillow).

Photos are resized to the network size with bilinear filtering and mapped
to [-1, 1]; depth maps are read as grey and divided by 255; the sketch
((y + 1) / 2, grey) is resized back to the photo's size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .cli import atomic_path
from .errors import InputError, first_line

NET_SIZE = 256


def read_image(path: str | Path, mode: str) -> Image.Image:
    """Open an image file as PIL `mode` ("RGB" or "L"), with one-line errors."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an image file")
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    try:
        with Image.open(path) as im:
            im.load()
            # Phone photos are stored sideways with an EXIF rotation; the depth map is upright.
            im = ImageOps.exif_transpose(im)
            if mode == "L" and im.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit depth maps: scale the full 16-bit range to 8 bits (convert("L") would clip).
                grey = np.clip(np.asarray(im, dtype=np.float64) / 257.0, 0, 255).round().astype(np.uint8)
                return Image.fromarray(grey, mode="L")
            if mode == "L" and im.mode == "F":
                raise InputError(f"{path}: a floating-point image; save the depth map as 8- or 16-bit grey")
            return im.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: cannot read as an image ({first_line(e, 100)})") from None


def photo_to_tensor(photo: Image.Image | np.ndarray, size: tuple[int, int] = (NET_SIZE, NET_SIZE)) -> torch.Tensor:
    """RGB photo -> 1 x 3 x H x W float32 in [-1, 1] at `size` (height, width)."""
    im = photo if isinstance(photo, Image.Image) else Image.fromarray(np.ascontiguousarray(photo, dtype=np.uint8))
    im = im.convert("RGB")
    if im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32).copy()).permute(2, 0, 1)[None]
    # contiguous: compiled consumers (AOTInductor packages, ONNX) assume NCHW strides
    return ((x / 255.0 - 0.5) / 0.5).contiguous()


def depth_to_tensor(depth: Image.Image | np.ndarray, size: tuple[int, int] = (NET_SIZE, NET_SIZE)) -> torch.Tensor:
    """Grey depth map (bright = near) -> 1 x 1 x H x W float32 in [0, 1] at `size`."""
    im = depth if isinstance(depth, Image.Image) else Image.fromarray(np.ascontiguousarray(depth, dtype=np.uint8))
    im = im.convert("L")
    if im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    return torch.from_numpy(np.asarray(im, dtype=np.float32).copy())[None, None] / 255.0


def sketch_to_uint8(sketch: torch.Tensor) -> np.ndarray:
    """One sketch (1 x H x W or H x W, [-1, 1]) -> H x W uint8 grey."""
    y = sketch.detach().float().cpu().reshape(sketch.shape[-2], sketch.shape[-1])
    return ((y + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


def sketch_to_image(sketch: torch.Tensor, size: tuple[int, int] | None = None) -> Image.Image:
    """Sketch tensor -> grey PIL image, resized back to `size` (width, height) if given."""
    im = Image.fromarray(sketch_to_uint8(sketch), mode="L")
    if size is not None and im.size != tuple(size):
        im = im.resize(tuple(size), Image.BILINEAR)
    return im


def save_image(im: Image.Image, path: str | Path) -> None:
    """Write an image atomically (temp name, then rename): no half-written file on failure."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown image extension {path.suffix!r} (use .png or .jpg)")
    with atomic_path(path) as tmp:
        im.save(tmp, format=fmt)
