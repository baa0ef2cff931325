"""File sinks: JSONL appended and never truncated, resume without duplicates, rotation; the Parquet audit sink."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bytewax.operators as op
import pyarrow.parquet as pq
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main

from feblam.model import DeadLetter, Hit, Match, Read
from sinks.audit import ParquetAuditSink
from sinks.files import JsonlSink, Rotation, _JsonlPartition, rotated_files
from tests.support.outputs import read_jsonl

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def hit(n: int, emitted: datetime = T0) -> Hit:
    read = Read(f"r{n}", "CAM-1", "canonical", T0 + timedelta(seconds=n), f"1-AB-{n:03d}")
    return Hit(
        f"h{n}",
        "v1",
        1,
        emitted,
        read,
        f"1AB{n:03d}",
        "BE",
        (Match("L", f"E{n}", "stolen_vehicle", 1, "intercept", "exact"),),
    )


def write(sink: object, items: list[object]) -> None:
    flow = Dataflow("t")
    s = op.input("in", flow, TestingSource(items))
    op.output("out", op.key_on("k", s, lambda _x: ""), sink)  # type: ignore[arg-type]
    run_main(flow)


def test_a_new_run_appends_to_the_file(tmp_path: Path) -> None:
    out = tmp_path / "hits.jsonl"
    write(JsonlSink(out), [hit(1), hit(2)])
    write(JsonlSink(out), [hit(3)])
    assert [d["hit_id"] for d in read_jsonl([out])] == ["h1", "h2", "h3"]


def test_resume_skips_what_the_tail_already_holds_and_truncates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "hits.jsonl"
    first = _JsonlPartition(out, None, Rotation())
    first.write_batch([hit(1), hit(2)])
    state = first.snapshot()  # the last snapshot the recovery store holds ...
    first.write_batch([hit(3), hit(4)])  # ... then a crash after these were written
    first.close()
    size = out.stat().st_size
    resumed = _JsonlPartition(out, state, Rotation())
    resumed.write_batch([hit(3), hit(4), hit(5)])  # the replay after the snapshot
    resumed.close()
    assert out.stat().st_size > size
    assert [d["hit_id"] for d in read_jsonl([out])] == ["h1", "h2", "h3", "h4", "h5"]


def test_dead_letters_are_recognised_in_the_tail_by_their_source(tmp_path: Path) -> None:
    out = tmp_path / "dlq.jsonl"
    dl = [DeadLetter("reads.a", "bad json", b"{", "vendor-a", None, 0, n) for n in range(3)]
    first = _JsonlPartition(out, None, Rotation())
    state = first.snapshot()
    first.write_batch(dl[:2])
    first.close()
    resumed = _JsonlPartition(out, state, Rotation())
    resumed.write_batch(dl)
    resumed.close()
    assert [d["offset"] for d in read_jsonl([out])] == [0, 1, 2]


def test_a_line_cut_short_by_a_crash_stays_on_its_own_line(tmp_path: Path) -> None:
    out = tmp_path / "hits.jsonl"
    out.write_bytes(b'{"hit_id": "h0"}\n{"hit_id": "h')
    write(JsonlSink(out), [hit(1)])
    lines = out.read_bytes().splitlines()
    assert lines[1] == b'{"hit_id": "h' and b'"hit_id":"h1"' in lines[2]


def test_rotation_by_size_keeps_the_newest_files(tmp_path: Path) -> None:
    out = tmp_path / "hits.jsonl"
    part = _JsonlPartition(out, None, Rotation(rotate_bytes=10, keep=2))
    for n in range(5):
        part.write_batch([hit(n)])
        state = part.snapshot()
    part.close()
    rotated = rotated_files(out)
    assert len(rotated) == 2, "the oldest are removed beyond keep"
    assert [d["hit_id"] for d in read_jsonl(rotated)] == ["h3", "h4"]
    assert state[1] == 0 and out.stat().st_size == 0


def test_resume_finds_the_tail_in_a_file_rotated_after_the_snapshot(tmp_path: Path) -> None:
    out = tmp_path / "hits.jsonl"
    part = _JsonlPartition(out, None, Rotation(rotate_bytes=1))
    part.write_batch([hit(1)])
    state = (os.stat(out).st_ino, out.stat().st_size)  # a snapshot taken before the rotation was stored
    part.write_batch([hit(2)])
    part.snapshot()  # rotates
    part.write_batch([hit(3)])
    part.close()
    resumed = _JsonlPartition(out, state, Rotation(rotate_bytes=1))
    resumed.write_batch([hit(2), hit(3), hit(4)])
    resumed.close()
    assert [d["hit_id"] for d in read_jsonl([*rotated_files(out), out])] == ["h1", "h2", "h3", "h4"]


def test_parquet_audit_is_partitioned_by_day(tmp_path: Path) -> None:
    day2 = T0 + timedelta(days=1)
    write(ParquetAuditSink(tmp_path / "audit"), [hit(1), hit(2), hit(3, emitted=day2)])
    days = sorted(p.name for p in (tmp_path / "audit").iterdir())
    assert days == ["day=2026-11-28", "day=2026-11-29"]
    table = pq.read_table(tmp_path / "audit" / "day=2026-11-28")
    assert sorted(table.column("hit_id").to_pylist()) == ["h1", "h2"]
    assert sorted(table.column("entry_ids").to_pylist()) == [["E1"], ["E2"]]
    assert not list((tmp_path / "audit").rglob(".*.tmp")), "no half-written file is left"


def test_parquet_audit_buffer_survives_a_restart(tmp_path: Path) -> None:
    from sinks.audit import _AuditPartition

    now = datetime.now(UTC)
    part = _AuditPartition(tmp_path / "audit", None)
    part.write_batch([hit(1, emitted=now), hit(2, emitted=now)])
    state = part.snapshot()  # under the flush thresholds: buffered, and the buffer is the state
    assert len(state) == 2 and not (tmp_path / "audit").exists()
    resumed = _AuditPartition(tmp_path / "audit", state)
    resumed.close()
    assert sorted(pq.read_table(tmp_path / "audit").column("hit_id").to_pylist()) == ["h1", "h2"]
