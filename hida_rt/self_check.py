"""First-use self-checks of the GPU backends: a short parity probe on the device, its verdict cached.

A backend that runs code nobody has seen run on this GPU, driver and
library versions (the triton backend's kernels; a TensorRT engine) checks
itself the first time it is used on a given combination of them, and the
verdict (passed or not, with every figure) is kept as JSON under the user
cache folder (hida_rt.cache_dir, `self_check/`), so later runs read it
instead of probing again. `recheck=True` (the tools' --recheck) probes anew.

The probes themselves live with the backends (kernels/self_check.py for
triton, export/tensorrt_backend.py for engines); this module only keys,
stores and reads verdicts, so hida_rt.doctor can list them without loading
either.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .cache_dir import user_cache_dir
from .cli import atomic_path

FORMAT = 1
FOLDER = "self_check"
# Verdicts probed (or re-probed) in this process: a --recheck probes once per process, not at every resolve.
_probed: set[Path] = set()


@dataclass
class Verdict:
    backend: str
    passed: bool
    key: dict                                        # what the verdict holds for: GPU, driver, versions
    checks: list[dict] = field(default_factory=list)  # each: name, passed, figures, limits
    created: str = ""
    seconds: float = 0.0
    note: str = ""                                    # e.g. why a stage was not run
    format: int = FORMAT

    def failures(self) -> list[dict]:
        return [c for c in self.checks if not c.get("passed")]

    def summary(self) -> str:
        """One line: what passed, or each failing check with its figures."""
        where = self.key.get("gpu") or "this device"
        if self.passed:
            return f"passed on {where} ({len(self.checks)} checks, {self.created})"
        bad = "; ".join(describe(c) for c in self.failures()) or self.note or "no check ran"
        return f"failed on {where} ({self.created}): {bad}"


def describe(check: dict) -> str:
    """One check as text: its name and the figures against their limits."""
    figures = ", ".join(f"{k} {_fmt(v)}" for k, v in check.get("figures", {}).items())
    limits = check.get("limits")
    return f"{check['name']}: {figures}" + (f" (limit {limits})" if limits else "") + \
        ("" if check.get("passed") else " FAILED")


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def key_digest(backend: str, key: dict) -> str:
    return hashlib.sha256(json.dumps({"backend": backend, **key}, sort_keys=True).encode()).hexdigest()[:16]


def verdict_path(backend: str, key: dict) -> Path:
    return user_cache_dir() / FOLDER / f"{backend}-{key_digest(backend, key)}.json"


def _from_json(data: object) -> Verdict | None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    try:
        return Verdict(**data)
    except TypeError:
        return None


def load(path: Path) -> Verdict | None:
    """The verdict stored at `path`, or None if it is missing, unreadable or of another format."""
    try:
        return _from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def store(verdict: Verdict) -> Path | None:
    """Write the verdict (atomically); None when the cache folder cannot be written (the verdict still holds)."""
    path = verdict_path(verdict.backend, verdict.key)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(asdict(verdict), indent=1) + "\n")
    except Exception:  # a read-only cache costs a probe per process, nothing else
        return None
    return path


def cached_verdicts() -> list[Verdict]:
    """Every verdict in the cache folder, newest first."""
    folder = user_cache_dir() / FOLDER
    found = [v for v in (load(p) for p in sorted(folder.glob("*.json"))) if v is not None] if folder.is_dir() else []
    return sorted(found, key=lambda v: v.created, reverse=True)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def checked(backend: str, key: dict, probe: Callable[[], tuple[list[dict], str]], recheck: bool = False,
            say: Callable[[str], None] | None = None, cached_only: bool = False) -> Verdict | None:
    """The verdict for `backend` on `key`: the cached one, or a new probe (always with `recheck`).

    probe() returns (checks, note); the verdict passes when there is at least one check and all pass.
    `cached_only`: never probe; None when no verdict is cached.
    """
    say = say or (lambda line: print(f"hida_rt: {line}", file=sys.stderr, flush=True))
    path = verdict_path(backend, key)
    if cached_only or not recheck or path in _probed:
        cached = load(path)
        if cached is not None and cached.key == key:
            return cached
        if cached_only:
            return None
    say(f"checking the {backend} backend on {key.get('gpu') or 'this device'} (first use with these versions; "
        f"a few seconds)")
    t0 = time.perf_counter()
    checks, note = probe()
    verdict = Verdict(backend=backend, passed=bool(checks) and all(c.get("passed") for c in checks), key=key,
                      checks=checks, created=now(), seconds=round(time.perf_counter() - t0, 2), note=note)
    store(verdict)
    _probed.add(path)
    return verdict


__all__ = ["Verdict", "cached_verdicts", "checked", "describe", "load", "store", "verdict_path"]
