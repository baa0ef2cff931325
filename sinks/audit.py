"""The Parquet audit sink: every hit a sink's rule takes, one ``day=YYYY-MM-DD`` folder per UTC day.

Hits are buffered and written at the end of an epoch (a snapshot) once the
buffer holds ``FLUSH_ROWS`` hits, is ``FLUSH_SECONDS`` old, or the day changed,
and at close: one file per flush, written under a temporary name and renamed,
so a reader never sees half a file and a file is never rewritten. The buffer
is the sink's recovery state, so a restart loses no buffered hit; a crash
between a flush and the next stored snapshot can write a hit twice (the same
``hit_id``: audit queries count distinct ids).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from feblam.logs import get_logger
from feblam.model import Hit
from feblam.serde import hit_to_dict
from sinks.outputs import output_error

log = get_logger(__name__)
FLUSH_ROWS = 10_000
FLUSH_SECONDS = 60.0

SCHEMA = pa.schema(
    [
        ("hit_id", pa.string()),
        ("emitted_at", pa.timestamp("ms", tz="UTC")),
        ("captured_at", pa.timestamp("ms", tz="UTC")),
        ("priority", pa.int8()),
        ("index_version", pa.string()),
        ("camera_id", pa.string()),
        ("plate", pa.string()),
        ("country", pa.string()),
        ("list_ids", pa.list_(pa.string())),
        ("entry_ids", pa.list_(pa.string())),
        ("routes", pa.list_(pa.string())),
        ("hit_json", pa.string()),  # the whole hit as on the topic (DESIGN section 6)
    ]
)

#: (day, JSON of a hit) of every buffered hit: the recovery state.
AuditState = list[tuple[str, bytes]]


def _row(hit: Hit) -> dict[str, Any]:
    return {
        "hit_id": hit.hit_id,
        "emitted_at": hit.emitted_at,
        "captured_at": hit.read.ts,
        "priority": hit.priority,
        "index_version": hit.index_version,
        "camera_id": hit.read.camera_id,
        "plate": hit.plate,
        "country": hit.country,
        "list_ids": [m.list_id for m in hit.matches],
        "entry_ids": [m.entry_id for m in hit.matches],
        "routes": list(hit.routes),
        "hit_json": orjson.dumps(hit_to_dict(hit)).decode(),
    }


class _AuditPartition(StatefulSinkPartition[Hit, AuditState]):
    def __init__(self, root: Path, resume: AuditState | None) -> None:
        self._root = root
        self._rows: list[dict[str, Any]] = []
        self._state: AuditState = []
        self._since = time.monotonic()
        for day, doc in resume or []:  # hits buffered at the last snapshot
            self._add_json(day, doc)

    def _add_json(self, day: str, doc: bytes) -> None:
        from feblam.serde import hit_from_dict

        self._add(hit_from_dict(orjson.loads(doc)), day)

    def _add(self, hit: Hit, day: str | None = None) -> None:
        day = day or hit.emitted_at.astimezone(UTC).date().isoformat()
        row = _row(hit)
        row["_day"] = day
        self._rows.append(row)
        self._state.append((day, row["hit_json"].encode()))

    def write_batch(self, values: list[Hit]) -> None:
        for hit in values:
            self._add(hit)

    def _flush(self) -> None:
        by_day: dict[str, list[dict[str, Any]]] = {}
        for row in self._rows:
            by_day.setdefault(row["_day"], []).append(row)
        for day, rows in by_day.items():
            folder = self._root / f"day={day}"
            table = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "_day"} for r in rows], schema=SCHEMA)
            name = f"hits-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"
            tmp = folder / f".{name}.tmp"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, tmp)
                with tmp.open("rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, folder / name)
            except OSError as exc:  # the rows stay in the recovery state: written after the restart, not lost
                tmp.unlink(missing_ok=True)
                raise output_error(folder / name, exc, "write the audit file") from exc
            log.info("audit_written", path=str(folder / name), hits=len(rows))
        self._rows, self._state = [], []
        self._since = time.monotonic()

    def snapshot(self) -> AuditState:
        if self._rows:
            today = datetime.now(UTC).date().isoformat()
            if (
                len(self._rows) >= FLUSH_ROWS
                or time.monotonic() - self._since >= FLUSH_SECONDS
                or any(r["_day"] != today for r in self._rows)
            ):
                self._flush()
        return list(self._state)

    def close(self) -> None:
        if self._rows:
            self._flush()


class ParquetAuditSink(FixedPartitionedSink[Hit, AuditState]):
    """Hits as Parquet files under ``root/day=YYYY-MM-DD/`` (one partition: one writer per deployment)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def list_parts(self) -> list[str]:
        return [str(self.root)]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: AuditState | None) -> _AuditPartition:
        return _AuditPartition(self.root, resume_state)
