"""The index rows: ``index-build`` (in a fresh process: ``python -m bench.index_rows DIR``), ``index-swap``
and ``index-delta`` (the flow running while a new version is built and swapped in).
"""

from __future__ import annotations

import gc
import os
import resource
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from bytewax.testing import run_main

from bench.data import BenchData, CountSink, Figures, MemorySource, _figures, _timed, rss
from bench.gaps import LONG_GAP, GapLog
from bench.steal import StealMonitor, less_steal
from feblam.config import HotlistSettings, Settings
from flows.pipeline import FlowStats, build_flow
from matchers.build import build_index
from matchers.index import IndexHolder
from matchers.normalize import country_code, plate_key
from matchers.snapshot import load_hotlists


def index_build(data: BenchData) -> Figures:
    """Build from the Parquet snapshot in a fresh process, so resident memory growth is the index's own."""
    import subprocess
    import sys

    import orjson

    out = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "bench.index_rows", str(data.hot_dir)],
        capture_output=True,
        check=True,
        timeout=600,
    )
    return orjson.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def _index_build_child(hot_dir: str) -> Figures:
    # Warm up first (imports, Arrow and numpy pools), so the growth measured is the index's own.
    build_index(load_hotlists(Path(__file__).resolve().parents[1] / "examples" / "hotlists"))
    pa.default_memory_pool().release_unused()
    gc.collect()
    before = rss()
    wall, cpu, index = _timed(lambda: build_index(load_hotlists(hot_dir)))
    gc.collect()
    pa.default_memory_pool().release_unused()
    grown = rss() - before
    entries = len(index)
    fig = _figures(
        "index-build",
        0,
        wall,
        cpu,
        entries=entries,
        bytes_per_entry=round(grown / max(entries, 1), 1),
        index_bytes_per_entry=round(index.nbytes() / max(entries, 1), 1),
        peak_rss_gib=round(psutil.Process().memory_info().rss / 2**30, 2),
    )
    fig["reads_per_s"] = None
    fig["entries_per_s"] = round(entries / wall, 1)
    return fig


def index_cache() -> Path:
    """Where the rows' shared builds go: the product's default (RAM-backed) cache, or $FEBLAM_BENCH_INDEX_CACHE."""
    from matchers.refresh import cache_dir

    override = os.environ.get("FEBLAM_BENCH_INDEX_CACHE")
    return Path(override) if override else cache_dir(HotlistSettings()) / "bench"


def _copy_hotlists(data: BenchData, work: Path) -> None:
    import shutil

    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(data.hot_dir, work, ignore=shutil.ignore_patterns(".*"))


