"""Where `python -m hida_rt.batch` reads and writes: folders, globs and URIs, through pyarrow filesystems.

A location is a local path (`photos/`, `photos/**/*.jpg`) or a URI any
installed pyarrow filesystem reads (`file:///data/photos`, `s3://bucket/
archive/`, `gs://...`, `hdfs://...`). Ray Data reads through the same
filesystem objects, so the in-process and the Ray paths see the same files.

Outputs are written atomically: to a hidden temp name in the output's own
folder (`.<stem>.<random>.tmp.png`, the pattern of hida_rt.cli.atomic_path),
then renamed (on an object store: moved, and an object appears whole). A
file under its final name is therefore complete, which is what makes a
rerun resumable: it skips those and deletes stale temps a killed run left.
"""
from __future__ import annotations

import io
import posixpath
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..errors import InputError, first_line
from ..images import IMAGE_SUFFIXES

SKETCH_SUFFIX = "_sketch.png"
# A temp file of one of our outputs: what atomic_path (mkstemp) or write_image below names it.
_TEMP = re.compile(r"^\.(?P<stem>.+_sketch)\.[A-Za-z0-9_]+\.(tmp\.png|probe)$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_WILDCARDS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Location:
    """A folder, file or glob on a pyarrow filesystem."""

    fs: object        # pyarrow.fs.FileSystem
    path: str         # the filesystem's own path (local: absolute, POSIX separators); for a glob, its fixed base
    text: str         # as the user wrote it
    pattern: str | None = None   # a glob's part below `path`, or None

    @property
    def local(self) -> bool:
        from pyarrow.fs import LocalFileSystem
        return isinstance(self.fs, LocalFileSystem)

    def join(self, rel: str) -> str:
        return posixpath.join(self.path, rel) if rel else self.path

    def shown(self, path: str) -> str:
        """A filesystem path as the user would write it (their spelling of the root, then the rest)."""
        rel = relative(path, self.path)
        base = self.text if self.pattern is None else self.text[: len(self.text) - len(self.pattern)].rstrip("/")
        return base if not rel else posixpath.join(base, rel)


@dataclass(frozen=True)
class Source:
    path: str   # filesystem path
    rel: str    # POSIX path relative to the listing root ("sub/a.jpg"); the file name for a single file


def relative(path: str, root: str) -> str:
    """`path` below `root`, POSIX; object-store paths have no leading slash ("bucket/key")."""
    root = root.rstrip("/")
    if not root:
        return path.lstrip("/")
    if path == root:
        return ""
    if not path.startswith(root + "/"):
        raise ValueError(f"{path} is not under {root}")
    return path[len(root) + 1:]


def parse_location(text: str, what: str) -> Location:
    """A user's folder / glob / URI -> Location (InputError, one line, if no filesystem reads it)."""
    import pyarrow.fs as pafs
    if _URI.match(text):
        try:
            fs, path = pafs.FileSystem.from_uri(text)
        except Exception as e:  # ArrowInvalid, ArrowNotImplementedError, ImportError of a missing filesystem
            raise InputError(f"{what} {text}: no installed pyarrow filesystem reads it ({first_line(e, 120)})") \
                from None
    else:
        fs, path = pafs.LocalFileSystem(), Path(text).expanduser().absolute().as_posix()
    parts = path.split("/")
    wild = next((i for i, part in enumerate(parts) if _WILDCARDS.search(part)), None)
    if wild is None:
        return Location(fs, path.rstrip("/") or "/", text)
    return Location(fs, "/".join(parts[:wild]) or "/", text, pattern="/".join(parts[wild:]))


def glob_regex(pattern: str) -> re.Pattern:
    """A glob over POSIX relative paths: `*` and `?` stay within a folder, `**/` spans any number of them."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and _class_end(pattern, i) > 0:
            end = _class_end(pattern, i)
            body = pattern[i + 1: end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _class_end(pattern: str, start: int) -> int:
    """Index of the `]` closing the character class opened at `start` ([!...] and []...] as in fnmatch), or -1."""
    j = start + 1
    if pattern[j: j + 1] == "!":
        j += 1
    if pattern[j: j + 1] == "]":
        j += 1
    return pattern.find("]", j)


def _info(loc: Location, path: str):
    try:
        return loc.fs.get_file_info(path)
    except Exception as e:
        raise InputError(f"{loc.text}: cannot read it ({first_line(e, 120)})") from None


def _walk(loc: Location, root: str) -> list[str]:
    """Every file under `root` (recursive), skipping hidden files and folders."""
    import pyarrow.fs as pafs
    try:
        infos = loc.fs.get_file_info(pafs.FileSelector(root, recursive=True))
    except Exception as e:
        raise InputError(f"{loc.text}: cannot list it ({first_line(e, 120)})") from None
    files = []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        rel = relative(info.path, root)
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        files.append(info.path)
    return files


def is_image_name(name: str) -> bool:
    return posixpath.splitext(name)[1].lower() in IMAGE_SUFFIXES


def list_images(loc: Location, what: str, exclude: Location | None = None) -> list[Source]:
    """The image files a location names, sorted by relative path; InputError if there are none."""
    import pyarrow.fs as pafs
    info = _info(loc, loc.path)
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"{what} {loc.text}: no such file or folder")
    if loc.pattern is None and info.type == pafs.FileType.File:
        return [Source(loc.path, posixpath.basename(loc.path))]
    if info.type != pafs.FileType.Directory:
        raise InputError(f"{what} {loc.text}: not a file or folder")
    regex = glob_regex(loc.pattern) if loc.pattern is not None else None
    skip = exclude.path.rstrip("/") + "/" if exclude is not None and type(exclude.fs) is type(loc.fs) else None
    sources = []
    for path in _walk(loc, loc.path):
        rel = relative(path, loc.path)
        if skip and (path + "/").startswith(skip):
            continue  # the output folder inside the input folder: our own sketches are not photos
        if not is_image_name(rel) or (regex is not None and not regex.match(rel)):
            continue
        sources.append(Source(path, rel))
    if not sources:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise InputError(f"{what} {loc.text}: no image files ({kinds}) found there")
    return sorted(sources, key=lambda s: s.rel)


class DepthIndex:
    """Depth maps paired with photos by file stem: same relative path first, else a unique stem anywhere."""

    def __init__(self, loc: Location):
        self.loc = loc
        self.by_rel: dict[str, str] = {}
        self.by_stem: dict[str, list[str]] = {}
        for src in list_images(loc, "--depth"):
            self.by_rel.setdefault(posixpath.splitext(src.rel)[0], src.path)
            self.by_stem.setdefault(posixpath.splitext(posixpath.basename(src.rel))[0], []).append(src.path)

    def find(self, photo: Source) -> str:
        """The depth map's path for `photo`; InputError (one line, the photo's failure) if none or several."""
        key = posixpath.splitext(photo.rel)[0]
        if key in self.by_rel:
            return self.by_rel[key]
        stem = posixpath.basename(key)
        found = self.by_stem.get(stem, [])
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(self.loc.shown(p) for p in found[:3])
            raise InputError(f"several depth maps named {stem}.* under {self.loc.text} ({names}); keep one")
        raise InputError(f"no depth map named {stem}.* under {self.loc.text}")


def output_rel(source: Source) -> str:
    """Where a photo's sketch goes, relative to OUTPUT: same subfolder, `<stem>_sketch.png`."""
    folder, name = posixpath.split(source.rel)
    return posixpath.join(folder, posixpath.splitext(name)[0] + SKETCH_SUFFIX)


