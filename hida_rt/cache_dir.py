"""The one folder hida_rt keeps per-user caches in (self-check verdicts, exports).

`HIDA_RT_CACHE` names it outright; otherwise it is `hida_rt` under
`XDG_CACHE_HOME`, by default `~/.cache/hida_rt`. Nothing is created here:
callers make the subfolder they write into.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "HIDA_RT_CACHE"


def user_cache_dir() -> Path:
    """The user cache folder (it may not exist yet)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "hida_rt"


__all__ = ["ENV", "user_cache_dir"]
