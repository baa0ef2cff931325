from __future__ import annotations

from pathlib import Path

import pytest

from feblam.errors import SnapshotError
from matchers.hotdir import list_files
from matchers.snapshot import load_hotlists, load_list
from tests.support.hotlists import EXAMPLES, entry, write_snapshot


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_each_format_loads_and_normalises(tmp_path: Path, fmt: str) -> None:
    write_snapshot(
        tmp_path, "L", [entry("E1", "1-abc-123", country="B", owner="DJSOC"), entry("E2", "ab?-1*")], fmt=fmt
    )
    snap = load_list(tmp_path / "L")
    rows = snap.table.to_pylist()
    assert [r["entry_id"] for r in rows] == ["E1", "E2"]
    assert rows[0]["key"] == "1ABC123"
    assert rows[0]["country"] == "BE"
    assert rows[0]["owner"] == "DJSOC"
    assert rows[1]["key"] == "AB?1*"
    assert rows[1]["country"] is None
    assert snap.fuzzy is True


def test_latest_full_plus_later_deltas_in_order(tmp_path: Path) -> None:
    write_snapshot(tmp_path, "L", [entry("OLD", "9OLD999")], seq=1)
    write_snapshot(tmp_path, "L", [entry("E1", "1AAA111"), entry("E2", "2BBB222")], seq=5, fmt="jsonl")
    write_snapshot(tmp_path, "L", [{"op": "upsert", **entry("STALE", "3CCC333")}], seq=4, kind="delta")
    write_snapshot(
        tmp_path,
        "L",
        [{"op": "delete", "entry_id": "E1"}, {"op": "upsert", **entry("E3", "4DDD444")}],
        seq=7,
        kind="delta",
    )
    write_snapshot(
        tmp_path, "L", [{"op": "upsert", **entry("E3", "5EEE555", priority=3)}], seq=10, kind="delta", fmt="jsonl"
    )
    files = list_files(tmp_path / "L")
    assert [(f.seq, f.kind) for f in files] == [(5, "full"), (7, "delta"), (10, "delta")]
    rows = {r["entry_id"]: r for r in load_list(tmp_path / "L").table.to_pylist()}
    assert set(rows) == {"E2", "E3"}
    assert rows["E3"]["key"] == "5EEE555"
    assert rows["E3"]["priority"] == 3


def test_sequence_need_not_be_zero_padded(tmp_path: Path) -> None:
    d = tmp_path / "L"
    d.mkdir()
    (d / "9-full.csv").write_text("entry_id,plate,category,priority,action\nA,1A,x,1,intercept\n")
    (d / "10-full.csv").write_text("entry_id,plate,category,priority,action\nB,2B,x,1,intercept\n")
    assert load_list(d).table.column("entry_id").to_pylist() == ["B"]


def test_list_toml_sets_name_and_fuzzy(tmp_path: Path) -> None:
    write_snapshot(tmp_path, "L", [entry("E1", "1A")], toml='name = "Uninsured"\nfuzzy = false\n')
    snap = load_list(tmp_path / "L")
    assert (snap.name, snap.fuzzy) == ("Uninsured", False)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_bad_priority_names_file_row_and_column(tmp_path: Path, fmt: str) -> None:
    path = write_snapshot(tmp_path, "L", [entry("E1", "1A"), entry("E2", "2B", priority=7)], fmt=fmt)
    with pytest.raises(SnapshotError) as exc:
        load_list(tmp_path / "L")
    msg = str(exc.value)
    assert str(path) in msg
    assert "row 2" in msg
    assert "'priority'" in msg
    assert "7" in msg


def test_non_numeric_priority(tmp_path: Path) -> None:
    write_snapshot(tmp_path, "L", [entry("E1", "1A", priority="high")])
    with pytest.raises(SnapshotError, match=r"row 1 \(line 2\): column 'priority': value 'high'"):
        load_list(tmp_path / "L")


@pytest.mark.parametrize("column", ["entry_id", "plate", "category", "priority", "action"])
def test_missing_required_column(tmp_path: Path, column: str) -> None:
    row = entry("E1", "1A")
    del row[column]
    path = write_snapshot(tmp_path, "L", [row])
    with pytest.raises(SnapshotError, match=f"column '{column}' is missing") as exc:
        load_list(tmp_path / "L")
    assert str(path) in str(exc.value)


