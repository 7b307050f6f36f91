"""Plumbing shared by the command-line tools: one-line errors and atomic output files."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .errors import HidaError, InputError
from .memory import allocation_failure


# How the tools are being run: "hida-rt" or "python -m hida_rt" when hida_rt.commands dispatched them, so
# each tool's usage line names the command the user actually typed.
_command: str | None = None


def prog_name(tool: str) -> str:
    """A tool's program name for its usage and help: `hida-rt TOOL` under the hida-rt command, else
    `python -m hida_rt.TOOL` (tool is the module path below hida_rt, e.g. "sketch", "random_weights", "kernels.sass")."""
    if _command is not None:
        return f"{_command} {tool.rpartition('.')[2].replace('_', '-')}"
    return f"python -m hida_rt.{tool}"


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
            prog: str = "hida_rt") -> int:
    """Run a CLI entry point; a HidaError or a failed memory allocation becomes one line on stderr and a
    non-zero exit."""
    try:
        return int(main(argv) or 0)
    except HidaError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as e:  # torch.OutOfMemoryError is a RuntimeError
        message = allocation_failure(e)
        if message is None:
            raise  # a bug: its traceback is what a report needs
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2


def _check_target(path: Path) -> None:
    """InputError unless `path` can name an output file: not a folder, device or pipe, not under a file."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory; name an output file")
    if path.exists() and not path.is_file():
        # A rename would replace a device or pipe (even /dev/null) with a plain file.
        raise InputError(f"{path}: exists and is not a regular file; choose another output")
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise InputError(f"{path}: cannot write there ({existing} is a file, not a directory); choose another output")


def _nearest_existing(path: Path) -> Path:
    return next((p for p in path.parents if p.exists()), path.parent)


def _cannot_write(path: Path, e: OSError) -> InputError:
    return InputError(f"{path}: cannot write there ({e.strerror or e}); choose another output")


def _probe(folder: Path) -> None:
    """Create and remove a temporary file in `folder` (OSError if that is impossible)."""
    fd, probe = tempfile.mkstemp(prefix=".hida_rt.", suffix=".probe", dir=folder)
    os.close(fd)
    os.unlink(probe)


def writable_dir(folder: str | os.PathLike) -> bool:
    """Whether files can be created in the existing folder `folder`."""
    try:
        _probe(Path(folder))
    except OSError:
        return False
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A reader never sees a half-written file, and a failure leaves nothing behind.
    """
    path = Path(path)
    _check_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as e:
        raise _cannot_write(path, e) from None
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
            raise _cannot_write(path, e) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_writable(path: str | os.PathLike) -> None:
    """Fail early, before slow work, if atomic_path could not write `path`.

    Probes the nearest existing folder and writes nothing: folders still to be
    made are made by atomic_path once there is something to write.
    """
    path = Path(path)
    _check_target(path)
    try:
        _probe(_nearest_existing(path))
    except OSError as e:
        raise _cannot_write(path, e) from None
