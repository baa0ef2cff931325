"""The in-memory rows: ``feblam-memory`` (the product's flow), ``ceiling-memory`` (its functions in a bare
loop) and ``naive-memory`` (the obvious Bytewax flow). ``limit-memory`` is :mod:`bench.limit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from bench.data import BATCH, BenchData, CountSink, Figures, MemorySource, _figures, _timed
from feblam import metrics
from feblam.config import CloneSettings, Settings, replace
from flows.pipeline import FlowStats, build_flow, screened
from matchers.index import HotlistIndex, IndexHolder
from matchers.normalize import country_code, plate_key
from sources.simulator import ReadGenerator
from sources.vendors import VENDORS, make_read

#: Where the simulator's camera prefixes stand (city centres and two motorways), for the clone row's register.
PLACES = {
    "CAM-BXL-": (50.8467, 4.3525),
    "CAM-LIE-": (50.6326, 5.5797),
    "CAM-ANT-": (51.2194, 4.4025),
    "E40-KM": (50.88, 3.90),
    "E19-KM": (51.05, 4.45),
    "CAM-GNT-": (51.0543, 3.7174),
}


def camera_register(cache: Path) -> Path:
    """A register of the simulator's cameras (``[clones] cameras``), each a few hundred metres from its city's."""
    path = cache / "cameras.csv"
    lines = ["camera_id,lat,lon"]
    for i, camera in enumerate(ReadGenerator([("1ABC123", "BE")]).cameras):
        prefix = next(p for p in PLACES if camera.startswith(p))
        lat, lon = PLACES[prefix]
        lines.append(f"{camera},{lat + (i % 7) * 0.004:.5f},{lon + (i % 5) * 0.006:.5f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def feblam_memory(
    data: BenchData, holder: IndexHolder | None = None, *, dedup: bool = False, clones: Path | None = None
) -> Figures:
    """The FEBLAM dataflow fed from memory; duplicate suppression off (every hit counted, as the other rows
    count them) unless ``dedup`` (the ``feblam-memory-dedup`` row: the default 300 s window, its keyed state);
    with ``clones`` (a camera register), the clone check on (the ``feblam-memory-clones`` row)."""
    holder = holder or IndexHolder(data.index)
    hits, dead = CountSink(), CountSink()
    stats = FlowStats()
    settings = Settings() if dedup else Settings().without_dedup()
    if clones is not None:
        settings = replace(settings, clones=CloneSettings(enabled=True, cameras=str(clones)))
    flow = build_flow(
        settings, MemorySource(data.payloads), hits, deadletter=dead, holder=holder, stats=stats, flow_id="bench_feblam"
    )
    clones_before = metrics.CLONE_HITS._value.get()
    wall, cpu, _ = _timed(lambda: run_main(flow))
    name = "feblam-memory-clones" if clones is not None else "feblam-memory-dedup" if dedup else "feblam-memory"
    return _figures(
        name,
        stats.reads,
        wall,
        cpu,
        hits=hits.count,
        deadletter=dead.count,
        suppressed=stats.suppressed,
        clone_hits=int(metrics.CLONE_HITS._value.get() - clones_before) if clones is not None else None,
    )


def ceiling_loop(index: HotlistIndex, payloads: dict[str, list[bytes]]) -> int:
    """A bare Python loop: screen, decode + normalise + probe, the same functions as the flow."""
    hits = 0
    for vendor, items in payloads.items():
        parse = VENDORS[vendor].parse
        probe = index.probe
        for start in range(0, len(items), BATCH):
            chunk = items[start : start + BATCH]
            hits += _full_path(parse, probe, [chunk[i] for i in screened(vendor, chunk, index)])
    return hits


def _full_path(parse: Any, probe: Any, payloads: list[bytes]) -> int:
    """Decode, normalise and probe the payloads the screen leaves; the hits found."""
    hits = 0
    for payload in payloads:
        try:
            t = parse(payload)
        except ValueError:
            continue
        key = plate_key(t.plate_raw)
        if not key:
            continue
        if probe(key, country_code(t.country_raw), t.ts):
            make_read(t)
            hits += 1
    return hits


def ceiling_memory(data: BenchData) -> Figures:
    wall, cpu, hits = _timed(lambda: ceiling_loop(data.index, data.payloads))
    return _figures("ceiling-memory", data.reads, wall, cpu, hits=hits)


class NaiveIndex:
    """What one would write first: pybloom-live, then a Python dict of exact keys."""

    def __init__(self, entries: list[tuple[str, int]]) -> None:
        from pybloom_live import BloomFilter

        keys: dict[str, list[int]] = {}
        for key, row in entries:
            keys.setdefault(key, []).append(row)
        self.keys = keys
        self.bloom = BloomFilter(capacity=max(len(keys), 1) + 1, error_rate=0.001)
        for key in keys:
            self.bloom.add(key)


def naive_steps(flow_input: Any, naive: NaiveIndex) -> Any:
    def decode(item: tuple[str, bytes]) -> Any:
        try:
            return VENDORS[item[0]].decode(item[1])
        except ValueError:
            return None

    decoded = op.filter_map("decode", flow_input, decode)
    normalised = op.map("normalize", decoded, lambda r: (r, plate_key(r.plate_raw), country_code(r.country_raw)))
    maybe = op.filter("bloom", normalised, lambda x: x[1] in naive.bloom)
    return op.filter_map("lookup", maybe, lambda x: (x[0], naive.keys[x[1]]) if x[1] in naive.keys else None)


def naive_memory(data: BenchData, naive: NaiveIndex) -> Figures:
    flow = Dataflow("bench_naive")
    inp = op.input("inp", flow, TestingSource(data.interleaved()))
    out: list[Any] = []
    op.output("out", naive_steps(inp, naive), TestingSink(out))
    wall, cpu, _ = _timed(lambda: run_main(flow))
    return _figures("naive-memory", data.reads, wall, cpu, hits=len(out))
