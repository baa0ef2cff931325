"""Live changes on top of a version (DESIGN section 5.2): the same answers as a full rebuild with the same rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchers.batch import needs_probe
from matchers.build import Change, build_changes, build_index
from matchers.layers import ChangedIndex
from matchers.snapshot import load_hotlists, load_rows
from tests.support.hotlists import entry, write_snapshot

NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)
PLATES = ["AB12CD", "AB12C0", "XY99ZZ", "QQ11QQ", "1ABC123", "8OB8OB", "ZZ1234"]


def answers(index: Any, plates: list[str]) -> dict[str, list[tuple]]:
    out = {p: [(m.list_id, m.entry_id, m.match_kind, m.priority) for m in index.probe(p, None, NOON)] for p in plates}
    assert all(needs_probe(index, [p]) == [0] for p, found in out.items() if found), "the batch pre-check hid a match"
    return out


change_ops = st.lists(
    st.tuples(
        st.sampled_from(["L1", "L2"]),
        st.integers(0, 6),
        st.sampled_from(["upsert", "delete"]),
        st.sampled_from(PLATES),
        st.integers(1, 5),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base_ids=st.lists(st.integers(0, 6), unique=True, max_size=6), ops=change_ops)
def test_snapshot_plus_changes_equals_a_full_rebuild(tmp_path: Path, base_ids: list[int], ops: list[tuple]) -> None:
    work = tmp_path / f"w{abs(hash((tuple(base_ids), tuple(ops))))}"
    rows = {
        lid: {"KEEP": entry("KEEP", "KEEP1"), **{f"E{i}": entry(f"E{i}", PLATES[i]) for i in base_ids}}
        for lid in ("L1", "L2")
    }
    for lid in rows:
        write_snapshot(work / "base", lid, list(rows[lid].values()), toml="fuzzy = true\n")
    inner = build_index(load_hotlists(work / "base"))
    changes: dict[str, dict[str, Change]] = {}
    for seq, (lid, i, op, plate, prio) in enumerate(ops, start=10):
        eid = f"E{i}"
        if op == "delete":
            changes.setdefault(lid, {})[eid] = (seq, None)
            rows[lid].pop(eid, None)
        else:
            row = entry(eid, plate, priority=prio)
            table, _ = load_rows([{**row, "op": "upsert"}], "test")
            changes.setdefault(lid, {})[eid] = (seq, table)
            rows[lid][eid] = row
    changed = build_changes(inner, changes)
    for lid, by_id in rows.items():
        write_snapshot(work / "full", lid, list(by_id.values()), toml="fuzzy = true\n")
    full = build_index(load_hotlists(work / "full"))
    assert answers(changed, PLATES) == answers(full, PLATES)
    assert sorted((e.list_id, e.entry_id) for e in changed.entries()) == sorted(
        (e.list_id, e.entry_id) for e in full.entries()
    )
    assert [(i.list_id, i.entries) for i in changed.lists] == [(i.list_id, i.entries) for i in full.lists]
    if any(changes.values()):
        assert isinstance(changed, ChangedIndex) and changed.version != inner.version


def test_no_change_is_the_version_itself(tmp_path: Path) -> None:
    write_snapshot(tmp_path / "hot", "L", [entry("E1", "AB12")])
    inner = build_index(load_hotlists(tmp_path / "hot"))
    assert build_changes(inner, {}) is inner


def test_added_entries_are_new_ids_and_changed_plates_countries_or_validity(tmp_path: Path) -> None:
    from matchers.build import added_entries

    write_snapshot(
        tmp_path / "a",
        "L",
        [
            *(entry("E1", "AB12"), entry("E2", "CD34"), entry("E3", "EF56"), entry("E4", "GH78")),
            *(entry("E6", "1-ABC-123"), entry("E7", "MÜ-12"), entry("E8", "x-1")),
        ],
    )
    write_snapshot(
        tmp_path / "b",
        "L",
        [
            entry("E1", "AB12"),
            entry("E2", "CD35"),
            entry("E3", "EF56", country="NL"),
            entry("E5", "IJ90"),
            entry("E4", "GH78", valid_until="2030-01-01T00:00:00Z"),
            entry("E6", "1ABC-123"),  # the same key written otherwise: another plate
            entry("E7", "MÜ-12"),  # kept as written (not ASCII), unchanged
            entry("E8", "X-1"),  # the same key in upper case: another plate as written
        ],
    )
    old = build_index(load_hotlists(tmp_path / "a"))
    new = build_index(load_hotlists(tmp_path / "b"))
    added, ids = added_entries(new, old)
    changed = ["E2", "E3", "E4", "E5", "E6", "E8"]
    assert sorted(ids) == [("L", e) for e in changed], "E1 and E7 unchanged; nothing for deleted ones"
    assert added is not None and sorted(e.entry_id for e in added.entries()) == changed
    assert added_entries(new, new) == (None, [])
