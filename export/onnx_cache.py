"""ONNX exports cached beside the weights, rebuilt when the weights change.

    path = cached_onnx("weights/hida.ckpt", 256, 256)   # weights/hida.ckpt.256x256.onnx

Beside the ONNX file lies a stamp, `<onnx>.json`: the weights' size,
mtime and SHA-256, the export settings and the export format version. The
cache is used when the stamp matches; a changed size or mtime triggers a
re-hash, so a `touch` (or a copy that keeps the bytes) costs one hash and no
export, while changed bytes cost a new export. ONNX file and stamp are each
written atomically, the ONNX first: a crash between the two leaves a stamp
that no longer matches, never a stamp vouching for a half-written file.

If the weights' folder is not writable the cache goes to
$XDG_CACHE_HOME/hida_rt (default ~/.cache/hida_rt), named by the weights'
hash.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from hida_rt.checkpoint import check_weights_file, file_sha256
from hida_rt.cli import atomic_path, writable_dir

from .onnx_export import DEFAULT_OPSET, EXPORT_FORMAT_VERSION, _export_file, check_settings

STAMP_SUFFIX = ".json"


def cache_path(weights: Path, height: int, width: int, cache_dir: Path | None = None) -> Path:
    """Where the export of `weights` at height x width is kept (beside it, or in `cache_dir`)."""
    if cache_dir is None and writable_dir(weights.parent):
        return weights.parent / f"{weights.name}.{height}x{width}.onnx"
    folder = cache_dir or _user_cache_dir()
    return folder / f"{weights.stem}-{file_sha256(weights)[:16]}.{height}x{width}.onnx"


def _user_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hida_rt"


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
    """Whether `onnx_path` holds the export of the current `weights` with these settings.

    Re-stamps the cache when only the weights' mtime changed (same bytes).
    """
    stamp_path = onnx_path.with_name(onnx_path.name + STAMP_SUFFIX)
    stamp = _read_stamp(stamp_path)
    if stamp is None or not onnx_path.is_file() or stamp.get("settings") != _settings(height, width, opset):
        return False
    st = weights.stat()
    if (stamp.get("size"), stamp.get("mtime_ns")) == (st.st_size, st.st_mtime_ns):
        return True
    if stamp.get("size") != st.st_size or stamp.get("sha256") != file_sha256(weights):
        return False
    stamp["mtime_ns"] = st.st_mtime_ns
    try:
        _write_stamp(stamp_path, stamp)
    except OSError:
        pass  # a read-only cache is still valid; the next run re-hashes
    return True


def cached_onnx(weights: str | Path, height: int = 256, width: int = 256, opset: int = DEFAULT_OPSET,
                cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """The ONNX export of `weights` at height x width, exported now if missing or stale."""
    check_settings(height, width, opset)
    weights = check_weights_file(weights)
    path = cache_path(weights, height, width, Path(cache_dir) if cache_dir else None)
    if is_fresh(path, weights, height, width, opset):
        return path
    if progress:
        print(f"hida_rt: exporting {weights} to ONNX for {height}x{width} (once; cached as {path})",
              file=sys.stderr, flush=True)
    st = weights.stat()
    summary = _export_file(weights, path, height, width, opset, progress=progress)
    _write_stamp(path.with_name(path.name + STAMP_SUFFIX),
                 {"weights": str(weights.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                  "sha256": summary.weights_sha256, "settings": _settings(height, width, opset)})
    if progress:
        print(f"hida_rt: {summary.line()}", file=sys.stderr, flush=True)
    return path
