from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchers.batch import needs_probe
from matchers.build import build_index
from matchers.index import IndexHolder
from matchers.normalize import fuzzy_key
from matchers.snapshot import load_hotlists
from tests.support.hotlists import EXAMPLES, entry, write_snapshot
from tests.support.reference import as_tuples, reference_matches
from tests.support.strategies import any_keys, countries, display_forms, keys, times, validity

NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)


def index_of(tmp: Path, lists: dict[str, tuple[list[dict], bool]], **kw):
    for list_id, (rows, fuzzy) in lists.items():
        write_snapshot(tmp, list_id, rows, fmt="jsonl", toml=f"fuzzy = {str(fuzzy).lower()}\n")
    return build_index(load_hotlists(tmp), **kw)


def test_exact_ocr_and_country_rules(tmp_path: Path) -> None:
    idx = index_of(
        tmp_path,
        {
            "F": ([entry("F1", "1-BOB-080", country="BE", priority=2)], True),
            "N": ([entry("N1", "1-BOB-080", country="BE", priority=4)], False),
        },
    )
    assert as_tuples(idx.probe("1BOB080", "BE", NOON)) == [("F", "F1", "exact", 2), ("N", "N1", "exact", 4)]
    # OCR variant: only the fuzzy list, one priority step lower
    assert as_tuples(idx.probe("1B0BO8O", "BE", NOON)) == [("F", "F1", "ocr_equivalent", 3)]
    # country disagrees
    assert idx.probe("1BOB080", "NL", NOON) == []
    # unknown read country agrees with everything
    assert len(idx.probe("1BOB080", None, NOON)) == 2


def test_ocr_priority_is_capped_at_5(tmp_path: Path) -> None:
    idx = index_of(tmp_path, {"F": ([entry("F1", "SOS5", priority=5)], True)})
    assert as_tuples(idx.probe("5055", None, NOON)) == [("F", "F1", "ocr_equivalent", 5)]


def test_entry_without_country_matches_any_read_country(tmp_path: Path) -> None:
    idx = index_of(tmp_path, {"L": ([entry("E", "AB12")], True)})
    assert len(idx.probe("AB12", "PL", NOON)) == 1


def test_read_country_unknown_to_index_matches_only_any_country_entries(tmp_path: Path) -> None:
    idx = index_of(tmp_path, {"L": ([entry("E", "AB12", country="BE"), entry("F", "AB12")], True)})
    assert [m.entry_id for m in idx.probe("AB12", "JP", NOON)] == ["F"]


def test_validity_uses_capture_time(tmp_path: Path) -> None:
    idx = index_of(
        tmp_path,
        {"L": ([entry("E", "AB12", valid_from="2026-11-28T00:00:00Z", valid_until="2026-11-29T00:00:00Z")], True)},
    )
    assert idx.probe("AB12", None, datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC)) == []
    assert len(idx.probe("AB12", None, datetime(2026, 11, 28, tzinfo=UTC))) == 1
    assert idx.probe("AB12", None, datetime(2026, 11, 29, tzinfo=UTC)) == []


def test_patterns(tmp_path: Path) -> None:
    idx = index_of(
        tmp_path,
        {
            "W": (
                [
                    entry("P1", "2-K??-9*", priority=2),
                    entry("P2", "*ZZ77", priority=3),
                    entry("P3", "A?", priority=4),
                ],
                True,
            )
        },
    )
    assert as_tuples(idx.probe("2KLM987", None, NOON)) == [("W", "P1", "pattern", 2)]
    assert as_tuples(idx.probe("2KLM9", None, NOON)) == [("W", "P1", "pattern", 2)]
    assert idx.probe("2KL9", None, NOON) == []
    assert as_tuples(idx.probe("1AZZ77", None, NOON)) == [("W", "P2", "pattern", 3)]
    assert as_tuples(idx.probe("AB", None, NOON)) == [("W", "P3", "pattern", 4)]
    # no OCR equivalence for patterns
    assert idx.probe("2K1M98", None, NOON)[0].entry_id == "P1"
    assert idx.probe("1A2277", None, NOON) == []


