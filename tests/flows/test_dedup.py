from __future__ import annotations

from datetime import UTC, datetime

from feblam.model import Match, Read
from flows.dedup import DAY_US, Candidate, suppress
from matchers.index import ts_to_us

W = 300_000_000  # 300 s in us


def cand(seconds: float, *entries: str) -> Candidate:
    ts = datetime.fromtimestamp(1_795_867_200 + seconds, tz=UTC)
    read = Read("r", "CAM", "canonical", ts, "AB12")
    matches = tuple(Match("L", e, "stolen_vehicle", 1, "intercept", "exact") for e in entries)
    return Candidate(read, "AB12", None, matches, "v1", ts_to_us(ts))


def run(window: int, *cands: Candidate) -> list[tuple[str, ...] | None]:
    state = None
    out = []
    for c in cands:
        state, (kept, _n) = suppress(state, c, window)
        out.append(None if kept is None else tuple(m.entry_id for m in kept.matches))
    return out


def test_second_hit_within_window_is_suppressed() -> None:
    assert run(W, cand(0, "E1"), cand(120, "E1"), cand(301, "E1")) == [("E1",), None, ("E1",)]


def test_window_compares_with_the_last_emitted_not_the_last_seen() -> None:
    # 0 emitted, 200 suppressed, 400 is 400 s after the last emitted: emitted
    assert run(W, cand(0, "E1"), cand(200, "E1"), cand(400, "E1")) == [("E1",), None, ("E1",)]


def test_out_of_order_reads_are_suppressed_in_either_direction() -> None:
    assert run(W, cand(1000, "E1"), cand(800, "E1"), cand(699, "E1")) == [("E1",), None, ("E1",)]


def test_exactly_window_apart_is_not_within() -> None:
    assert run(W, cand(0, "E1"), cand(300, "E1")) == [("E1",), ("E1",)]


def test_only_the_repeated_entries_are_dropped() -> None:
    assert run(W, cand(0, "E1"), cand(10, "E1", "E2")) == [("E1",), ("E2",)]


def test_window_zero_turns_suppression_off() -> None:
    assert run(0, cand(0, "E1"), cand(0, "E1")) == [("E1",), ("E1",)]


def test_old_entries_are_forgotten() -> None:
    state = None
    state, _ = suppress(state, cand(0, "E1"), W)
    state, _ = suppress(state, cand(2 * DAY_US / 1e6, "E2"), W)
    assert state is not None and set(state) == {("L", "E2")}
