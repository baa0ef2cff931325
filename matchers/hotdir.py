"""The hotlist directory (DESIGN section 5): which files make up each list, their hashes and manifests.

A hotlist directory holds one folder per list; in it ``<seq>-full.<ext>`` and
``<seq>-delta.<ext>`` files and optionally a ``list.toml``. This module finds
them (regular files only: anything else is skipped with one warning naming it),
hashes their contents (remembered per path, size, times and inode, so a process
hashes a file once), and describes a directory as a manifest — what the
builder's cache key, the layer decision and change detection compare. Reading
and validating the files is :mod:`matchers.snapshot`.
"""

from __future__ import annotations

import hashlib
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from feblam.errors import SnapshotError
from feblam.logs import get_logger

log = get_logger(__name__)


SNAPSHOT_NAME = re.compile(r"^(?P<seq>\d+)-(?P<kind>full|delta)\.(?P<ext>parquet|csv|jsonl)$")


#: Per list folder: (file name, content hash, size) of list.toml and every snapshot file.
Manifest = dict[str, list[tuple[str, str, int]]]


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    """One snapshot file of a list: its path, sequence, kind and format."""

    path: Path
    seq: int
    kind: str  # "full" | "delta"
    ext: str


def list_dirs(directory: str | Path) -> list[Path]:
    """The list folders of a hotlist directory, sorted by list id (hidden folders are not lists)."""
    root = Path(directory)
    if not root.is_dir():
        msg = f"{root}: hotlist directory does not exist"
        raise SnapshotError(msg)
    return [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]


#: Paths already reported as not regular files (one warning each, not one per poll).
_SKIPPED: set[str] = set()


def is_regular(path: Path) -> bool:
    """True for a regular file (through a symlink); anything else is skipped with one warning naming it.

    A dangling symlink, a FIFO (reading it would block the watcher for ever), a socket
    or a folder named like a snapshot is never read.
    """
    try:
        mode = path.stat().st_mode
        reason = None if stat.S_ISREG(mode) else "not a regular file"
    except OSError as exc:
        reason = f"unreadable ({exc.strerror or exc})"
    if reason is None:
        _SKIPPED.discard(str(path))
        return True
    if str(path) not in _SKIPPED:
        _SKIPPED.add(str(path))
        log.warning("snapshot_file_skipped", path=str(path), reason=reason)
    return False


def list_files(list_dir: Path) -> tuple[SnapshotFile, ...]:
    """The files that make up a list: the latest full and every later delta, in order."""
    found: dict[int, dict[str, SnapshotFile]] = {}
    for path in sorted(list_dir.iterdir()):
        m = SNAPSHOT_NAME.match(path.name)
        if not m or not is_regular(path):
            continue
        snap = SnapshotFile(path, int(m["seq"]), m["kind"], m["ext"])
        slot = found.setdefault(snap.seq, {})
        if snap.kind in slot:
            msg = f"{path}: sequence {snap.seq} has two {snap.kind} snapshots ({slot[snap.kind].path.name})"
            raise SnapshotError(msg)
        slot[snap.kind] = snap
    fulls = [s for seq in found.values() for s in seq.values() if s.kind == "full"]
    base = max(fulls, key=lambda s: s.seq) if fulls else None
    start = base.seq if base else -1
    deltas = sorted(
        (s for seq in found.values() for s in seq.values() if s.kind == "delta" and s.seq > start),
        key=lambda s: s.seq,
    )
    return ((base,) if base else ()) + tuple(deltas)


def source_files(directory: str | Path) -> list[Path]:
    """Every file a version depends on: snapshots and ``list.toml`` of every list folder (regular files only)."""
    return [
        f
        for d in list_dirs(directory)
        for f in sorted(d.iterdir())
        if (SNAPSHOT_NAME.match(f.name) or f.name == "list.toml") and is_regular(f)
    ]


#: Content hashes by (path, size, mtime, ctime, inode): a process hashes a file once, not on every rebuild.
_HASHES: dict[tuple[str, int, int, int, int], str] = {}


def _stat_key(path: Path) -> tuple[str, int, int, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def file_hash(path: Path) -> str:
    """Content hash of a file, remembered while its size, times and inode stay the same."""
    key = _stat_key(path)
    known = _HASHES.get(key)
    if known is None:
        h = hashlib.blake2b(digest_size=16)
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        known = h.hexdigest()
        if len(_HASHES) > 100_000:
            _HASHES.clear()
        _HASHES[key] = known
    return known


def remember_hashes(directory: str | Path, manifest: dict[str, list[tuple[str, str, int]]]) -> None:
    """Take the hashes of a manifest made by another process (the files are stat-ed, not read)."""
    for list_id, rows in manifest.items():
        for name, digest, _size in rows:
            path = Path(directory) / list_id / name
            if path.is_file():
                _HASHES[_stat_key(path)] = digest


def list_digest(files: Iterable[SnapshotFile], name: str, fuzzy: bool, mapping: str = "") -> str:
    """Content digest of a list's settings, source mapping and files: part of every index version id."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{name}\x1f{fuzzy}".encode())
    if mapping:
        h.update(b"\x1d" + mapping.encode())
    for f in files:
        h.update(f"\x1e{f.path.name}\x1f{file_hash(f.path)}".encode())
    return h.hexdigest()


def source_manifest(directory: str | Path) -> dict[str, list[tuple[str, str, int]]]:
    """Per list folder, ``(name, content hash, size)`` of ``list.toml`` and of every snapshot file, by name.

    Two manifests tell whether a directory only gained delta files since a version was built.
    """
    out: dict[str, list[tuple[str, str, int]]] = {d.name: [] for d in list_dirs(directory)}
    for f in source_files(directory):
        out[f.parent.name].append((f.name, file_hash(f), f.stat().st_size))
    return out


def hotlists_fingerprint(directory: str | Path) -> tuple[tuple[str, str, int, int], ...]:
    """A cheap fingerprint (names, sizes, mtimes) to notice that a directory changed."""
    if not Path(directory).is_dir():
        return ()
    out: list[tuple[str, str, int, int]] = []
    for f in source_files(directory):
        try:
            st = f.stat()
        except OSError:  # removed since it was listed: the next poll sees the new state
            continue
        out.append((f.parent.name, f.name, st.st_size, st.st_mtime_ns))
    return tuple(out)
