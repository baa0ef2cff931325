"""JSONL sinks for hits and dead letters: appended, never truncated, rotated by size or day.

One partition per file, so in a cluster every item of a file is written by one
worker. A file is only ever appended to:

- A new run without recovery state appends to what is there (the first run's
  hits stay).
- A restart from the recovery store replays the items after the last snapshot.
  The resume state is ``(inode, offset)`` of the active file at that snapshot;
  what was written after it (the *tail*) is read back, and a replayed item that
  is already in the tail (same ``hit_id``; for a dead letter the same source,
  partition, offset and line) is not written twice. Nothing is truncated.
- Rotation happens at a snapshot only (the end of an epoch): the active file is
  renamed to ``<stem>-<UTC time>.jsonl`` when it passed ``rotate_bytes`` or
  when the UTC day changed (``rotate_daily``); ``keep`` rotated files are kept,
  the oldest removed first (0: all).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from feblam.logs import get_logger
from feblam.model import DeadLetter, Hit
from feblam.serde import deadletter_to_json, hit_to_json
from sinks.outputs import output_error

log = get_logger(__name__)

#: (inode, byte offset) of the active file at the last snapshot.
FileState = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Rotation:
    """When a JSONL file is rotated and how many rotated files are kept."""

    rotate_bytes: int = 0  # 0: never by size
    daily: bool = False
    keep: int = 0  # rotated files kept; 0: all


def to_jsonl(item: Any) -> bytes:
    """A hit or dead letter as one JSON line."""
    if isinstance(item, Hit):
        return hit_to_json(item)
    if isinstance(item, DeadLetter):
        return deadletter_to_json(item, datetime.now(UTC))
    msg = f"cannot write {type(item).__name__} as JSONL"
    raise TypeError(msg)


def identity(item: Any) -> str:
    """What makes an item the same item when it is replayed."""
    if isinstance(item, Hit):
        return item.hit_id
    return _dl_identity(item.source, item.partition, item.offset, item.line)


def _dl_identity(source: Any, partition: Any, offset: Any, line: Any) -> str:
    return f"dl\x1f{source}\x1f{partition}\x1f{offset}\x1f{line}"


def _line_identity(line: bytes) -> str | None:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    if "hit_id" in doc:
        return str(doc["hit_id"])
    return _dl_identity(doc.get("source"), doc.get("partition"), doc.get("offset"), doc.get("line"))


def rotated_files(path: Path) -> list[Path]:
    """The rotated files of ``path``, oldest first."""
    pattern = re.compile(rf"^{re.escape(path.stem)}-\d{{8}}T\d{{6}}(\.\d+)?Z{re.escape(path.suffix)}$")
    return sorted(p for p in path.parent.iterdir() if pattern.match(p.name))


class _JsonlPartition(StatefulSinkPartition[Any, FileState]):
    def __init__(self, path: Path, resume: FileState | None, rotation: Rotation) -> None:
        self._path = path
        self._rotation = rotation
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._skip = self._tail_identities(resume) if resume is not None else set()
            self._open()
        except OSError as exc:
            raise output_error(path, exc, "open it for appending") from exc

    def _open(self) -> None:
        # unbuffered: a batch is one write, and a write the disk cannot take is cut back (write_batch)
        self._fh = self._path.open("ab", buffering=0)
        self._day = datetime.now(UTC).date()
        end = self._fh.tell()
        if end:
            with self._path.open("rb") as fh:
                fh.seek(end - 1)
                if fh.read(1) != b"\n":  # a line cut short by a crash: keep it, start on a new line
                    log.warning("jsonl_partial_line_kept", path=str(self._path), offset=end)
                    self._fh.write(b"\n")

    def _tail_identities(self, resume: FileState) -> set[str]:
        """Identities of the items written after the snapshot ``resume`` (they will be replayed)."""
        inode, offset = resume
        chunks: list[bytes] = []
        if self._path.exists() and os.stat(self._path).st_ino == inode:
            chunks.append(_read_from(self._path, offset))
        else:  # rotated after that snapshot was taken: its file, from the offset, then the active file
            for old in rotated_files(self._path):
                if os.stat(old).st_ino == inode:
                    chunks.append(_read_from(old, offset))
            if self._path.exists():
                chunks.append(self._path.read_bytes())
        ids = {i for chunk in chunks for line in chunk.splitlines() if line.strip() and (i := _line_identity(line))}
        if ids:
            log.info("jsonl_resume_tail", path=str(self._path), items=len(ids))
        return ids

    def write_batch(self, values: list[Any]) -> None:
        if self._skip:
            values = [v for v in values if not _take(self._skip, identity(v))]
        if not values:
            return
        data = memoryview(b"".join(to_jsonl(v) + b"\n" for v in values))
        start = self._fh.tell()
        try:
            while data:
                data = data[self._fh.write(data) or 0 :]
        except OSError as exc:
            # a full disk took part of the batch: cut the file back to whole lines, so that after the restart
            # the batch is written once, whole (the resumed tail holds none of it)
            try:
                os.ftruncate(self._fh.fileno(), start)
            except OSError:
                log.error("jsonl_truncate_failed", path=str(self._path), offset=start)
            raise output_error(self._path, exc, "write hits to it") from exc

    def snapshot(self) -> FileState:
        try:
            os.fsync(self._fh.fileno())
            size = self._fh.tell()
            r = self._rotation
            today = datetime.now(UTC).date()
            if size and ((r.rotate_bytes and size >= r.rotate_bytes) or (r.daily and today != self._day)):
                self._rotate()
            return os.fstat(self._fh.fileno()).st_ino, self._fh.tell()
        except OSError as exc:
            raise output_error(self._path, exc, "sync or rotate it") from exc

    def _rotate(self) -> None:
        self._fh.close()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = self._path.with_name(f"{self._path.stem}-{stamp}{self._path.suffix}")
        os.replace(self._path, target)
        log.info("jsonl_rotated", path=str(self._path), rotated_to=str(target))
        if self._rotation.keep:
            for old in rotated_files(self._path)[: -self._rotation.keep]:
                old.unlink()
                log.info("jsonl_retention_removed", path=str(old), keep=self._rotation.keep)
        self._open()

    def close(self) -> None:
        try:
            os.fsync(self._fh.fileno())
        except OSError as exc:
            log.error("jsonl_close_failed", path=str(self._path), error=str(exc))
        self._fh.close()


def _read_from(path: Path, offset: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read()


def _take(pending: set[str], ident: str) -> bool:
    if ident in pending:
        pending.discard(ident)
        return True
    return False


class JsonlSink(FixedPartitionedSink[Any, FileState]):
    """Hits (or dead letters) as JSON lines, one partition per file; appended, never truncated."""

    def __init__(self, path: str | Path, rotation: Rotation | None = None) -> None:
        self.path = Path(path)
        self.rotation = rotation or Rotation()

    def list_parts(self) -> list[str]:
        return [str(self.path)]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: FileState | None) -> _JsonlPartition:
        if resume_state is not None and not isinstance(resume_state, tuple | list):
            resume_state = None  # a state of the earlier format (a bare offset): append, do not guess
        return _JsonlPartition(self.path, tuple(resume_state) if resume_state else None, self.rotation)  # type: ignore[arg-type]
