"""JSONL sinks for hits and dead letters.

One partition per file, so in a cluster every item of a file is written by
one worker. The resume state is the byte offset: after a restart from the
recovery store the file is truncated to the last snapshot, and the replayed
items are written again, so nothing is lost or doubled.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from feblam.model import DeadLetter, Hit
from feblam.serde import deadletter_to_json, hit_to_json


def to_jsonl(item: Any) -> bytes:
    if isinstance(item, Hit):
        return hit_to_json(item)
    if isinstance(item, DeadLetter):
        return deadletter_to_json(item, datetime.now(UTC))
    msg = f"cannot write {type(item).__name__} as JSONL"
    raise TypeError(msg)


class _JsonlPartition(StatefulSinkPartition[Any, int]):
    def __init__(self, path: Path, resume: int | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("ab")
        if resume is not None:
            self._fh.truncate(resume)
        else:
            self._fh.truncate(0)
        self._fh.seek(0, os.SEEK_END)

    def write_batch(self, values: list[Any]) -> None:
        self._fh.write(b"".join(to_jsonl(v) + b"\n" for v in values))
        self._fh.flush()

    def snapshot(self) -> int:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return self._fh.tell()

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


class JsonlSink(FixedPartitionedSink[Any, int]):
    """Hits (or dead letters) as JSON lines, one partition per file.

    A new run without recovery starts the file afresh.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def list_parts(self) -> list[str]:
        return [str(self.path)]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _JsonlPartition:
        return _JsonlPartition(self.path, resume_state)
