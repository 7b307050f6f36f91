"""Image I/O and the published test script's pre/post-processing (Pillow).

Photos are resized to the network size with bilinear filtering and mapped
to [-1, 1]; depth maps are read as grey and divided by 255; the sketch
((y + 1) / 2, grey) is resized back to the photo's size. Images of more than
8 bits (16-bit grey, floating point in [0, 1]) are scaled to 8 bits first,
photos and depth maps alike. Every tool reads images here, so a file that
cannot be read gets one wording everywhere: `NAME: cannot read as an image (REASON)`.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .cli import atomic_path
from .errors import ImageTooLarge, InputError, UnsupportedImage, first_line

# File suffixes the tools read as images (folders, globs) and write sketches as.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}

NET_SIZE = 256
# The authors' test script blurs the depth map before the network: 5×5 Gaussian, sigma 0.2.
DEPTH_BLUR_KSIZE = 5
DEPTH_BLUR_SIGMA = 0.2
# Photo and depth map must show the same framing; a larger aspect mismatch means wrong pairing.
ASPECT_TOLERANCE = 0.02
# Pillow modes of grey images with more than 8 bits per pixel, and their full-scale value.
HIGH_BIT_DEPTH = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I": 65535, "F": 1.0}


def read_image(path: str | Path, mode: str) -> Image.Image:
    """Open an image file as PIL `mode` ("RGB" or "L"), with one-line errors."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an image file")
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    return decode_image(path, mode, str(path))


def decode_image(source: str | Path | bytes | BinaryIO, mode: str, name: str, *, max_pixels: int | None = None,
                 formats: tuple[str, ...] | None = None) -> Image.Image:
    """An image file's path, bytes or open file -> PIL `mode` ("RGB" or "L"); errors name it `name`.

    max_pixels: an image whose header declares more pixels is ImageTooLarge,
    refused before any pixel is decoded (Image.open reads only the header),
    so a decompression bomb is never expanded. formats: the Pillow formats
    accepted (e.g. ("PNG", "JPEG")); an image in another is UnsupportedImage.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise InputError(f"{name}: the file is empty")
        source = io.BytesIO(source)
    try:
        with Image.open(source, formats=formats) as im:
            if max_pixels is not None and im.width * im.height > max_pixels:
                raise ImageTooLarge(f"{name}: {im.width}x{im.height} is over the limit of {max_pixels:,} pixels")
            im.load()
            # Phone photos are stored sideways with an EXIF rotation; the depth map is upright.
            im = ImageOps.exif_transpose(im)
            if im.mode in HIGH_BIT_DEPTH:
                im = _to_8bit(im, name)
            return im.convert(mode)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name}: too many pixels to decode safely (Pillow's decompression-bomb limit)") from None
    except UnidentifiedImageError:
        raise _unidentified(source, name, formats) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{name}: cannot read as an image ({first_line(e, 100)})") from None


def _to_8bit(im: Image.Image, name: str) -> Image.Image:
    """A grey image of more than 8 bits -> 8-bit grey, its full range kept (convert("L") would clip it
    to the first 255 levels: nearly all white)."""
    x = np.asarray(im, dtype=np.float64)
    if im.mode == "F" and not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise InputError(f"{name}: a floating-point image with values outside [0, 1]; save it as 8- or 16-bit")
    grey = np.clip(x * (255.0 / HIGH_BIT_DEPTH[im.mode]), 0, 255).round().astype(np.uint8)
    return Image.fromarray(grey, mode="L")


def _unidentified(source, name: str, formats: tuple[str, ...] | None) -> InputError:
    """The error for a file Pillow could not open: in a format not accepted, damaged, or no image at all."""
    if formats is not None:
        try:  # the header alone, as Image.open reads it (no pixels are decoded)
            if hasattr(source, "seek"):
                source.seek(0)
            with Image.open(source) as other:
                found = other.format
        except Exception:  # noqa: BLE001 (any failure here means: not a readable image of another format)
            found = None
        if found is not None and found not in formats:
            return UnsupportedImage(f"{name}: {found} images are not accepted; use {', '.join(formats)}")
    fmt = _format_of(source)
    if fmt is None:
        return InputError(f"{name}: cannot read as an image (not an image format Pillow reads)")
    # The file starts like a `fmt` image but is damaged: ask that format's reader why.
    try:
        if hasattr(source, "seek"):
            source.seek(0)
            Image.OPEN[fmt][0](source, name)
        else:
            with open(source, "rb") as f:
                Image.OPEN[fmt][0](f, name)
        reason = f"a damaged {fmt} file"
    except Exception as e:  # noqa: BLE001 (the reader's own reason, whatever it raised)
        reason = first_line(e, 100).split(" (")[0]  # Pillow appends raw chunk bytes in parentheses
    return InputError(f"{name}: cannot read as an image ({reason})")


def _format_of(source) -> str | None:
    """The image format whose signature starts `source` (its first bytes only), or None."""
    try:
        if hasattr(source, "seek"):
            source.seek(0)
            head = source.read(64)
        else:
            with open(source, "rb") as f:
                head = f.read(64)
    except OSError:
        return None
    Image.init()
    return next((fmt for fmt, (_, accept) in Image.OPEN.items() if accept is not None and accept(head)), None)


def pair_to_tensors(photo: Image.Image, depth: Image.Image, size: tuple[int, int], photo_name: str = "the photo",
                    depth_name: str = "the depth map") -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """A photo and its depth map -> (photo tensor, depth tensor, the photo's (width, height)).

    InputError if their aspect ratios differ by more than ASPECT_TOLERANCE (a wrong pairing).
    """
    pa, da = photo.width / photo.height, depth.width / depth.height
    if abs(pa - da) > ASPECT_TOLERANCE * pa:
        raise InputError(f"{depth_name}: depth map is {depth.width}x{depth.height} but {photo_name} is "
                         f"{photo.width}x{photo.height}; they must show the same aligned face")
    return photo_to_tensor(photo, size), depth_to_tensor(depth, size), photo.size


def whole_frame_size(height: int, width: int, net_height: int | None = None) -> tuple[int, int]:
    """(H, W) multiples of 256 to run a whole frame (not a face crop) at: the height rounded to
    the nearest multiple (or net_height), the width following the frame's aspect ratio."""
    from .model import SIZE_MULTIPLE

    h = net_height or max(SIZE_MULTIPLE, round(height / SIZE_MULTIPLE) * SIZE_MULTIPLE)
    w = max(SIZE_MULTIPLE, round(width * h / height / SIZE_MULTIPLE) * SIZE_MULTIPLE)
    return h, w


def photo_to_tensor(photo: Image.Image | np.ndarray, size: tuple[int, int] = (NET_SIZE, NET_SIZE)) -> torch.Tensor:
    """RGB photo -> 1 x 3 x H x W float32 in [-1, 1] at `size` (height, width)."""
    if isinstance(photo, np.ndarray) and photo.dtype == np.uint8 and photo.shape == (size[0], size[1], 3):
        im = photo  # already RGB at the network size (a face crop): no trip through Pillow
    else:
        im = photo if isinstance(photo, Image.Image) else Image.fromarray(np.ascontiguousarray(photo, dtype=np.uint8))
        im = im.convert("RGB")
        if im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.BILINEAR)
    # NumPy, not torch: the same float32 steps, without torch's thread pool for a small image
    # (it competes with the video pipeline's other stages). Contiguous NCHW: compiled consumers
    # (AOTInductor packages, ONNX) assume those strides.
    x = (np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0) - np.float32(0.5)) / np.float32(0.5)
    return torch.from_numpy(np.ascontiguousarray(x))[None]


