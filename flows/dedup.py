"""Duplicate suppression (DESIGN section 6), as a pure state transition.

State, per plate key: ``{(list_id, entry_id): capture time (us) of the last hit emitted}``.
A match is suppressed when its read's capture time differs from the last one
emitted for the same plate key and entry by less than the window, in either
direction. Entries older than the retention horizon are forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from feblam.model import Clone, Match, Read

DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class Candidate:
    """A read that matched at least one entry, before suppression and routing."""

    read: Read
    key: str
    country: str | None
    matches: tuple[Match, ...]
    index_version: str
    ts_us: int
    appended_ms: int | None = None  # broker append time of the read (Kafka), for the append-to-hit latency
    clone: Clone | None = None  # a clone hit's earlier sighting (flows.clones)


DedupState = dict[tuple[str, str], int]


def suppress(
    state: DedupState | None, cand: Candidate, window_us: int
) -> tuple[DedupState | None, tuple[Candidate | None, int]]:
    """Drop matches seen within the window; returns (new state, (candidate or None, suppressed count))."""
    if window_us <= 0:
        return None, (cand, 0)
    state = dict(state) if state else {}
    ts = cand.ts_us
    keep: list[Match] = []
    for m in cand.matches:
        ident = (m.list_id, m.entry_id)
        last = state.get(ident)
        if last is not None and abs(ts - last) < window_us:
            continue
        state[ident] = ts
        keep.append(m)
    horizon = max(window_us, DAY_US)
    newest = max(state.values())
    state = {k: v for k, v in state.items() if newest - v < horizon} or None
    suppressed = len(cand.matches) - len(keep)
    if not keep:
        return state, (None, suppressed)
    if suppressed:
        cand = replace(cand, matches=tuple(keep))
    return state, (cand, suppressed)