def test_one_entry_gives_at_most_one_match(tmp_path: Path) -> None:
    idx = index_of(tmp_path, {"F": ([entry("F1", "OO1")], True)})
    assert len(idx.probe("OO1", None, NOON)) == 1


def test_long_keys_are_exact(tmp_path: Path) -> None:
    idx = index_of(
        tmp_path, {"F": ([entry("F1", "ABCDEFGHIJKLMN")], True), "N": ([entry("N1", "ABCDEFGHIJKLMN")], False)}
    )
    assert len(idx.probe("ABCDEFGHIJKLMN", None, NOON)) == 2
    assert as_tuples(idx.probe("A8CDEFGH1JKLMN", None, NOON)) == [("F", "F1", "ocr_equivalent", 2)]
    assert idx.probe("ABCDEFGHIJKLMX", None, NOON) == []


def test_sample_index_stats() -> None:
    idx = build_index(load_hotlists(EXAMPLES / "hotlists"))
    stats = idx.stats()
    assert stats["entries"] == 16 + 3  # with SIS-NL, mapped from its own export
    assert stats["patterns"] == 2
    assert sum(stats["shards"]["entries"]) == 14 + 3
    assert stats["bloom"]["backend"] == "rbloom"


def test_pybloom_backend_gives_the_same_matches(tmp_path: Path) -> None:
    lists = load_hotlists(EXAMPLES / "hotlists")
    a = build_index(lists, backend="rbloom")
    b = build_index(lists, backend="pybloom", n_shards=5)
    for key in ["1ABC123", "1B0BO8O", "GZ123K", "1NEW001", "2KLM987", "NOPE"]:
        assert as_tuples(a.probe(key, "BE", NOON)) == as_tuples(b.probe(key, "BE", NOON))


def test_holder_swap_is_one_reference(tmp_path: Path) -> None:
    one = index_of(tmp_path / "1", {"L": ([entry("E", "AB12")], True)})
    two = index_of(tmp_path / "2", {"L": ([entry("E", "AB12"), entry("F", "CD34")], True)})
    holder = IndexHolder(one)
    seen = holder.current
    holder.swap(two)
    assert seen is one and holder.current is two and holder.swaps == 1
    assert seen.version != two.version


entries_strategy = st.lists(
    st.tuples(any_keys, countries, st.integers(1, 5), validity(), st.booleans(), st.sampled_from(["A", "B", "C"])),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries_strategy, st.data(), st.booleans())
