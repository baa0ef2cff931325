"""The batch pre-check: the fuzzy codes it packs are the per-read functions' codes, and it never leaves out
a plate the index could match."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchers.batch import MAX_WIDTH, exact_codes, fuzzy_codes, needs_probe
from matchers.build import build_index
from matchers.keycode import PACKED_MAX_LEN, key_code
from matchers.normalize import fuzzy_key, plate_key
from matchers.snapshot import load_hotlists
from matchers.wordfilter import build_word_filter, word_filter_has
from tests.support.hotlists import entry, write_snapshot

plates = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -.·/\t", max_size=30),
    st.text(max_size=14),  # any Unicode: left to the per-read path
    st.sampled_from(
        ["1-abc-123", "", "---", "ÄBC-123", "1АВС123", "12345678901", "123456789012", "o0Q-d", "x" * 40, "A\x00B1"]
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(plates, max_size=40))
def test_fuzzy_codes_are_the_per_read_codes(batch: list[str]) -> None:
    codes, other = fuzzy_codes(batch)
    assert codes.shape == other.shape == (len(batch),)
    for plate, code, left in zip(batch, codes.tolist(), other.tolist(), strict=True):
        key = plate_key(plate)
        covered = plate.isascii() and 0 < len(key) <= PACKED_MAX_LEN and len(plate) <= MAX_WIDTH
        assert left == (not covered), plate
        if covered:
            assert code == key_code(fuzzy_key(key)), plate


@settings(max_examples=300, deadline=None)
@given(st.lists(plates, max_size=40))
def test_exact_codes_are_the_per_read_key_codes(batch: list[str]) -> None:
    codes, other = exact_codes(batch)
    for plate, code, left in zip(batch, codes.tolist(), other.tolist(), strict=True):
        key = plate_key(plate)
        assert left == (not (plate.isascii() and 0 < len(key) <= PACKED_MAX_LEN and len(plate) <= MAX_WIDTH)), plate
        if not left:
            assert code == key_code(key), plate


@given(st.lists(st.integers(0, 2**62), max_size=300), st.lists(st.integers(0, 2**62), max_size=50))
def test_the_word_filter_has_no_false_negative(stored: list[int], others: list[int]) -> None:
    table = build_word_filter(np.array(stored, dtype=np.int64))
    assert word_filter_has(table, np.array(stored, dtype=np.int64)).all()
    word_filter_has(table, np.array(others, dtype=np.int64))  # any answer, never an error


def test_the_word_filter_false_positive_rate_is_small() -> None:
    rng = np.random.default_rng(5)
    stored = rng.integers(0, 2**60, 100_000)
    table = build_word_filter(stored)
    assert word_filter_has(table, stored).all()  # more codes than one build block: every block is in
    fp = word_filter_has(table, rng.integers(2**60, 2**61, 100_000)).mean()
    assert fp < 0.01, fp


entry_plates = st.sampled_from(["1ABC123", "1-B0B-O8O", "XY12*", "AB?12", "W0RDS", "ZZ99ZZ", "9999999999999Z"])
read_plates = st.one_of(
    plates, st.sampled_from(["1abc123", "1-A8C-I23", "BOBO8O", "xy1299", "ab312", "wordS", "9999999999999z"])
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entry_plates, min_size=1, max_size=6), st.lists(read_plates, max_size=40), st.booleans())
def test_needs_probe_never_leaves_out_a_match(entries: list[str], batch: list[str], fuzzy: bool) -> None:
    rows = [entry(f"E{i}", p) for i, p in enumerate(entries)]
    with tempfile.TemporaryDirectory() as tmp:
        write_snapshot(Path(tmp), "L", rows, fmt="jsonl", toml=f"fuzzy = {str(fuzzy).lower()}\n")
        index = build_index(load_hotlists(Path(tmp)), n_shards=3)
        need = set(needs_probe(index, batch))
        assert need == set(sorted(need)) and all(0 <= i < len(batch) for i in need)
        for i, plate in enumerate(batch):
            if not plate_key(plate):  # "" included: the screen left it to parse
                assert i in need  # the full path words the error or decides
            elif index.probe(plate_key(plate), None, datetime(2026, 11, 28, 12, tzinfo=UTC)):
                assert i in need, plate


def test_patterns_without_re2_give_the_same_answer(monkeypatch: Any) -> None:
    """A pattern list too large for one RE2 expression is checked key by key: the same answers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from matchers.batch import patterns_may_match

    sources = ["2K..9.*", ".*ZZ77", "A.", "XY12.*"]
    plates = ["2-KLM-987", "ab-zz-77", "A1", "AB1", "xy12", "nothing", "ZZ77"]
    fast = patterns_may_match(sources, plates).tolist()

    def refuse(*_a: Any, **_k: Any) -> None:
        msg = "pattern too large"
        raise pa.ArrowInvalid(msg)

    monkeypatch.setattr(pc, "match_substring_regex", refuse)
    assert patterns_may_match(sources, plates).tolist() == fast == [True, True, True, False, True, False, True]
