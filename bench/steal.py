"""Hypervisor steal time, sampled beside a benchmark row (Linux ``/proc/stat``).

On a virtual machine the host may stop a virtual CPU for tens of milliseconds;
the flow then makes no progress through no fault of its own. ``python -m
bench.steal OUT`` samples every CPU's steal counter every 5 ms until it is
terminated, then writes ``[[time, [steal_ms per CPU]], ...]`` (only the
samples where a counter moved) to OUT. Resolution: the kernel counts steal in
ticks of 1/USER_HZ (10 ms here).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from feblam.children import die_with_parent

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def read_steal() -> list[float]:
    """Steal time of each CPU so far, in milliseconds."""
    out = []
    with open("/proc/stat", "rb") as fh:
        for line in fh:
            if line.startswith(b"cpu") and line[3:4] != b" ":
                out.append(int(line.split()[8]) * TICK_MS)
    return out


class StealMonitor:
    """Runs the sampler process around a block: ``with StealMonitor(path) as m: ...; m.samples``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples: list[tuple[float, list[float]]] = []
        self.proc: Any = None

    def __enter__(self) -> StealMonitor:
        import subprocess

        self.path.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.steal", str(self.path)], preexec_fn=die_with_parent)  # noqa: S603 - our own module
        time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.path.exists():
            self.samples = [(t, s) for t, s in orjson.loads(self.path.read_bytes())]

    def steal_ms(self, start: float, end: float) -> float:
        """The most steal any one CPU had between two wall-clock times (to the resolution above).

        The kernel books steal when the CPU runs again, so samples up to one tick
        after ``end`` count.
        """
        before = [s for t, s in self.samples if t <= start]
        upto = [s for t, s in self.samples if t <= end + TICK_MS / 1000]
        if not upto:
            return 0.0
        first = before[-1] if before else self.samples[0][1]
        return max((b - a for a, b in zip(first, upto[-1], strict=True)), default=0.0)


def less_steal(gaps: Sequence[tuple[float, float]], monitor: StealMonitor, floor: float) -> float:
    """The longest gap once the steal inside it is taken off (gaps are (seconds, end wall time))."""
    best = floor
    for gap, end in gaps:
        best = max(best, gap * 1000 - monitor.steal_ms(end - gap, end))
    return best


def _sample(out: str) -> None:
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    samples: list[tuple[float, list[float]]] = []
    last: list[float] = []
    while not stop.wait(0.005):
        now = read_steal()
        if now != last:
            samples.append((time.time(), now))
            last = now
    Path(out).write_bytes(orjson.dumps(samples))


if __name__ == "__main__":
    _sample(sys.argv[1])
