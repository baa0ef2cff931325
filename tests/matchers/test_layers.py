"""Deltas applied as a layer over a built version: the same answers as a full rebuild, without one."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feblam.config import HotlistSettings
from feblam.errors import SnapshotError
from matchers.batch import needs_probe
from matchers.build import build_index, load_index, load_layer
from matchers.builder import build_shared, new_deltas
from matchers.hotdir import source_manifest
from matchers.index import HotlistIndex, IndexHolder
from matchers.layers import LayeredIndex
from matchers.normalize import fuzzy_key
from matchers.refresh import HotlistWatcher, build_and_map
from matchers.snapshot import load_hotlists
from tests.support.hotlists import entry, sample_hotlists, write_snapshot
from tests.support.reference import as_tuples
from tests.support.strategies import countries, keys, times

NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)
LISTS = ("A", "B", "C")
FUZZY = {"A": True, "B": False, "C": True}


def _entries(index: HotlistIndex | LayeredIndex) -> list[tuple]:
    return sorted(
        (e.list_id, e.entry_id, e.key, e.country, e.priority, e.valid_from, e.valid_until) for e in index.entries()
    )


def assert_same_version(
    layer: LayeredIndex, full: HotlistIndex, probes: list[tuple[str, str | None, datetime]]
) -> None:
    assert layer.version == full.version
    assert len(layer) == len(full)
    assert layer.lists == full.lists
    assert _entries(layer) == _entries(full)
    for key, country, ts in probes:
        found = as_tuples(layer.probe(key, country, ts))
        assert found == as_tuples(full.probe(key, country, ts)), (key, country)
        assert needs_probe(layer, [key]) == [0] or not found, key  # the batch pre-check never hides a match


row_strategy = st.tuples(keys, countries, st.integers(1, 5), st.booleans())
delta_strategy = st.lists(
    st.tuples(st.sampled_from(LISTS), st.integers(0, 14), st.sampled_from(["upsert", "delete"]), row_strategy),
    min_size=1,
    max_size=12,
)


def _plate(key: str, as_pattern: bool) -> str:
    return key[0] + "?" + key[2:-1] + "*" if as_pattern and len(key) > 2 else key


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.sampled_from(LISTS), row_strategy), min_size=3, max_size=30),
    st.lists(delta_strategy, min_size=1, max_size=3),
    st.lists(st.tuples(keys, countries, times), max_size=10),
)
def test_a_layer_answers_exactly_like_a_full_rebuild(base_rows, deltas, reads) -> None:
    """Upserts of existing and new ids, deletes (also of ids a delta added), patterns, several delta files."""
    with tempfile.TemporaryDirectory() as tmp:
        hot = Path(tmp)
        by_list: dict[str, list[dict]] = {lid: [] for lid in LISTS}
        for i, (lid, (key, cc, prio, pat)) in enumerate(base_rows):
            by_list[lid].append(entry(f"{lid}{i % 15}-{i}", _plate(key, pat), country=cc, priority=prio))
        for lid in LISTS:
            write_snapshot(
                hot,
                lid,
                by_list[lid] or [entry(f"{lid}-only", "ZZ9")],
                fmt="jsonl",
                toml=f"fuzzy = {str(FUZZY[lid]).lower()}\n",
            )
        base = build_index(load_hotlists(hot), n_shards=5)
        existing = {lid: [r["entry_id"] for r in rows] for lid, rows in by_list.items()}
        new_files: dict[str, list[str]] = {}
        for seq, delta in enumerate(deltas, start=2):
            per_list: dict[str, dict[str, dict]] = {}
            for lid, pick, op, (key, cc, prio, pat) in delta:
                ids = existing[lid]
                eid = ids[pick % len(ids)] if ids and pick < 10 else f"{lid}-new-{pick}"
                row = {"op": op, **entry(eid, _plate(key, pat), country=cc, priority=prio)}
                per_list.setdefault(lid, {})[eid] = row  # one row per id and file
                if eid not in ids:
                    ids.append(eid)
            for lid, rows in per_list.items():
                path = write_snapshot(hot, lid, list(rows.values()), seq=seq, kind="delta", fmt="jsonl")
                new_files.setdefault(lid, []).append(path.name)
        layer = load_layer(base, hot, new_files)
        full = build_index(load_hotlists(hot), n_shards=3)
        probes = [(k, c, ts) for k, c, ts in reads]
        for e in full.entries():
            probes += [(e.key, e.country, NOON), (fuzzy_key(e.key), None, NOON)]
        for e in base.entries():
            probes.append((e.key, e.country, NOON))  # entries the deltas dropped stay dropped
        assert_same_version(layer, full, [(k.replace("?", "X").replace("*", ""), c, t) for k, c, t in probes if k])


def test_layer_refuses_files_that_are_not_the_newest_deltas(tmp_path: Path) -> None:
    write_snapshot(tmp_path, "L", [entry("E1", "AB12")])
    write_snapshot(tmp_path, "L", [{"op": "delete", "entry_id": "E1"}], seq=2, kind="delta")
    base = build_index(load_hotlists(tmp_path))
    with pytest.raises(SnapshotError, match="not the newest delta"):
        load_layer(base, tmp_path, {"L": ["000001-full.csv"]})


def test_a_bad_delta_is_reported_with_file_row_and_column(tmp_path: Path) -> None:
    write_snapshot(tmp_path, "L", [entry("E1", "AB12")])
    base = build_index(load_hotlists(tmp_path))
    bad = write_snapshot(
        tmp_path,
        "L",
        [{"op": "upsert", **entry("E2", "CD34")}, {"op": "upsert", **entry("E3", "EF56", action="shoot")}],
        seq=2,
        kind="delta",
    )
    with pytest.raises(SnapshotError) as exc:
        load_layer(base, tmp_path, {"L": [bad.name]})
    assert str(bad) in str(exc.value) and "row 2" in str(exc.value) and "'action'" in str(exc.value)


# ---------------------------------------------------------------- which changes can be layered


def _manifest(tmp: Path) -> dict:
    return source_manifest(tmp)


def test_new_deltas_only_when_nothing_but_deltas_were_added(tmp_path: Path) -> None:
    write_snapshot(tmp_path, "L", [entry(f"E{i}", f"AB{i:03d}") for i in range(50)], toml="fuzzy = true\n")
    write_snapshot(tmp_path, "M", [entry("M1", "XY12")])
    before = _manifest(tmp_path)
    assert new_deltas(before, _manifest(tmp_path), 0.5) is None  # nothing changed
    write_snapshot(tmp_path, "L", [{"op": "delete", "entry_id": "E1"}], seq=2, kind="delta")
    write_snapshot(tmp_path, "L", [{"op": "delete", "entry_id": "E2"}], seq=3, kind="delta")
    assert new_deltas(before, _manifest(tmp_path), 0.5) == {"L": ["000002-delta.csv", "000003-delta.csv"]}
    assert new_deltas(before, _manifest(tmp_path), 0.001) is None  # too large a share: rebuild
    (tmp_path / "L" / "list.toml").write_text("fuzzy = false\n")
    assert new_deltas(before, _manifest(tmp_path), 0.5) is None  # list settings changed
    (tmp_path / "L" / "list.toml").write_text("fuzzy = true\n")
    write_snapshot(tmp_path, "M", [entry("M1", "XY12")], seq=4)
    assert new_deltas(before, _manifest(tmp_path), 0.5) is None  # a new full snapshot
    (tmp_path / "M" / "000004-full.csv").unlink()
    write_snapshot(tmp_path, "N", [entry("N1", "QQ1")])
    assert new_deltas(before, _manifest(tmp_path), 0.5) is None  # a new list
    shutil.rmtree(tmp_path / "N")
    (tmp_path / "L" / "000003-delta.csv").unlink()
    assert new_deltas(before, _manifest(tmp_path), 0.5) == {"L": ["000002-delta.csv"]}
    (tmp_path / "L" / "000001-full.csv").write_text("entry_id,plate,category,priority,action\nE9,AB9,x,1,intercept\n")
    assert new_deltas(before, _manifest(tmp_path), 0.5) is None  # the full file was rewritten


# ---------------------------------------------------------------- through the shared builder


def _probes(index: HotlistIndex | LayeredIndex) -> list[tuple[str, str | None, datetime]]:
    out = [(k, c, NOON) for k in ("9NEW999", "1ABC123", "GZ123K", "1B0BO8O") for c in (None, "BE")]
    return out + [(e.key, e.country, NOON) for e in index.entries() if "?" not in e.key and "*" not in e.key]


def test_shared_builder_writes_a_layer_for_new_deltas_and_reuses_the_mapped_base(tmp_path: Path) -> None:
    hot = sample_hotlists(tmp_path)
    settings = HotlistSettings(dir=str(hot), cache_dir=str(tmp_path / "cache"))
    first = build_and_map(settings)
    assert isinstance(first, HotlistIndex) and first.source_dir
    some = next(e for e in first.entries() if e.list_id == "WANTED")
    write_snapshot(
        hot,
        "WANTED",
        [{"op": "upsert", **entry("W-9", "9-NEW-999")}, {"op": "delete", "entry_id": some.entry_id}],
        seq=50,
        kind="delta",
    )
    second = build_and_map(settings, first)
    assert isinstance(second, LayeredIndex)
    assert second.base is first  # no remap, no Bloom rebuild of the base
    meta = orjson.loads((Path(build_shared(settings, settings.cache_dir)) / "meta.json").read_bytes())
    assert meta["kind"] == "layer" and meta["base"] == Path(first.source_dir).name
    assert_same_version(second, load_index(settings), _probes(second))
    assert [m.entry_id for m in second.probe("9NEW999", None, NOON)] == ["W-9"]

    write_snapshot(hot, "WANTED", [{"op": "delete", "entry_id": "W-9"}], seq=51, kind="delta")
    third = build_and_map(settings, second)
    assert isinstance(third, LayeredIndex) and third.base is first  # still over the same full version
    assert third.probe("9NEW999", None, NOON) == []
    assert_same_version(third, load_index(settings), _probes(third))
    # a process that maps the layer without the base at hand maps the base itself
    alone = build_and_map(settings)
    assert isinstance(alone, LayeredIndex) and alone.base is not first and alone.version == third.version


def test_shared_builder_rebuilds_in_full_for_a_new_full_snapshot_or_when_layers_are_off(tmp_path: Path) -> None:
    hot = sample_hotlists(tmp_path)
    settings = HotlistSettings(dir=str(hot), cache_dir=str(tmp_path / "cache"))
    first = build_and_map(settings)
    write_snapshot(hot, "WANTED", [entry("W-1", "1-ONE-111")], seq=60)
    again = build_and_map(settings, first)
    assert isinstance(again, HotlistIndex) and again.version == load_index(settings).version
    off = HotlistSettings(dir=str(hot), cache_dir=str(tmp_path / "cache2"), layer_max_fraction=0)
    base = build_and_map(off)
    write_snapshot(hot, "WANTED", [{"op": "delete", "entry_id": "W-1"}], seq=61, kind="delta")
    assert isinstance(build_and_map(off, base), HotlistIndex)


def test_watcher_swaps_in_a_layer_and_retires_the_old_version_off_the_flow_thread(tmp_path: Path) -> None:
    hot = sample_hotlists(tmp_path)
    settings = HotlistSettings(dir=str(hot), cache_dir=str(tmp_path / "cache"))
    holder = IndexHolder(build_and_map(settings))
    first = holder.current
    watcher = HotlistWatcher(settings, holder)
    write_snapshot(hot, "WANTED", [{"op": "upsert", **entry("W-7", "7-SEV-777")}], seq=70, kind="delta")
    assert watcher.check() is True
    assert isinstance(holder.current, LayeredIndex) and holder.current.base is first
    assert watcher.retired is first
    assert [m.entry_id for m in holder.current.probe("7SEV777", None, NOON)] == ["W-7"]
    bad = write_snapshot(
        hot, "WANTED", [{"op": "upsert", **entry("W-8", "8-EIG-888", priority="x")}], seq=71, kind="delta"
    )
    live = holder.current.version
    assert watcher.check() is False
    assert holder.current.version == live and str(bad) in (watcher.last_error or "")
