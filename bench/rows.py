"""The benchmark rows (DESIGN section 9). Each returns a dict of figures.

Every row works on the same generated reads and hotlist (see :class:`BenchData`).
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSink, TestingSource, run_main

from bench.generate import sample_hot_plates, write_snapshot
from bench.steal import StealMonitor, less_steal
from feblam.config import HotlistSettings, KafkaSettings, Settings, SinkSettings, SourceSettings, replace
from feblam.kafka import produce_waiting
from feblam.model import PayloadBatch
from flows.pipeline import LONG_GAP, FlowStats, build_flow
from matchers.build import build_index
from matchers.index import HotlistIndex, IndexHolder
from matchers.normalize import country_code, plate_key
from matchers.refresh import open_live_index
from matchers.snapshot import load_hotlists
from sources.simulator import VENDORS, ReadGenerator
from sources.vendors import DECODERS, PARSERS, make_read

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


def prepare(cache: Path, reads: int, hotlist_size: int, hit_rate: float, seed: int, *, naive: bool = False) -> BenchData:
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


# ---------------------------------------------------------------- in memory


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
    def __init__(self, items: list[PayloadBatch], repeat_until: threading.Event | None) -> None:
        self._items = items
        self._i = 0
        self._repeat_until = repeat_until

    def next_batch(self) -> list[Any]:
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

    def __init__(self, payloads: dict[str, list[bytes]], repeat_until: threading.Event | None = None) -> None:
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
        return _MemoryPartition(self.items, self.repeat_until)


def feblam_memory(data: BenchData, holder: IndexHolder | None = None) -> Figures:
    holder = holder or IndexHolder(data.index)
    hits, dead = CountSink(), CountSink()
    stats = FlowStats()
    settings = Settings().without_dedup()
    flow = build_flow(settings, MemorySource(data.payloads), hits, deadletter=dead,
                      holder=holder, stats=stats, flow_id="bench_feblam")
    wall, cpu, _ = _timed(lambda: run_main(flow))
    return _figures("feblam-memory", stats.reads, wall, cpu, hits=hits.count, deadletter=dead.count)


def ceiling_loop(index: HotlistIndex, payloads: dict[str, list[bytes]]) -> int:
    """A bare Python loop: decode + normalise + probe, the same functions as the flow."""
    hits = 0
    for vendor, items in payloads.items():
        parse = PARSERS[vendor]
        probe = index.probe
        for payload in items:
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
            return DECODERS[item[0]](item[1])
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


# ---------------------------------------------------------------- index


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def index_build(data: BenchData) -> Figures:
    """Build from the Parquet snapshot in a fresh process, so resident memory growth is the index's own."""
    import subprocess
    import sys

    import orjson

    out = subprocess.run([sys.executable, "-m", "bench.rows", str(data.hot_dir)],  # noqa: S603 - our own module
                         capture_output=True, check=True, timeout=600)
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
    fig = _figures("index-build", 0, wall, cpu, entries=entries,
                   bytes_per_entry=round(grown / max(entries, 1), 1),
                   index_bytes_per_entry=round(index.nbytes() / max(entries, 1), 1),
                   peak_rss_gib=round(psutil.Process().memory_info().rss / 2**30, 2))
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