def scan_outputs(loc: Location) -> tuple[set[str], list[str]]:
    """(relative paths of complete sketches under OUTPUT, paths of stale temp files) — one listing."""
    import pyarrow.fs as pafs
    info = _info(loc, loc.path)
    if info.type == pafs.FileType.NotFound:
        return set(), []
    if info.type != pafs.FileType.Directory:
        raise InputError(f"OUTPUT {loc.text}: exists and is not a folder; name a folder for the sketches")
    try:
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.path, recursive=True))
    except Exception as e:
        raise InputError(f"OUTPUT {loc.text}: cannot list it ({first_line(e, 120)})") from None
    done, temps = set(), []
    for i in infos:
        if i.type != pafs.FileType.File:
            continue
        if _TEMP.match(posixpath.basename(i.path)):
            temps.append(i.path)
        elif i.path.endswith(SKETCH_SUFFIX):
            done.add(relative(i.path, loc.path))
    return done, temps


def remove_files(loc: Location, paths: list[str]) -> None:
    for path in paths:
        try:
            loc.fs.delete_file(path)
        except FileNotFoundError:
            pass
        except Exception as e:
            raise InputError(f"{loc.shown(path)}: cannot remove this stale temp file ({first_line(e, 100)})") from None


def read_bytes(fs, path: str, shown: str) -> bytes:
    try:
        with fs.open_input_stream(path) as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"{shown}: no such image file") from None
    except Exception as e:
        raise InputError(f"{shown}: cannot read it ({first_line(e, 100)})") from None


def write_image(fs, path: str, im: Image.Image) -> None:
    """Write a PNG atomically on any pyarrow filesystem (local files: hida_rt.images.save_image)."""
    from pyarrow.fs import LocalFileSystem
    if isinstance(fs, LocalFileSystem):
        from ..images import save_image
        save_image(im, path)
        return
    folder, name = posixpath.split(path)
    tmp = posixpath.join(folder, f".{posixpath.splitext(name)[0]}.{secrets.token_hex(4)}.tmp.png")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    try:
        fs.create_dir(folder, recursive=True)
        with fs.open_output_stream(tmp) as f:
            f.write(buf.getvalue())
        fs.move(tmp, path)
    except Exception as e:
        try:
            fs.delete_file(tmp)
        except Exception:
            pass
        raise InputError(f"{path}: cannot write there ({first_line(e, 100)})") from None