def _flow_during(
    payloads: dict[str, list[bytes]],
    holder: IndexHolder,
    settings: HotlistSettings,
    change: Callable[[], None],
    name: str,
    load: Callable[..., Any] | None = None,
    keep_old: bool = False,
    **extra: Any,
) -> Figures:
    """Run the feblam-memory flow while another thread changes the snapshots, rebuilds (as the job's
    watcher does: :func:`matchers.refresh.build_and_map` over the live version) and swaps.

    The flow repeats its reads until half a second after the swap; ``max_stall_ms``
    is the longest time between the ends of two consecutive batches.
    """
    stop = threading.Event()
    swapped: dict[str, Any] = {}
    phases: dict[str, float] = {}

    def refresh() -> None:
        time.sleep(0.5)
        try:
            change()
            t0 = time.perf_counter()
            new = (load or build_and_map_timed)(settings, holder.current, phases)
            old = holder.swap(new)
            if keep_old:  # as the job's watcher does: released at its next poll, not in the swap's moment
                swapped["old"] = old
            del old
            swapped["seconds"] = time.perf_counter() - t0
            swapped["index"] = new
        except Exception as exc:  # noqa: BLE001 - reported in the figures
            swapped["error"] = repr(exc)
        finally:
            time.sleep(0.5)
            stop.set()

    stats = FlowStats()
    gaps = GapLog()
    settings_flow = Settings().without_dedup()
    flow = build_flow(
        settings_flow,
        MemorySource(payloads, repeat_until=stop, gaps=gaps),
        CountSink(),
        deadletter=CountSink(),
        holder=holder,
        stats=stats,
        flow_id=f"bench_{name.replace('-', '_')}",
    )
    gc.collect()
    gc.freeze()  # as the job does after start-up: long-lived objects are not scanned by every full collection
    thread = threading.Thread(target=refresh, name=name)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    with StealMonitor(Path(tempfile.gettempdir()) / f"feblam-steal-{os.getpid()}.json") as steal:
        thread.start()
        wall, cpu, _ = _timed(lambda: run_main(flow))
        thread.join()
    gc.unfreeze()
    extra["major_faults"] = resource.getrusage(resource.RUSAGE_SELF).ru_majflt - faults
    # The same longest gap with the hypervisor's steal inside it taken off: the flow's own part.
    extra["max_stall_less_steal_ms"] = round(less_steal(gaps.long_gaps, steal, min(gaps.max_gap, LONG_GAP) * 1000), 1)
    extra["steal_in_max_stall_ms"] = round(steal.steal_ms(gaps.max_gap_wall - gaps.max_gap, gaps.max_gap_wall), 1)
    extra["longest_stalls"] = [
        [round(g * 1000, 1), round(end, 3), _phase_of(end, phases)]
        for g, end in sorted(gaps.long_gaps, reverse=True)[:5]
    ]
    # From the change on (build or publish, map, fault in, swap): the flow's stalls the change can have caused.
    # Gaps under LONG_GAP are not logged one by one, so "none over it" reads as <= LONG_GAP.
    after = [g for g, end in gaps.long_gaps if phases and end >= phases.get("start", float("inf"))]
    extra["max_stall_from_change_ms"] = round(max(after) * 1000, 1) if after else f"<= {LONG_GAP * 1000:.0f}"
    if {"start", "built", "mapped"} <= set(phases):
        extra["child_build_seconds"] = round(phases["built"] - phases["start"], 2)
        extra["open_seconds"] = round(phases["mapped"] - phases["built"], 2)
    new = swapped.get("index")
    return _figures(
        name,
        stats.reads,
        wall,
        cpu,
        entries=len(holder.current),
        max_stall_ms=round(gaps.max_gap * 1000, 1),
        batches=gaps.batches,
        swap_seconds=round(swapped.get("seconds", 0.0), 2),
        new_version=new.version if new is not None else None,
        max_stall_at=_phase_of(gaps.max_gap_wall, phases),
        max_stall_end=round(gaps.max_gap_wall, 3),
        error=swapped.get("error"),
        **extra,
    )


def index_swap(data: BenchData, cache: Path) -> Figures:
    """The feblam-memory flow runs while a new version of M entries is built (child process) and swapped in."""
    work = cache / "swap-hotlists"
    _copy_hotlists(data, work)
    settings = HotlistSettings(dir=str(work), cache_dir=str(index_cache()))
    holder = IndexHolder(data.index)

    def change() -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        (work / "SWAP").mkdir()
        (work / "SWAP" / "1-full.csv").write_text(
            f"entry_id,plate,category,priority,action\nSWAP-{stamp},9-SWP-{stamp[-3:]},wanted,2,intercept\n"
        )

    return _flow_during(data.payloads, holder, settings, change, "index-swap")


def index_publish(data: BenchData, cache: Path) -> Figures:
    """A version built beforehand (as by a builder on another machine) is published into ``versions_dir``
    while the flow runs; ``max_stall_ms`` is the longest stall as the job maps, faults in and swaps it."""
    from matchers.builder import build_shared
    from matchers.refresh import map_published
    from matchers.store import publish

    work = cache / "publish-hotlists"
    _copy_hotlists(data, work)
    versions = index_cache()
    build = HotlistSettings(dir=str(work), cache_dir=str(versions))
    publish(versions, build_shared(build, versions))
    job = HotlistSettings(dir=str(work), versions_dir=str(versions))
    holder = IndexHolder(map_published(job))
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    (work / "SWAP").mkdir()
    (work / "SWAP" / "1-full.csv").write_text(
        f"entry_id,plate,category,priority,action\nSWAP-{stamp},9-SWP-{stamp[-3:]},wanted,2,intercept\n"
    )
    t0 = time.perf_counter()
    built = build_shared(build, versions)  # beforehand: not while the flow runs
    build_seconds = time.perf_counter() - t0

    def load(settings: HotlistSettings, live: Any, phases: dict[str, float]) -> Any:
        phases["start"] = phases["built"] = time.time()
        new = map_published(settings, live)
        phases["mapped"] = time.time()
        return new

    # The version swapped out is released after the flow, as the job's watcher releases it at its next poll.
    return _flow_during(
        data.payloads,
        holder,
        job,
        lambda: publish(versions, built),
        "index-publish",
        load=load,
        keep_old=True,
        built_beforehand_seconds=round(build_seconds, 2),
    )