def _flow_during(payloads: dict[str, list[bytes]], holder: IndexHolder, settings: HotlistSettings,
                 change: Callable[[], None], name: str, **extra: Any) -> Figures:
    """Run the feblam-memory flow while another thread changes the snapshots, rebuilds (as the job's
    watcher does: :func:`matchers.refresh.shared_load` over the live version) and swaps.

    The flow repeats its reads until half a second after the swap; ``max_stall_ms``
    is the longest time between the ends of two consecutive batches.
    """
    from matchers.refresh import shared_load

    stop = threading.Event()
    swapped: dict[str, Any] = {}
    phases: dict[str, float] = {}

    def refresh() -> None:
        time.sleep(0.5)
        try:
            change()
            t0 = time.perf_counter()
            new = shared_load(settings, holder.current, phases)
            holder.swap(new)
            swapped["seconds"] = time.perf_counter() - t0
            swapped["index"] = new
        except Exception as exc:  # noqa: BLE001 - reported in the figures
            swapped["error"] = repr(exc)
        finally:
            time.sleep(0.5)
            stop.set()

    stats = FlowStats()
    settings_flow = Settings().without_dedup()
    flow = build_flow(settings_flow, MemorySource(payloads, repeat_until=stop), CountSink(),
                      deadletter=CountSink(), holder=holder, stats=stats, flow_id=f"bench_{name.replace('-', '_')}")
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
    extra["max_stall_less_steal_ms"] = round(less_steal(stats.long_gaps, steal, min(stats.max_batch_gap, LONG_GAP) * 1000), 1)
    extra["steal_in_max_stall_ms"] = round(steal.steal_ms(stats.max_gap_wall - stats.max_batch_gap, stats.max_gap_wall), 1)
    extra["longest_stalls"] = [[round(g * 1000, 1), round(end, 3), _phase_of(end, phases)]
                               for g, end in sorted(stats.long_gaps, reverse=True)[:5]]
    if {"start", "built", "mapped"} <= set(phases):
        extra["child_build_seconds"] = round(phases["built"] - phases["start"], 2)
        extra["open_seconds"] = round(phases["mapped"] - phases["built"], 2)
    new = swapped.get("index")
    return _figures(name, stats.reads, wall, cpu, entries=len(holder.current),
                    max_stall_ms=round(stats.max_batch_gap * 1000, 1), batches=stats.batches,
                    swap_seconds=round(swapped.get("seconds", 0.0), 2),
                    new_version=new.version if new is not None else None,
                    max_stall_at=_phase_of(stats.max_gap_wall, phases), max_stall_end=round(stats.max_gap_wall, 3),
                    error=swapped.get("error"), **extra)


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
            f"entry_id,plate,category,priority,action\nSWAP-{stamp},9-SWP-{stamp[-3:]},wanted,2,intercept\n")

    return _flow_during(data.payloads, holder, settings, change, "index-swap")


