"""How long the flow went between two batches: the stall the index rows measure.

A :class:`GapLog` is ticked by the benchmark's memory source each time the flow
asks it for the next batch; the time between two ticks is one batch's trip
through the flow, so a stall in the flow (a swap, the GIL held elsewhere) is a
long gap. It lives here, not in the product: the flow carries no hooks for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

LONG_GAP = 0.02  # seconds


@dataclass
class GapLog:
    batches: int = 0
    last_at: float = 0.0
    max_gap: float = 0.0  # seconds between two consecutive batches
    first_wall: float = 0.0  # time.time() of the first batch (cross-process timing)
    last_wall: float = 0.0
    max_gap_wall: float = 0.0  # time.time() at the end of the longest gap
    #: (seconds, time.time() at the end) of every gap over LONG_GAP (the first 1,000)
    long_gaps: list[tuple[float, float]] = field(default_factory=list)

    def tick(self) -> None:
        now = time.perf_counter()
        wall = time.time()
        if not self.first_wall:
            self.first_wall = wall
        self.last_wall = wall
        if self.last_at:
            gap = now - self.last_at
            if gap > self.max_gap:
                self.max_gap = gap
                self.max_gap_wall = wall
            if gap > LONG_GAP and len(self.long_gaps) < 1000:
                self.long_gaps.append((gap, wall))
        self.last_at = now
        self.batches += 1
