"""Before a start: every file FEBLAM will write can be written, with room to spare.

A read-only folder or a full disk found at start is one line naming the
output and the folder, and exit 2, instead of a flow that starts, fails on its
first write and is restarted by the supervisor for ever. At run time the
sinks name the file and the OS error with :func:`output_error`.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from feblam.config import Settings
from feblam.errors import OutputError


def file_outputs(settings: Settings) -> list[tuple[str, Path]]:
    """``(what, folder)`` of every file output of the job: file sinks, Parquet audit folders, dead letters."""
    outs = [(f"sinks {s.name!r} (path {s.path})", Path(s.path).parent) for s in settings.sinks if s.path]
    outs += [(f"sinks {s.name!r} (parquet_dir)", Path(s.parquet_dir)) for s in settings.sinks if s.parquet_dir]
    if settings.deadletter.path:
        outs.append((f"deadletter.path {settings.deadletter.path}", Path(settings.deadletter.path).parent))
    return outs


def _existing(folder: Path) -> Path:
    """The folder, or its nearest ancestor that exists (where it would be made)."""
    at = folder.absolute()
    while not at.exists() and at != at.parent:
        at = at.parent
    return at


def check_outputs(settings: Settings) -> None:
    """Every file output's folder is writable (or can be made) and has ``[outputs] min_free_mb`` free."""
    floor = settings.outputs.min_free_mb * 1024 * 1024
    for what, folder in file_outputs(settings):
        at = _existing(folder)
        if not at.is_dir():
            msg = f"{what}: {at} is not a folder"
            raise OutputError(msg)
        if not os.access(at, os.W_OK | os.X_OK):
            made = "" if at == folder.absolute() else f" (where {folder} would be made)"
            msg = f"{what}: folder {at}{made} is not writable by this user; fix its permissions or the path"
            raise OutputError(msg)
        free = shutil.disk_usage(at).free
        if floor and free < floor:
            msg = (
                f"{what}: {at} has {free // (1024 * 1024)} MB free, under outputs.min_free_mb "
                f"{settings.outputs.min_free_mb}; free space there (or lower the floor)"
            )
            raise OutputError(msg)


def output_error(path: Path, exc: OSError, doing: str) -> OutputError:
    """One line naming the file and the OS error (``No space left on device``, ``Permission denied``)."""
    code = errno.errorcode.get(exc.errno or 0, "")
    return OutputError(f"{path}: cannot {doing} ({exc.strerror or exc}{', ' + code if code else ''})")
