"""A copy of this checkout as a lent GPU machine gets it: tracked and untracked-but-not-ignored files, no .git."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_SKIP = {".git", "__pycache__", "build", "dist", ".pytest_cache", ".benchmarks", "gpu-out"}


def checkout_files() -> list[str]:
    """Paths (relative) that travel: what git tracks plus untracked files it does not ignore."""
    if (REPO / ".git").exists() and shutil.which("git"):
        proc = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                              check=True)
        return [p for p in proc.stdout.decode().split("\0") if p and (REPO / p).is_file()]
    return [str(p.relative_to(REPO)) for p in REPO.rglob("*")
            if p.is_file() and not _SKIP & set(p.relative_to(REPO).parts) and ".egg-info" not in str(p)]


def copy_checkout(dst: Path) -> Path:
    for rel in checkout_files():
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    return dst


def recorded_commit() -> str | None:
    """What tools/record-commit.sh would write (None without git)."""
    if not ((REPO / ".git").exists() and shutil.which("git")):
        return None
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    return sha + ("-dirty" if dirty else "") if sha else None