@pytest.mark.parametrize(
    ("change", "column", "text"),
    [
        ({"action": "arrest"}, "action", "is not one of"),
        ({"country": "XX"}, "country", "not a known country"),
        ({"plate": "--"}, "plate", "no letter or digit"),
        ({"plate": ""}, "plate", "missing"),
        ({"valid_from": "yesterday"}, "valid_from", "not an ISO 8601"),
        ({"valid_from": "2026-02-01T00:00:00Z", "valid_until": "2026-01-01T00:00:00Z"}, "valid_until", "not after"),
    ],
)
def test_invalid_values_are_rejected_with_row_and_column(
    tmp_path: Path, change: dict[str, str], column: str, text: str
) -> None:
    write_snapshot(tmp_path, "L", [entry("E0", "0A"), {**entry("E1", "1A"), **change}], fmt="jsonl")
    with pytest.raises(SnapshotError) as exc:
        load_list(tmp_path / "L")
    msg = str(exc.value)
    assert "row 2 (line 2)" in msg
    assert f"column '{column}'" in msg
    assert text in msg


def test_duplicate_entry_id(tmp_path: Path) -> None:
    write_snapshot(tmp_path, "L", [entry("E1", "1A"), entry("E1", "2B")])
    with pytest.raises(SnapshotError, match="'E1' already appears on row 1"):
        load_list(tmp_path / "L")


def test_delta_needs_op(tmp_path: Path) -> None:
    write_snapshot(tmp_path, "L", [entry("E1", "1A")])
    write_snapshot(tmp_path, "L", [entry("E2", "2B")], seq=2, kind="delta")
    with pytest.raises(SnapshotError, match="column 'op' is missing"):
        load_list(tmp_path / "L")


def test_delete_needs_only_entry_id(tmp_path: Path) -> None:
    write_snapshot(tmp_path, "L", [entry("E1", "1A"), entry("E2", "2B")])
    write_snapshot(tmp_path, "L", [{"op": "delete", "entry_id": "E1"}], seq=2, kind="delta")
    assert load_list(tmp_path / "L").table.column("entry_id").to_pylist() == ["E2"]


def test_unreadable_parquet(tmp_path: Path) -> None:
    d = tmp_path / "L"
    d.mkdir()
    (d / "1-full.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(SnapshotError, match="unreadable Parquet"):
        load_list(d)


def test_timestamps_with_offsets_are_utc(tmp_path: Path) -> None:
    write_snapshot(
        tmp_path, "L", [entry("E1", "1A", valid_from="2026-11-28T13:00:00+01:00", valid_until="2026-11-29T00:00:00")]
    )
    row = load_list(tmp_path / "L").table.to_pylist()[0]
    assert row["valid_from"].isoformat() == "2026-11-28T12:00:00+00:00"
    assert row["valid_until"].isoformat() == "2026-11-29T00:00:00+00:00"


def test_sample_hotlists_load() -> None:
    lists = {s.list_id: s for s in load_hotlists(EXAMPLES / "hotlists")}
    assert set(lists) == {"BE-STOLEN", "SIS", "SIS-NL", "WANTED", "UNINSURED", "LEZ-BXL", "ZONE-LIEGE"}
    assert sorted(lists["SIS-NL"].table.column("entry_id").to_pylist()) == ["NL-SIS-001", "NL-SIS-002", "NL-SIS-004"]
    stolen = lists["BE-STOLEN"].table.column("entry_id").to_pylist()
    assert sorted(stolen) == ["S-1", "S-3", "S-4", "S-5"]
    assert lists["UNINSURED"].fuzzy is False


def test_duplicate_entry_id_in_a_large_snapshot(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 150_000
    ids = [f"E{i:07d}" for i in range(n)]
    ids[140_001] = "E0000077"
    d = tmp_path / "L"
    d.mkdir()
    pq.write_table(
        pa.table(
            {
                "entry_id": ids,
                "plate": [f"AB{i}" for i in range(n)],
                "category": ["x"] * n,
                "priority": [1] * n,
                "action": ["inform"] * n,
            }
        ),
        d / "1-full.parquet",
    )
    with pytest.raises(
        SnapshotError, match=r"row 140002: column 'entry_id': value 'E0000077' already appears on row 78"
    ):
        load_list(d)
    ids[140_001] = "E9999999"
    pq.write_table(
        pa.table(
            {
                "entry_id": ids,
                "plate": [f"AB{i}" for i in range(n)],
                "category": ["x"] * n,
                "priority": [1] * n,
                "action": ["inform"] * n,
            }
        ),
        d / "1-full.parquet",
    )
    assert load_list(d).table.num_rows == n