def index_delta(data: BenchData, cache: Path, rows: int = 10_000) -> Figures:
    """The flow runs on the mapped M-entry version while a delta of ``rows`` rows (at most M/10) is applied.

    The delta upserts existing entries with new plates (40 %), deletes entries
    (20 %) and adds new ones (40 %). The full version it layers over is built and
    mapped before the flow starts (the index-swap row measures that).
    """
    import numpy as np

    from bench.generate import plates
    from matchers.index import LayeredIndex
    from matchers.refresh import shared_load

    work = cache / "delta-hotlists"
    _copy_hotlists(data, work)
    settings = HotlistSettings(dir=str(work), cache_dir=str(index_cache()))
    base = shared_load(settings)
    holder = IndexHolder(base)
    rows = min(rows, max(10, data.hotlist_size // 10))
    rng = np.random.default_rng(int(time.time()))
    n_up, n_del = rows * 4 // 10, rows * 2 // 10
    n_new = rows - n_up - n_del
    existing = rng.choice(data.hotlist_size, size=n_up + n_del, replace=False)
    ids = [f"N{i:09d}" for i in existing] + [f"D{i:09d}" for i in range(n_new)]
    new_plates, new_cc = plates(rows, rng)
    op_col = ["upsert"] * n_up + ["delete"] * n_del + ["upsert"] * n_new
    table = pa.table({
        "op": op_col, "entry_id": ids, "plate": new_plates, "country": new_cc,
        "category": ["wanted"] * rows, "priority": pa.array([2] * rows, pa.int8()), "action": ["intercept"] * rows,
    })

    def change() -> None:
        pq.write_table(table, work / "NATIONAL" / "000002-delta.parquet")

    fig = _flow_during(data.payloads, holder, settings, change, "index-delta", delta_rows=rows)
    live = holder.current
    found = live.probe(plate_key(new_plates[rows - 1].as_py()), country_code(new_cc[rows - 1].as_py()), datetime.now(UTC))
    fig.update(layered=isinstance(live, LayeredIndex),
               base_reused=isinstance(live, LayeredIndex) and live.base is base,
               new_entry_found=any(m.entry_id == ids[-1] for m in found))
    return fig


# ---------------------------------------------------------------- Kafka


class KafkaBench:
    """The local broker with the generated reads on one topic per vendor."""

    def __init__(self, data: BenchData, partitions: int = 2) -> None:
        from sources.broker import EmbeddedBroker

        self.data = data
        self.broker = EmbeddedBroker().start()
        self.prefix = f"bench{os.getpid()}"
        self.topics = {v: f"{self.prefix}.{v}" for v in VENDORS}
        self.broker.create_topics([*self.topics.values(), f"{self.prefix}.hits", f"{self.prefix}.dlq"], partitions)
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": self.broker.address, "linger.ms": 20, "batch.num.messages": 10000})
        for v, items in data.payloads.items():
            for payload in items:
                produce_waiting(p, self.topics[v], payload)
        p.flush(60)
        self.kafka = KafkaSettings(brokers=self.broker.address, poll_timeout_ms=20)
        self.sources = tuple(SourceSettings(t, v) for v, t in self.topics.items())

    def close(self) -> None:
        self.broker.stop()

    def settings(self) -> Settings:
        return replace(Settings().without_dedup(), kafka=self.kafka, sources=self.sources,
                       sinks=(SinkSettings("hits", topic=f"{self.prefix}.hits"),))


def feblam_kafka(kb: KafkaBench) -> Figures:
    from sinks.build import build_sinks
    from sources.kafka import KafkaReadSource

    settings = kb.settings()
    stats = FlowStats()
    flow = build_flow(settings, KafkaReadSource(kb.kafka, kb.sources, limit=kb.data.reads), sinks=build_sinks(settings),
                      deadletter=TestingSink([]), holder=IndexHolder(kb.data.index), stats=stats, flow_id="bench_fk")
    wall, cpu, _ = _timed(lambda: run_main(flow))
    return _figures("feblam-kafka", stats.reads, wall, cpu, hits=stats.hits)


def ceiling_kafka(kb: KafkaBench) -> Figures:
    from confluent_kafka import Consumer, TopicPartition

    def run() -> int:
        c = Consumer({"bootstrap.servers": kb.broker.address, "group.id": f"ceil-{time.monotonic_ns()}",
                      "enable.auto.commit": False, "enable.partition.eof": False})
        parts = []
        for v, t in kb.topics.items():
            md = c.list_topics(t, timeout=10)
            parts += [(v, TopicPartition(t, p, 0)) for p in md.topics[t].partitions]
        c.assign([tp for _, tp in parts])
        vendor_of = {t: v for v, t in kb.topics.items()}
        want = kb.data.reads
        n = 0
        while n < want:
            for m in c.consume(BATCH, 0.5):
                if m.error() is not None:
                    continue
                n += 1
                try:
                    PARSERS[vendor_of[str(m.topic())]](m.value() or b"")
                except ValueError:
                    pass
        c.close()
        return n

    wall, cpu, n = _timed(run)
    return _figures("ceiling-kafka", n, wall, cpu)


def naive_kafka(kb: KafkaBench, naive: NaiveIndex) -> Figures:
    from bytewax.connectors.kafka import KafkaSource

    flow = Dataflow("bench_naive_kafka")
    msgs = op.input("inp", flow, KafkaSource([kb.broker.address], list(kb.topics.values()), tail=False))
    vendor_of = {t: v for v, t in kb.topics.items()}
    def vendor_payload(m: Any) -> tuple[str, bytes] | None:
        if not hasattr(m, "topic"):  # a KafkaError item of the stock source
            return None
        return (vendor_of[m.topic], m.value)

    items = op.filter_map("vendor", msgs, vendor_payload)
    out: list[Any] = []
    op.output("out", naive_steps(items, naive), TestingSink(out))
    wall, cpu, _ = _timed(lambda: run_main(flow))
    return _figures("naive-kafka", kb.data.reads, wall, cpu, hits=len(out))


def feblam_kafka_latency(data: BenchData, rate: float, seconds: float, cache: Path) -> Figures:
    """Publish at a fixed rate while ``feblam run`` (a subprocess) turns reads into hits, on a broker of its own."""
    from sources.broker import EmbeddedBroker

    broker = EmbeddedBroker().start()
    try:
        return _latency(broker, data, rate, seconds, cache)
    finally:
        broker.stop()


def _latency(broker: Any, data: BenchData, rate: float, seconds: float, cache: Path) -> Figures:
    import subprocess
    import sys
    from types import SimpleNamespace

    import orjson
    from confluent_kafka import Consumer, Producer, TopicPartition

    kb = SimpleNamespace(broker=broker, data=data, prefix=f"lat{os.getpid()}")

    prefix = f"{kb.prefix}.lat{int(time.time())}"
    topics = {v: f"{prefix}.{v}" for v in VENDORS}
    hits_topic = f"{prefix}.hits"
    kb.broker.create_topics([*topics.values(), hits_topic, f"{prefix}.dlq"], partitions=2)
    hot = [(e[0], e[1]) for e in _hot_from_index(kb.data.index, 500)]
    cfg = cache / "latency.toml"
    sources = "".join(f'[[sources]]\ntopic = "{t}"\nvendor = "{v}"\n' for v, t in topics.items())
    cfg.write_text(
        f'[kafka]\nbrokers = "{kb.broker.address}"\npoll_timeout_ms = 5\nfetch_wait_ms = 5\nbatch_size = 2000\nlinger_ms = 1\n'
        f"{sources}"
        f'[hotlists]\ndir = "{kb.data.hot_dir}"\ncache_dir = "{index_cache()}"\npoll_seconds = 3600\n'
        f'[dedup]\nwindow_seconds = 0\n[deadletter]\ntopic = "{prefix}.dlq"\n'
        f'[[sinks]]\nname = "hits"\ntopic = "{hits_topic}"\n[logging]\nlevel = "warning"\nformat = "json"\n[http]\nport = 0\n'
    )
    job = subprocess.Popen([sys.executable, "-m", "feblam.cli", "run", "--config", str(cfg)],  # noqa: S603
                           stdout=subprocess.DEVNULL, stderr=(cache / "latency-job.log").open("wb"))
    cons = Consumer({"bootstrap.servers": kb.broker.address, "group.id": f"lat-{time.monotonic_ns()}",
                     "enable.auto.commit": False, "enable.partition.eof": False,
                     "fetch.wait.max.ms": 5, "fetch.error.backoff.ms": 5})  # a dispatch console polls tightly
    cons.assign([TopicPartition(hits_topic, p, 0) for p in range(2)])
    latencies: list[float] = []
    stop = threading.Event()
    clock: dict[str, float] = {}

    def consume() -> None:
        while not stop.is_set():
            for m in cons.consume(500, 0.01):
                if m.error() is None:
                    got = time.time()
                    ts = datetime.fromisoformat(orjson.loads(m.value() or b"{}")["read"]["ts"]).timestamp()
                    if "start" in clock:  # measured phase: due time = start + (capture time - base)
                        offset = ts - clock["base"]
                        if 0 <= offset <= seconds + 1:
                            latencies.append((got - clock["start"] - offset) * 1000)
                    else:  # warm-up: capture time is the wall clock
                        latencies.append((got - ts) * 1000)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    # Warm-up: hotlisted reads on every partition of every topic until hits flow
    # (the first hits wait for the job to start and for topic metadata).
    gen = ReadGenerator(hot, hit_rate=1.0, seed=5)
    prod = Producer({"bootstrap.servers": kb.broker.address, "linger.ms": 5, "queue.buffering.max.messages": 1_000_000})
    deadline = time.time() + 120
    while len(latencies) < 20 and time.time() < deadline:
        for v, t in topics.items():
            for part in range(2):
                prod.produce(t, value=gen.next(v, now=True)[0], partition=part)
        prod.flush(5)
        time.sleep(0.1)
    time.sleep(1.0)
    # The whole schedule is generated up front (read i is due at start + i/rate, and carries
    # that capture time), so the load generator costs almost nothing while it runs and a
    # late send counts as latency (no coordinated omission).
    gen = ReadGenerator(hot, hit_rate=kb.data.expected_hot / max(kb.data.reads, 1) or 0.005, seed=6)
    base = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    total = int(rate * seconds)
    vendors = list(VENDORS)
    schedule = [(topics[vendors[i % 3]], gen.next(vendors[i % 3], ts=base + timedelta(seconds=i / rate))[0])
                for i in range(total)]
    import psutil as _ps

    gc.collect()
    gc.freeze()  # the measuring process must not pause for a full collection mid-run
    watched = {"job": _ps.Process(job.pid), "broker": _ps.Process(kb.broker.proc.pid), "bench": _ps.Process()}
    cpu0 = {k: sum(p.cpu_times()[:2]) for k, p in watched.items()}
    latencies.clear()
    clock["base"] = base.timestamp()
    clock["start"] = time.time()
    started = time.perf_counter()
    sent = 0
    for i, (topic, value) in enumerate(schedule):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0.001:
            prod.poll(0)
            time.sleep(delay)
        produce_waiting(prod, topic, value, wait=0.001)
        sent += 1
    send_seconds = time.perf_counter() - started
    prod.flush(30)
    flush_seconds = time.perf_counter() - started - send_seconds
    offered = sent / send_seconds
    cpu = {k: round((sum(p.cpu_times()[:2]) - cpu0[k]) / (send_seconds + flush_seconds), 2) for k, p in watched.items()}
    time.sleep(2.0)
    stop.set()
    reader.join(timeout=5)
    cons.close()
    job.terminate()
    try:
        job.wait(timeout=30)
    except subprocess.TimeoutExpired:
        job.kill()
    gc.unfreeze()
    lat = sorted(latencies)
    p50 = statistics.median(lat) if lat else None
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
    return {
        "name": "feblam-kafka-latency", "reads": sent, "seconds": round(seconds, 2),
        "reads_per_s": round(offered, 1), "cpu_seconds": None, "offered_rate": rate,
        "hits": len(lat), "p50_ms": round(p50, 2) if p50 is not None else None,
        "p99_ms": round(p99, 2) if p99 is not None else None,
        "max_ms": round(lat[-1], 2) if lat else None,
        # the distribution, for the plot: the latency at every whole percentile 0..100
        "percentiles_ms": [round(lat[min(len(lat) - 1, int(len(lat) * q / 100))], 2) for q in range(101)] if lat else [],
        "flush_seconds": round(flush_seconds, 2),
        "cores_used": cpu,
    }


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


def _hot_from_index(index: HotlistIndex, k: int) -> list[tuple[str, str | None]]:
    step = max(1, len(index) // k)
    out = []
    for row in range(0, len(index), step):
        e = index.entry(row)
        if not e.is_pattern:
            out.append((e.plate, e.country))
    return out[:k]


if __name__ == "__main__":
    import sys

    import orjson

    sys.stdout.write(orjson.dumps(_index_build_child(sys.argv[1])).decode() + "\n")
