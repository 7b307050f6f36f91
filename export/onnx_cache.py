"""ONNX exports cached in the user cache folder, one per weights content and size.

    path = cached_onnx("weights/hida.ckpt", 256, 256)   # ~/.cache/hida_rt/onnx/hida-<sha256[:16]>.256x256.onnx

The folder is hida_rt.cache_dir.user_cache_dir() / "onnx" (`HIDA_RT_CACHE`
overrides the user cache folder), never beside the weights: a checkout or a
weights folder stays clean. An entry is named by the weights' SHA-256 and the
network size, so a copy or a `touch` of the weights reuses it and changed
bytes make a new one. Beside it lies a stamp, `<onnx>.json` (the weights'
hash, the export settings and the export format version); the entry is used
when the stamp matches. ONNX file and stamp are each written atomically, the
ONNX first: a crash between the two leaves no stamp vouching for a
half-written file. Old entries stay until the folder is cleared (each is
about as large as the weights).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from hida_rt.cache_dir import ENV as CACHE_ENV
from hida_rt.cache_dir import user_cache_dir
from hida_rt.checkpoint import check_weights_file, file_sha256, load_state_dict
from hida_rt.cli import atomic_path
from hida_rt.errors import InputError

from .onnx_export import DEFAULT_OPSET, EXPORT_FORMAT_VERSION, _export_file, check_settings

STAMP_SUFFIX = ".json"


def cache_folder() -> Path:
    """The folder ONNX exports are cached in (it may not exist yet)."""
    return user_cache_dir() / "onnx"


def cache_path(weights: Path, height: int, width: int, cache_dir: Path | None = None) -> Path:
    """Where the export of `weights` at height x width is kept (in cache_folder(), or in `cache_dir`)."""
    folder = cache_dir or cache_folder()
    return folder / f"{weights.stem}-{file_sha256(weights)[:16]}.{height}x{width}.onnx"


def _settings(height: int, width: int, opset: int) -> dict:
    return {"height": height, "width": width, "opset": opset, "export_format": EXPORT_FORMAT_VERSION}


def _read_stamp(stamp: Path) -> dict | None:
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_stamp(stamp: Path, data: dict) -> None:
    with atomic_path(stamp) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def is_fresh(onnx_path: Path, weights: Path, height: int, width: int, opset: int = DEFAULT_OPSET) -> bool:
    """Whether `onnx_path` holds the export of the current `weights` with these settings."""
    stamp = _read_stamp(onnx_path.with_name(onnx_path.name + STAMP_SUFFIX))
    return (stamp is not None and onnx_path.is_file() and stamp.get("settings") == _settings(height, width, opset)
            and stamp.get("sha256") == file_sha256(weights))


def cached_onnx(weights: str | Path, height: int = 256, width: int = 256, opset: int = DEFAULT_OPSET,
                cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """The ONNX export of `weights` at height x width, exported now if missing or stale."""
    check_settings(height, width, opset)
    weights = check_weights_file(weights)
    path = cache_path(weights, height, width, Path(cache_dir) if cache_dir else None)
    if is_fresh(path, weights, height, width, opset):
        return path
    load_state_dict(weights)  # a file that is no HIDA checkpoint fails in one line before any work is announced
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{path.parent}: cannot create the ONNX cache folder ({e.strerror or e}); set "
                         f"{CACHE_ENV} to a writable folder") from None
    if progress:
        print(f"hida_rt: exporting {weights} to ONNX for {height}x{width} (once; cached as {path})",
              file=sys.stderr, flush=True)
    summary = _export_file(weights, path, height, width, opset, progress=progress)
    _write_stamp(path.with_name(path.name + STAMP_SUFFIX),
                 {"weights": str(weights.resolve()), "sha256": summary.weights_sha256,
                  "settings": _settings(height, width, opset)})
    if progress:
        print(f"hida_rt: {summary.line()}", file=sys.stderr, flush=True)
    return path