def test_no_false_negatives_every_entry_found_by_its_own_plate(rows, data, fuzzy_a) -> None:
    """Every entry is found by probing its own plate (any display form) and country, inside its window."""
    fuzzy = {"A": fuzzy_a, "B": True, "C": False}
    by_list: dict[str, list[dict]] = {"A": [], "B": [], "C": []}
    for i, (key, country, prio, (vf, vu), as_pattern, list_id) in enumerate(rows):
        plate = data.draw(display_forms(key))
        if as_pattern and len(key) > 2:
            plate = key[0] + "?" + key[2:-1] + "*"
        by_list[list_id].append(
            entry(
                f"E{i}",
                plate,
                country=country,
                priority=prio,
                valid_from=vf.isoformat() if vf else None,
                valid_until=vu.isoformat() if vu else None,
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        idx = index_of(Path(tmp), {k: (v, fuzzy[k]) for k, v in by_list.items() if v}, n_shards=7)
        for list_id, rows_ in by_list.items():
            for r in rows_:
                i = int(r["entry_id"][1:])
                key, country, _prio, (vf, vu), _p, _l = rows[i]
                ts = vf or (vu - timedelta(seconds=1) if vu else NOON)
                found = {(m.list_id, m.entry_id) for m in idx.probe(key, country, ts)}
                assert (list_id, r["entry_id"]) in found
                assert needs_probe(idx, [key]) == [0]
                # an OCR variant of the plate still finds the entry on fuzzy lists
                if fuzzy[list_id] and "?" not in r["plate"]:
                    variant = fuzzy_key(key)
                    found = {(m.list_id, m.entry_id) for m in idx.probe(variant, country, ts)}
                    assert (list_id, r["entry_id"]) in found


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries_strategy, st.lists(st.tuples(keys, countries, times), min_size=1, max_size=20), st.booleans())
def test_index_agrees_with_the_naive_reference(rows, reads, fuzzy_a) -> None:
    fuzzy = {"A": fuzzy_a, "B": True, "C": False}
    by_list: dict[str, list[dict]] = {"A": [], "B": [], "C": []}
    for i, (key, country, prio, (vf, vu), as_pattern, list_id) in enumerate(rows):
        plate = key if not (as_pattern and len(key) > 2) else "*" + key[1:-1] + "?"
        by_list[list_id].append(
            entry(
                f"E{i}",
                plate,
                country=country,
                priority=prio,
                valid_from=vf.isoformat() if vf else None,
                valid_until=vu.isoformat() if vu else None,
            )
        )
    # reads: random ones plus each entry's own key and an OCR variant of it
    probes = list(reads) + [(k, c, vf or NOON) for k, c, _p, (vf, _vu), _a, _l in rows]
    probes += [(fuzzy_key(k), c, NOON) for k, c, *_ in rows]
    with tempfile.TemporaryDirectory() as tmp:
        idx = index_of(Path(tmp), {k: (v, fuzzy[k]) for k, v in by_list.items() if v}, n_shards=3)
        entries = [idx.entry(r) for r in range(len(idx))]
        fuzzy_lists = {k for k, v in fuzzy.items() if v}
        for key, country, ts in probes:
            found = as_tuples(idx.probe(key, country, ts))
            assert found == reference_matches(entries, fuzzy_lists, key, country, ts)
            if found:  # the hot path probes only what the batch pre-check lets through: never a hidden match
                assert needs_probe(idx, [key]) == [0], key


@pytest.mark.parametrize("n_shards", [1, 2, 31])
def test_shard_count_does_not_change_results(n_shards: int) -> None:
    lists = load_hotlists(EXAMPLES / "hotlists")
    idx = build_index(lists, n_shards=n_shards)
    assert [m.entry_id for m in idx.probe("1ABC123", "BE", NOON)] == ["S-1", "W-1"]


entry_ids = st.text(st.sampled_from("AaB0-_é中"), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ids_l1=st.lists(entry_ids, min_size=1, max_size=30, unique=True),
    ids_l2=st.lists(entry_ids, min_size=1, max_size=30, unique=True),
    asked=st.sets(entry_ids, max_size=12),
)
def test_rows_named_finds_every_row_of_an_entry_id_and_no_other(
    ids_l1: list[str], ids_l2: list[str], asked: set[str]
) -> None:
    """The live changes' look-up by entry id (a binary search in the rows sorted by Arrow) gives exactly the
    rows a scan of every entry id gives, the same id in two lists and non-ASCII ids included."""
    with tempfile.TemporaryDirectory() as d:
        index = index_of(
            Path(d),
            {
                "L1": ([entry(e, f"AB{i:04d}") for i, e in enumerate(ids_l1)], True),
                "L2": ([entry(e, f"CD{i:04d}") for i, e in enumerate(ids_l2)], False),
            },
        )
    asked |= set(ids_l1[:2]) | set(ids_l2[:1])  # some that are there, beside the drawn ones
    expected = sorted(r for r in range(len(index)) if index.entry_id[r].as_py() in asked)
    assert index.rows_named(asked) == expected
    assert {(e.list_id, e.entry_id) for e in index.entries_named({("L1", a) for a in asked})} == {
        ("L1", a) for a in asked if a in ids_l1
    }
