"""The ``limit-memory`` row: the least Python that answers the question for the bench's reads.

Parse each payload with orjson (vendor-c: split the line), take the plate and
the time, upper-case and strip the plate, one Bloom probe and one set lookup —
no validation, no normalisation beyond that, no Bytewax. It is the physical
reference beside ``ceiling-memory`` (which calls the flow's own functions and
so cannot show what they cost): ``feblam-memory / limit-memory`` is the share of
the machine's bare speed that the product keeps while doing everything right.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from rbloom import Bloom

Figures = dict[str, Any]


class LimitIndex:
    """One Bloom filter and one Python set of the plain entries' keys."""

    def __init__(self, keys: list[tuple[str, int]]) -> None:
        self.keys = {k for k, _ in keys}
        self.bloom = Bloom(max(len(self.keys), 1), 0.001)
        self.bloom.update(self.keys)


def _a(p: bytes) -> tuple[str, Any]:
    d = orjson.loads(p)
    return d["plate"]["text"], d["captured_at"]


def _b(p: bytes) -> tuple[str, Any]:
    d = orjson.loads(p)
    return d["Plate"], d["TimestampMs"]


def _c(p: bytes) -> tuple[str, Any]:
    parts = p.split(b";")
    return parts[2].decode(), parts[1]


def _canonical(p: bytes) -> tuple[str, Any]:
    d = orjson.loads(p)
    return d["plate_raw"], d["ts"]


PLATE_AND_TIME: dict[str, Callable[[bytes], tuple[str, Any]]] = {
    "vendor-a": _a,
    "vendor-b": _b,
    "vendor-c": _c,
    "canonical": _canonical,
}


def limit_loop(index: LimitIndex, payloads: dict[str, list[bytes]]) -> int:
    bloom, keys = index.bloom, index.keys
    hits = 0
    for vendor, items in payloads.items():
        take = PLATE_AND_TIME[vendor]
        for payload in items:
            try:
                plate, _ts = take(payload)
            except Exception:  # noqa: BLE001, S112 - no validation: a bad payload is skipped
                continue
            key = plate.upper().strip()
            if key in bloom and key in keys:
                hits += 1
    return hits


def limit_memory(index: LimitIndex, payloads: dict[str, list[bytes]], reads: int) -> Figures:
    from bench.data import _figures

    c0, t0 = time.process_time(), time.perf_counter()
    hits = limit_loop(index, payloads)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return _figures("limit-memory", reads, wall, cpu, hits=hits)
