from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from matchers import columns
from matchers.build import build_index
from matchers.columns import Plates, Times, compact_text, narrow, plain_text
from matchers.index import TS_MAX, TS_MIN
from matchers.normalize import plate_key
from matchers.snapshot import load_hotlists
from matchers.store import open_index, save_index
from tests.support.hotlists import entry, write_snapshot
from tests.support.reference import as_tuples

INT64 = st.integers(min_value=int(TS_MIN), max_value=int(TS_MAX))


@given(st.lists(st.one_of(INT64, st.sampled_from([int(TS_MIN), int(TS_MAX), 0, 1_764_000_000_000_000])), max_size=300))
def test_times_read_back_every_row_exactly(values: list[int]) -> None:
    col = np.array(values, dtype=np.int64)
    times = Times.of(col)
    assert [times.at(r) for r in range(len(values))] == values
    assert times.full().tolist() == values
    rows = np.arange(len(values))[::-1]
    assert times.take(rows).tolist() == col[rows].tolist()
    assert len(times) == len(values)


@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["", "stolen", "seen at E40", "ÉVÈNEMENT"]), st.text()), max_size=300)
)
def test_compacted_text_reads_back_every_row(values: list[str | None]) -> None:
    col = pa.array(values, pa.string())
    compact = compact_text(col)
    assert [compact[r].as_py() for r in range(len(values))] == values
    assert plain_text(compact).to_pylist() == values
    assert compact.nbytes <= col.nbytes


@given(st.lists(st.integers(min_value=-(2**40), max_value=2**40), max_size=200))
def test_narrow_keeps_every_value(values: list[int]) -> None:
    out = narrow(np.array(values, dtype=np.int64))
    assert out.tolist() == values


def test_each_column_takes_the_least_room_its_values_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 10_000
    assert Times.of(np.full(n, TS_MIN, dtype=np.int64)).nbytes == 8  # no validity: nothing a row
    days = np.arange(n, dtype=np.int64) % 300 * 86_400_000_000
    coded = Times.of(days)
    assert coded.kind == "coded"
    assert coded.codes is not None
    assert coded.codes.dtype == np.uint16  # 300 distinct days do not fit a byte
    assert coded.nbytes == 2 * n + 8 * 300
    monkeypatch.setattr(columns, "SAMPLE", 100)
    distinct = np.arange(n, dtype=np.int64) * 7
    assert Times.of(distinct).kind == "plain"  # mostly distinct: a dictionary would not be smaller
    assert compact_text(pa.array([f"note {i}" for i in range(n)])).type == pa.string()
    assert narrow(np.array([-1, 5, 120])).dtype == np.int8
    assert narrow(np.array([-1, 300])).dtype == np.int16
    assert pa.types.is_null(compact_text(pa.nulls(n, pa.string())).type)
    few = compact_text(pa.array(["a", None, "b"] * 1000))
    assert few.type == pa.dictionary(pa.int8(), pa.string())


PLATE_CHARS = st.sampled_from(list("ABCXYZ0189abcz-. ·#~ÜÉøß*?"))


@given(st.lists(st.text(PLATE_CHARS, min_size=1, max_size=14), max_size=60))
def test_plates_read_back_as_written_and_tell_plates_apart(raw: list[str]) -> None:
    plates = [p for p in raw if plate_key(p)]
    keys = [plate_key(p) for p in plates]
    lengths = np.array([len(k) for k in keys], dtype=np.int64)
    long_or_pattern = np.array([len(k) > 12 or "*" in p or "?" in p for p, k in zip(plates, keys, strict=True)], bool)
    kept = Plates.of(pa.array(plates, pa.string()), lengths, long_or_pattern)
    assert [kept.at(r, keys.__getitem__) for r in range(len(plates))] == plates
    identity = kept.identity().to_pylist()
    pairs = {(identity[r], keys[r]) for r in range(len(plates))}
    assert len(pairs) == len(set(plates))  # one (shape, key) a distinct plate, and only one
    literal = set(kept.literal_rows.tolist())
    for r, p in enumerate(plates):
        if not p.isascii() or "#" in p or "~" in p or long_or_pattern[r]:
            assert r in literal  # a plate its shape cannot give back is kept whole


def test_a_list_of_one_plate_format_keeps_about_a_byte_a_plate() -> None:
    plates = [f"{i % 9 + 1}-{'ABCDEFGHJ'[i % 9]}XY-{i % 1000:03d}" for i in range(20_000)]
    keys = [plate_key(p) for p in plates]
    kept = Plates.of(pa.array(plates), np.array([len(k) for k in keys]), np.zeros(len(plates), bool))
    assert kept.shapes == ["#-###-###"]
    assert kept.nbytes < 1.01 * len(plates) + 100
    assert kept.at(12_345, keys.__getitem__) == plates[12_345]


NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_every_compact_form_maps_back_from_disk_to_the_same_answers(tmp_path: Path) -> None:
    """A version whose lists hold coded times (a few dates), a plain one (distinct times), notes as a
    dictionary and as nulls: saved, mapped and probed, every entry and every match is the one built."""
    hot = tmp_path / "hot"
    day = timedelta(days=1)
    dated = [
        entry(
            f"D{i}",
            f"1-ABC-{i:03d}",
            valid_from=(NOON - (i % 3 + 1) * day).isoformat(),
            valid_until=(NOON + day if i % 2 else NOON - timedelta(hours=1)).isoformat(),
            note="seen" if i % 4 else None,
        )
        for i in range(60)
    ]
    write_snapshot(hot, "dated", dated)
    odd = ["2-xyz-{:03d}", "MÜ-XYZ-{:03d}", "2 XYZ {:03d}"]  # lower case, not ASCII, another shape
    write_snapshot(hot, "plain", [entry(f"P{i}", odd[i % 3].format(i)) for i in range(20)])
    built = build_index(load_hotlists(hot))
    assert built.valid_from.kind == "coded"
    assert pa.types.is_dictionary(built.note.type)
    save_index(built, tmp_path / "idx")
    mapped = open_index(tmp_path / "idx", pause=lambda: None)
    assert [mapped.entry(r) for r in range(len(mapped))] == [built.entry(r) for r in range(len(built))]
    found = 0
    for i in range(60):
        for key in (f"1ABC{i:03d}", f"2XYZ{i:03d}", f"MUXYZ{i:03d}"):
            got = as_tuples(mapped.probe(key, None, NOON))
            assert got == as_tuples(built.probe(key, None, NOON))
            found += len(got)
    assert found == 30 + 20  # the dated entries valid at noon (every other one), and every plain one
    assert {m.entry_plate for m in mapped.probe("MUXYZ001", None, NOON)} == {"MÜ-XYZ-001"}
    assert {m.entry_plate for m in mapped.probe("2XYZ000", None, NOON)} == {"2-xyz-000"}
    assert mapped.nbytes() <= built.nbytes()  # the mapped columns are the compact ones, not widened