def gaussian_blur(x: np.ndarray, ksize: int = DEPTH_BLUR_KSIZE, sigma: float = DEPTH_BLUR_SIGMA) -> np.ndarray:
    """2-D float32 image blurred by a ksize×ksize Gaussian (separable), edges mirrored without
    repeating the edge pixel (OpenCV's default BORDER_REFLECT_101, torchvision's "reflect")."""
    r = ksize // 2
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    h, w = x.shape
    rows = np.pad(x, ((0, 0), (r, r)), mode="reflect")
    x = sum(t * rows[:, i:i + w] for i, t in enumerate(taps))
    cols = np.pad(x, ((r, r), (0, 0)), mode="reflect")
    return sum(t * cols[i:i + h] for i, t in enumerate(taps)).astype(np.float32, copy=False)


def depth_to_tensor(depth: Image.Image | np.ndarray, size: tuple[int, int] = (NET_SIZE, NET_SIZE)) -> torch.Tensor:
    """Grey depth map (bright = near) -> 1 x 1 x H x W float32 in [0, 1] at `size`.

    Like the authors' test script, the map is then blurred (5×5 Gaussian, sigma 0.2), here at the
    network size, in [0, 1]. Every path into the network (sketch CLI, video, service) comes here.
    """
    if isinstance(depth, np.ndarray) and depth.dtype == np.uint8 and depth.shape == tuple(size):
        im = depth  # already grey at the network size (an estimated map)
    else:
        im = depth if isinstance(depth, Image.Image) else Image.fromarray(np.ascontiguousarray(depth, dtype=np.uint8))
        im = im.convert("L")
        if im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.BILINEAR)
    x = np.asarray(im, dtype=np.float32) / np.float32(255.0)
    return torch.from_numpy(np.ascontiguousarray(gaussian_blur(x)))[None, None]


def sketches_to_uint8(out: torch.Tensor) -> np.ndarray:
    """Backend output N x 1 x H x W in [-1, 1] -> N x H x W uint8 grey (clamped, rounded half to even)."""
    if out.device.type == "cpu":
        # NumPy on the CPU: torch's thread pool would compete with the video's other stages for a small array.
        y = out[:, 0].detach().float().numpy()
        return np.rint(np.clip((y + 1) * np.float32(127.5), 0, 255)).astype(np.uint8)
    # On a GPU the arithmetic stays there and only uint8 crosses to the host.
    return ((out[:, 0].detach().float() + 1) * 127.5).clamp(0, 255).round().to(torch.uint8).cpu().numpy()


def sketch_to_uint8(sketch: torch.Tensor) -> np.ndarray:
    """One sketch (1 x H x W or H x W, [-1, 1]) -> H x W uint8 grey."""
    return sketches_to_uint8(sketch.reshape(1, 1, sketch.shape[-2], sketch.shape[-1]))[0]


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
