"""Reading the user's text files and a run's metrics log, and claiming output folders, each failure one
clear error.

Text is UTF-8. A file that is not is an error naming the file and the byte offset, unless the
caller asks for replacement characters (`errors="replace"`): silently decoding Latin-1 or binary
data as U+FFFD changes what is measured or trained on.
"""
from __future__ import annotations

import contextlib
import json
import lzma
import os
import shutil
import tempfile
from pathlib import Path

from .errors import SinklabError

ENCODING_ERRORS = ("strict", "replace")


def decode(data: bytes, name: str, errors: str = "strict", option: str | None = "--encoding-errors") -> str:
    """UTF-8 text of `data` (read from `name`); `option` is the flag that allows replacement, if any."""
    if errors not in ENCODING_ERRORS:
        raise SinklabError(f"unknown encoding-errors policy {errors!r}: use one of {', '.join(ENCODING_ERRORS)}")
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        how = f"; re-encode it as UTF-8, or pass {option} replace to read it with replacement characters" \
            if option else "; re-encode it as UTF-8"
        raise SinklabError(f"{name} is not UTF-8 text: byte {e.start} is 0x{data[e.start]:02x} "
                           f"({e.reason}){how}") from None


def read_text(path: str | os.PathLike, errors: str = "strict", option: str | None = "--encoding-errors") -> str:
    """A text file (or .xz-compressed text) as UTF-8; the offset of a bad byte counts decompressed bytes."""
    path = Path(path)
    try:
        if path.suffix == ".xz":
            with lzma.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except lzma.LZMAError as e:
        raise SinklabError(f"{path} is not a valid .xz file ({e})") from None
    except (OSError, EOFError) as e:
        raise SinklabError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    return decode(data, str(path), errors, option)


def check_output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """Fail now, before any heavy work, if `path` cannot become a writable folder: it is a file, or
    it (or the nearest folder above it that exists) is not writable. Creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SinklabError(f"{option} {path} is a file, not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise SinklabError(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK) or not _can_create_in(existing):
        raise SinklabError(f"{option} {path}: {existing} is not writable")
    return path


def _can_create_in(folder: Path) -> bool:
    """A real write: os.access says yes to root everywhere, /proc included, where nothing can be made."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sinklab-write-check-", dir=folder))
    except OSError:
        return False
    return True


def claim_output_folder(path: str | os.PathLike, marker: str, overwrite: bool = False,
                        option: str = "--out") -> Path:
    """check_output_folder, and refuse a folder that already holds a result (the file `marker` in it)
    unless `overwrite`: nothing computed earlier is replaced without being asked."""
    path = check_output_folder(path, option)
    if (path / marker).exists() and not overwrite:
        raise SinklabError(f"{option} {path} already holds a result ({marker}); pass --overwrite to replace it, "
                           f"or choose another {option}")
    return path


@contextlib.contextmanager
def staged_folder(final: str | os.PathLike, option: str = "--out"):
    """Write a result into a fresh folder beside `final`, then move it into place: a write that fails
    halfway leaves what was written, and the message says where. Files of the same name in `final` are
    replaced; others stay."""
    final = Path(final)
    staging = _staging_folder(final)
    try:
        yield staging
    except OSError as e:
        raise SinklabError(f"{option} {final}: writing failed ({e.strerror or e}); what was written is in "
                           f"{staging}") from None
    try:
        publish(staging, final)
    except OSError as e:
        raise SinklabError(f"{option} {final}: cannot move the result into place ({e.strerror or e}); it is in "
                           f"{staging}") from None


def _staging_folder(final: Path) -> Path:
    """A new folder beside `final` (one rename from it), else in the system's temporary folder."""
    for parent in (final.parent, Path(tempfile.gettempdir())):
        try:
            parent.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=parent))
        except OSError:
            continue
    raise SinklabError(f"cannot create a folder for the result beside {final} or in {tempfile.gettempdir()}")


def publish(staging: Path, final: Path) -> None:
    """Move staging's entries into final (created if missing), replacing same-named ones, then drop staging."""
    if not final.exists():
        shutil.move(str(staging), str(final))  # a rename beside it; a copy from the temporary folder
        return
    for entry in staging.iterdir():
        target = final / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        shutil.move(str(entry), str(target))
    staging.rmdir()


def output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """check_output_folder, then create it."""
    path = check_output_folder(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SinklabError(f"{option} {path}: cannot create the folder ({e.strerror or e})") from None
    return path


def read_metrics(path: Path) -> tuple[list[dict], int]:
    """The rows of a metrics.jsonl and how many lines were dropped: a run killed mid-write leaves
    its last line cut short. A bad line before the last one is an error naming it."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    rows, dropped = [], 0
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "step" not in row:
                raise ValueError("no step")
            rows.append(row)
        except ValueError:
            if i < len(lines):
                raise SinklabError(f"{path}, line {i}: not a metrics row ({line[:60]!r})") from None
            dropped += 1
    return rows, dropped