def index_delta(data: BenchData, cache: Path, rows: int = 10_000) -> Figures:
    """The flow runs on the mapped M-entry version while a delta of ``rows`` rows (at most M/10) is applied.

    The delta upserts existing entries with new plates (40 %), deletes entries
    (20 %) and adds new ones (40 %). The full version it layers over is built and
    mapped before the flow starts (the index-swap row measures that).
    """
    import numpy as np

    from bench.generate import plates
    from matchers.layers import LayeredIndex
    from matchers.refresh import build_and_map

    work = cache / "delta-hotlists"
    _copy_hotlists(data, work)
    settings = HotlistSettings(dir=str(work), cache_dir=str(index_cache()))
    base = build_and_map(settings)
    holder = IndexHolder(base)
    rows = min(rows, max(10, data.hotlist_size // 10))
    rng = np.random.default_rng(int(time.time()))
    n_up, n_del = rows * 4 // 10, rows * 2 // 10
    n_new = rows - n_up - n_del
    existing = rng.choice(data.hotlist_size, size=n_up + n_del, replace=False)
    ids = [f"N{i:09d}" for i in existing] + [f"D{i:09d}" for i in range(n_new)]
    new_plates, new_cc = plates(rows, rng)
    op_col = ["upsert"] * n_up + ["delete"] * n_del + ["upsert"] * n_new
    table = pa.table(
        {
            "op": op_col,
            "entry_id": ids,
            "plate": new_plates,
            "country": new_cc,
            "category": ["wanted"] * rows,
            "priority": pa.array([2] * rows, pa.int8()),
            "action": ["intercept"] * rows,
        }
    )

    def change() -> None:
        pq.write_table(table, work / "NATIONAL" / "000002-delta.parquet")

    fig = _flow_during(data.payloads, holder, settings, change, "index-delta", delta_rows=rows)
    live = holder.current
    found = live.probe(
        plate_key(new_plates[rows - 1].as_py()), country_code(new_cc[rows - 1].as_py()), datetime.now(UTC)
    )
    fig.update(
        layered=isinstance(live, LayeredIndex),
        base_reused=isinstance(live, LayeredIndex) and live.base is base,
        new_entry_found=any(m.entry_id == ids[-1] for m in found),
    )
    return fig


def build_and_map_timed(settings: HotlistSettings, live: Any, phases: dict[str, float]) -> Any:
    """:func:`matchers.refresh.build_and_map`, its two steps timed (wall clock) for the report."""
    from matchers.refresh import build_in_child, map_version

    phases["start"] = time.time()
    directory = build_in_child(settings)
    phases["built"] = time.time()
    index = map_version(directory, live)
    phases["mapped"] = time.time()
    return index


def _phase_of(when: float, phases: dict[str, float]) -> str:
    """Which phase of the rebuild the longest stall ended in (for RESULTS.md)."""
    if not phases or not when:
        return "unknown"
    if when < phases["start"]:
        return "before the rebuild"
    if when < phases.get("built", float("inf")):
        return f"child build (+{when - phases['start']:.1f} s)"
    if when < phases.get("mapped", float("inf")):
        return f"opening: map, load filters, fault in (+{when - phases['built']:.1f} s)"
    return f"after the swap (+{when - phases['mapped']:.2f} s)"


if __name__ == "__main__":
    import sys

    import orjson

    sys.stdout.write(orjson.dumps(_index_build_child(sys.argv[1])).decode() + "\n")
