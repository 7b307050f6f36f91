"""Plumbing shared by the command-line tools: one-line errors and atomic output files."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .errors import HidaError, InputError


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
            prog: str = "hida_rt") -> int:
    """Run a CLI entry point; a HidaError becomes one line on stderr and a non-zero exit."""
    try:
        return int(main(argv) or 0)
    except HidaError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A reader never sees a half-written file, and a failure leaves nothing behind.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        # A rename would replace a device, pipe or folder (even /dev/null) with a plain file.
        raise InputError(f"{path}: exists and is not a regular file; choose another output")
    if path.parent.exists() and not path.parent.is_dir():
        raise InputError(f"{path}: {path.parent} is not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as e:
        raise InputError(f"{path}: cannot write there ({e.strerror or e}); choose another output") from None
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp's 0600 would survive the rename
    try:
        yield tmp_path
        try:
            os.replace(tmp_path, path)
        except OSError as e:
            raise InputError(f"{path}: cannot write there ({e.strerror or e}); choose another output") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_writable(path: str | os.PathLike) -> None:
    """Fail early, before slow work, if atomic_path could not write `path` (probes; writes nothing)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: exists and is not a regular file; choose another output")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=f".{path.stem}.", suffix=".probe", dir=path.parent):
            pass
    except OSError as e:
        raise InputError(f"{path}: cannot write there ({e.strerror or e}); choose another output") from None
