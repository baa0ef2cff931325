"""The data every row shares: the generated hotlist and reads, the in-memory source, counting sinks, timing."""

from __future__ import annotations

import gc
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from bench.gaps import GapLog
from bench.generate import sample_hot_plates, write_snapshot
from feblam.config import HotlistSettings
from feblam.model import PayloadBatch
from matchers.index import HotlistIndex
from matchers.refresh import open_live_index
from matchers.snapshot import load_hotlists
from sources.simulator import VENDORS, ReadGenerator

#: The plate-hash key of the processes a bench run starts (``feblam run`` and ``gateway`` refuse the development key).
BENCH_HASH_KEY = f"feblam-bench-{secrets.token_hex(8)}"

BATCH = 1000


Figures = dict[str, Any]


@dataclass
class BenchData:
    """The generated hotlist and reads shared by every row of one run."""

    hot_dir: Path
    index: HotlistIndex
    payloads: dict[str, list[bytes]]  # vendor -> payloads
    expected_hot: int
    hotlist_size: int
    keys: list[tuple[str, int]]  # (entry key, row) of every plain entry, for the naive index

    @property
    def reads(self) -> int:
        return sum(len(v) for v in self.payloads.values())

    def interleaved(self) -> list[tuple[str, bytes]]:
        out = []
        lists = [(v, p) for v, p in self.payloads.items()]
        for i in range(max(len(p) for _, p in lists)):
            for v, p in lists:
                if i < len(p):
                    out.append((v, p[i]))
        return out


def prepare(
    cache: Path, reads: int, hotlist_size: int, hit_rate: float, seed: int, *, naive: bool = False
) -> BenchData:
    hot_dir = cache / f"hotlist-{hotlist_size}"
    path = write_snapshot(hot_dir, hotlist_size, seed=seed)
    table = pq.read_table(path, columns=["plate", "country"])
    hot = sample_hot_plates(table, 2000, seed=seed)
    del table
    index = open_live_index(HotlistSettings(dir=str(hot_dir), shared_build=False), watch=False).current
    assert isinstance(index, HotlistIndex)  # noqa: S101 - a fresh local build is never a layer
    keys: list[tuple[str, int]] = []
    if naive:  # millions of small Python objects: only when the naive and limit rows need them
        for snap in load_hotlists(hot_dir):
            for key in snap.table.column("key").to_pylist():
                keys.append((key, len(keys)))
    gen = ReadGenerator(hot, hit_rate=hit_rate, seed=seed)
    per = reads // len(VENDORS)
    payloads: dict[str, list[bytes]] = {}
    expected = 0
    for v in VENDORS:
        g = gen.batch(v, per + (1 if VENDORS.index(v) < reads % len(VENDORS) else 0))
        payloads[v] = g.payloads
        expected += g.hits
    return BenchData(hot_dir, index, payloads, expected, hotlist_size, keys)


def _figures(name: str, reads: int, wall: float, cpu: float, **extra: Any) -> Figures:
    return {
        "name": name,
        "reads": reads,
        "seconds": round(wall, 4),
        "reads_per_s": round(reads / wall, 1) if wall > 0 else None,
        "cpu_seconds": round(cpu, 4),
        "reads_per_cpu_s": round(reads / cpu, 1) if cpu > 0 else None,
        "p50_ms": None,
        "p99_ms": None,
        **extra,
    }


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, time.process_time() - c0, result


class _CountPartition(StatelessSinkPartition[Any]):
    def __init__(self, counter: list[int]) -> None:
        self.counter = counter

    def write_batch(self, items: list[Any]) -> None:
        self.counter[0] += len(items)


class CountSink(DynamicSink[Any]):
    """Counts what it is given and keeps nothing (a sink that piles up objects slows the GC)."""

    def __init__(self) -> None:
        self.counter = [0]

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountPartition:
        return _CountPartition(self.counter)

    @property
    def count(self) -> int:
        return self.counter[0]


class _MemoryPartition(StatefulSourcePartition[Any, int]):
    def __init__(
        self, items: list[PayloadBatch], repeat_until: threading.Event | None, gaps: GapLog | None = None
    ) -> None:
        self._items = items
        self._i = 0
        self._repeat_until = repeat_until
        self._gaps = gaps

    def next_batch(self) -> list[Any]:
        if self._gaps is not None:
            self._gaps.tick()
        if self._i >= len(self._items):
            if self._repeat_until is None or self._repeat_until.is_set():
                raise StopIteration
            self._i = 0
        item = self._items[self._i]
        self._i += 1
        return [item]

    def snapshot(self) -> int:
        return self._i


class MemorySource(FixedPartitionedSource[Any, int]):
    """Vendor payloads from memory, one item per batch of :data:`BATCH` (like one Kafka poll)."""

    def __init__(
        self, payloads: dict[str, list[bytes]], repeat_until: threading.Event | None = None, gaps: GapLog | None = None
    ) -> None:
        """``gaps``: ticked at every batch the flow takes (the index rows' stall measure)."""
        self.gaps = gaps
        self.items = []
        chunks = {v: [p[i : i + BATCH] for i in range(0, len(p), BATCH)] for v, p in payloads.items()}
        for i in range(max(len(c) for c in chunks.values())):
            for v, c in chunks.items():
                if i < len(c):
                    self.items.append(PayloadBatch(v, "memory", 0, c[i], range(i * BATCH, i * BATCH + len(c[i]))))
        self.repeat_until = repeat_until

    def list_parts(self) -> list[str]:
        return ["memory"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _MemoryPartition:
        return _MemoryPartition(self.items, self.repeat_until, self.gaps)


def rss() -> int:
    return int(psutil.Process().memory_info().rss)
