"""The Kafka rows, on the bundled broker: ``feblam-kafka``, ``ceiling-kafka``, ``naive-kafka`` and
``feblam-kafka-latency`` (``feblam run`` as a subprocess, at a fixed offered rate).
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
import pyarrow as pa
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.testing import TestingSink, run_main

from bench.data import BATCH, BENCH_HASH_KEY, BenchData, Figures, _figures, _timed
from bench.index_rows import index_cache
from bench.memory import NaiveIndex, naive_steps
from feblam.children import die_with_parent
from feblam.config import KafkaSettings, Settings, SinkSettings, SourceSettings, replace
from feblam.kafka import produce_waiting
from feblam.model import PayloadBatch
from flows.pipeline import FlowStats, build_flow
from matchers.index import HotlistIndex, IndexHolder
from sources.simulator import VENDORS, ReadGenerator
from sources.vendors import VENDORS as VENDOR_RECORDS


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
        return replace(
            Settings().without_dedup(),
            kafka=self.kafka,
            sources=self.sources,
            sinks=(SinkSettings("hits", topic=f"{self.prefix}.hits"),),
        )


class LimitedKafkaSource(FixedPartitionedSource[PayloadBatch, int]):
    """The job's Kafka source, ended once this process has read ``limit`` messages (the topics hold exactly those)."""

    def __init__(self, settings: KafkaSettings, sources: tuple[SourceSettings, ...], limit: int) -> None:
        from sources.kafka import KafkaReadSource

        self.stop = threading.Event()
        self.inner = KafkaReadSource(settings, sources, self.stop)
        self.limit = limit
        self.count = 0
        self.lock = threading.Lock()

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> StatefulSourcePartition[PayloadBatch, int]:
        part = self.inner.build_part(step_id, for_part, resume_state)
        outer = self

        class Counted(StatefulSourcePartition[PayloadBatch, int]):
            def next_batch(self) -> list[PayloadBatch]:
                batches = part.next_batch()
                with outer.lock:
                    outer.count += sum(len(b) for b in batches)
                    if outer.count >= outer.limit:
                        outer.stop.set()  # every partition ends at its next poll
                return batches

            def next_awake(self) -> datetime | None:
                return part.next_awake()

            def snapshot(self) -> int:
                return part.snapshot()  # type: ignore[return-value]

            def close(self) -> None:
                part.close()

        return Counted()


def feblam_kafka(kb: KafkaBench) -> Figures:
    from sinks.build import build_sinks

    settings = kb.settings()
    stats = FlowStats()
    flow = build_flow(
        settings,
        LimitedKafkaSource(kb.kafka, kb.sources, kb.data.reads),
        sinks=build_sinks(settings),
        deadletter=TestingSink([]),
        holder=IndexHolder(kb.data.index),
        stats=stats,
        flow_id="bench_fk",
    )
    wall, cpu, _ = _timed(lambda: run_main(flow))
    return _figures("feblam-kafka", stats.reads, wall, cpu, hits=stats.hits)


def ceiling_kafka(kb: KafkaBench) -> Figures:
    from confluent_kafka import Consumer, TopicPartition

    def run() -> int:
        c = Consumer(
            {
                "bootstrap.servers": kb.broker.address,
                "group.id": f"ceil-{time.monotonic_ns()}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
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
                    VENDOR_RECORDS[vendor_of[str(m.topic())]].parse(m.value() or b"")
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


#: The latency row's consumers (the job's, the hits reader's, the in-hop probe's) wait this long at most in a
#: fetch: the embedded broker answers a long poll at its bound, not when data arrives (measured: a hop's p50
#: is about half of it plus 5 ms), so it is short here; on a Kafka that answers on arrival it can be long.
FETCH_WAIT_MS = 5
#: The load generator (the cameras' side) batches 5 ms: unbatched, 20,000 produce requests a second take the
#: embedded broker past its two cores (measured: seconds of latency).
GENERATOR_LINGER_MS = 5
#: The job's hit producer sends each hit at once (the product's default, ``kafka.linger_ms``).
JOB_LINGER_MS = 0


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
    from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, Producer, TopicPartition

    kb = SimpleNamespace(broker=broker, data=data, prefix=f"lat{os.getpid()}")

    prefix = f"{kb.prefix}.lat{int(time.time())}"
    topics = {v: f"{prefix}.{v}" for v in VENDORS}
    hits_topic = f"{prefix}.hits"
    kb.broker.create_topics([*topics.values(), hits_topic, f"{prefix}.dlq"], partitions=2)
    hot = [(e[0], e[1]) for e in _hot_from_index(kb.data.index, 500)]
    cfg = cache / "latency.toml"
    sources = "".join(f'[[sources]]\ntopic = "{t}"\nvendor = "{v}"\n' for v, t in topics.items())
    cfg.write_text(
        f'[kafka]\nbrokers = "{kb.broker.address}"\npoll_timeout_ms = 5\nfetch_wait_ms = {FETCH_WAIT_MS}\nbatch_size = 2000\nlinger_ms = {JOB_LINGER_MS}\n'
        f"{sources}"
        f'[hotlists]\ndir = "{kb.data.hot_dir}"\ncache_dir = "{index_cache()}"\npoll_seconds = 3600\n'
        f'[dedup]\nwindow_seconds = 0\n[deadletter]\ntopic = "{prefix}.dlq"\n'
        f'[[sinks]]\nname = "hits"\ntopic = "{hits_topic}"\n[logging]\nlevel = "warning"\nformat = "json"\n[http]\nport = 0\n'
        f'[privacy]\nhash_key = "{BENCH_HASH_KEY}"\n'
    )
    job = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "feblam.cli", "run", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=(cache / "latency-job.log").open("wb"),
        preexec_fn=die_with_parent,
    )
    cons = Consumer(
        {
            "bootstrap.servers": kb.broker.address,
            "group.id": f"lat-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": FETCH_WAIT_MS,
            "fetch.error.backoff.ms": 5,
        }
    )  # a dispatch console polls tightly
    cons.assign([TopicPartition(hits_topic, p, 0) for p in range(2)])
    latencies: list[float] = []
    out_hop: list[float] = []  # hit produced by the job -> consumed here (the broker out)
    to_produced: list[float] = []  # read due -> its hit produced by the job (the generator, the broker in, the flow)
    stop = threading.Event()
    clock: dict[str, float] = {}

    def consume() -> None:
        while not stop.is_set():
            for m in _arrived(cons):
                if m.error() is None:
                    got = time.time()
                    ts = datetime.fromisoformat(orjson.loads(m.value() or b"{}")["read"]["ts"]).timestamp()
                    if "start" in clock:  # measured phase: due time = start + (capture time - base)
                        offset = ts - clock["base"]
                        if 0 <= offset <= seconds + 1:
                            latencies.append((got - clock["start"] - offset) * 1000)
                            kind, created = m.timestamp()
                            if kind == TIMESTAMP_CREATE_TIME and created > 0:  # the job's sink produced it then
                                out_hop.append((got - created / 1000) * 1000)
                                to_produced.append((created / 1000 - clock["start"] - offset) * 1000)
                    else:  # warm-up: capture time is the wall clock
                        latencies.append((got - ts) * 1000)

    # The broker in: a probe process with the job's consumer settings reads one partition of one read topic
    # and times each read from its produce time (what the job's consumer sees, without the flow).
    probe = subprocess.Popen(  # noqa: S603 - our own module
        [
            sys.executable,
            "-c",
            f"from bench.kafka_rows import probe_hop; probe_hop({kb.broker.address!r}, {topics[VENDORS[0]]!r})",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        preexec_fn=die_with_parent,
    )
    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    # Warm-up: hotlisted reads on every partition of every topic until hits flow
    # (the first hits wait for the job to start and for topic metadata).
    gen = ReadGenerator(hot, hit_rate=1.0, seed=5)
    prod = Producer(
        {
            "bootstrap.servers": kb.broker.address,
            "linger.ms": GENERATOR_LINGER_MS,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
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
    schedule = [
        (topics[vendors[i % 3]], gen.next(vendors[i % 3], ts=base + timedelta(seconds=i / rate))[0])
        for i in range(total)
    ]
    import psutil as _ps

    gc.collect()
    gc.freeze()  # the measuring process must not pause for a full collection mid-run
    watched = {"job": _ps.Process(job.pid), "broker": _ps.Process(kb.broker.proc.pid), "bench": _ps.Process()}
    cpu0 = {k: sum(p.cpu_times()[:2]) for k, p in watched.items()}
    latencies.clear()
    out_hop.clear()
    to_produced.clear()
    if probe.stdin is not None:
        probe.stdin.write(b"start\n")
        probe.stdin.flush()
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
    in_hop = orjson.loads(probe.communicate(b"stop\n", timeout=30)[0] or b"null")
    _end_job(job)
    gc.unfreeze()
    lat = sorted(latencies)
    p50 = statistics.median(lat) if lat else None
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
    return {
        "name": "feblam-kafka-latency",
        "reads": sent,
        "seconds": round(seconds, 2),
        "reads_per_s": round(offered, 1),
        "cpu_seconds": None,
        "offered_rate": rate,
        "hits": len(lat),
        "p50_ms": round(p50, 2) if p50 is not None else None,
        "p99_ms": round(p99, 2) if p99 is not None else None,
        "p99_9_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.999))], 2) if lat else None,
        "max_ms": round(lat[-1], 2) if lat else None,
        # where the time goes: the read's hop in (generator linger + broker, a probe beside the job), the read
        # due -> hit produced (that hop and the flow), the hit's hop out (broker + the reader's fetch)
        "in_hop_ms": in_hop,
        "to_hit_produced_ms": _quantiles(to_produced),
        "out_hop_ms": _quantiles(out_hop),
        "flow_p50_ms": round(statistics.median(to_produced) - in_hop["p50"], 2) if to_produced and in_hop else None,
        "linger_ms": {"generator": GENERATOR_LINGER_MS, "job": JOB_LINGER_MS},
        "fetch_wait_ms": FETCH_WAIT_MS,
        # the distribution, for the plot: the latency at every whole percentile 0..100
        "percentiles_ms": [round(lat[min(len(lat) - 1, int(len(lat) * q / 100))], 2) for q in range(101)]
        if lat
        else [],
        "flush_seconds": round(flush_seconds, 2),
        "cores_used": cpu,
    }


def probe_hop(address: str, topic: str) -> None:
    """The latency row's probe of the broker in (``python -c``): read partition 0 of ``topic`` with the job's
    consumer settings from the line ``start`` on stdin to the line ``stop``, then print the quantiles of
    produce time -> consumed, in ms, as one JSON line."""
    import orjson
    from confluent_kafka import OFFSET_END, TIMESTAMP_CREATE_TIME, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": address,
            "group.id": f"lat-probe-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": FETCH_WAIT_MS,
            "fetch.error.backoff.ms": 5,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    hops: list[float] = []
    state = {"on": False, "stop": False}

    def control() -> None:
        for line in sys.stdin:
            if line.strip() == "start":
                state["on"] = True
            elif line.strip() == "stop":
                break
        state["stop"] = True  # at "stop", or when the bench's end of the pipe closes

    threading.Thread(target=control, daemon=True).start()
    while not state["stop"]:
        msgs = _arrived(consumer)
        got = time.time()
        if state["on"]:
            for m in msgs:
                kind, created = m.timestamp()
                if m.error() is None and kind == TIMESTAMP_CREATE_TIME and created > 0:
                    hops.append((got - created / 1000) * 1000)
    consumer.close()
    sys.stdout.write(orjson.dumps(_quantiles(hops)).decode() + "\n")


def _arrived(consumer: Any) -> list[Any]:
    """What has arrived, or the first message within 10 ms: ``consume(n, timeout)`` would wait for n messages
    or the whole timeout, adding its own wait to the latency it measures."""
    msgs = consumer.consume(1000, 0)
    if msgs:
        return list(msgs)
    m = consumer.poll(0.01)
    return [] if m is None else [m]


def _quantiles(values: list[float]) -> dict[str, float] | None:
    """p50, p99 and p99.9 of ``values`` in ms (None when empty)."""
    if not values:
        return None
    v = sorted(values)
    return {
        q: round(v[min(len(v) - 1, int(len(v) * f))], 2) for q, f in (("p50", 0.5), ("p99", 0.99), ("p99_9", 0.999))
    }


def _hot_from_index(index: HotlistIndex, k: int) -> list[tuple[str, str | None]]:
    step = max(1, len(index) // k)
    out = []
    for row in range(0, len(index), step):
        e = index.entry(row)
        if not e.is_pattern:
            out.append((e.plate, e.country))
    return out[:k]


def change_to_hit(data: BenchData, cache: Path, changes: int = 100, *, retro: bool = True) -> Figures:
    """Milliseconds from publishing a change on the change topic to the first hit that uses it; with the
    automatic retro-scan on (the default, ``change-to-hit``) or off (``change-to-hit-retro-off``).

    ``feblam run`` (a subprocess, the bench's hotlist mapped) reads a canonical
    topic and the change topic on a broker of its own. For each of ``changes``
    new stolen vehicles: publish the change, then a read of that plate every
    20 ms until a hit on the new entry arrives on the hits topic.
    """
    import subprocess
    import sys

    import orjson
    from confluent_kafka import Consumer, Producer, TopicPartition

    from sources.broker import EmbeddedBroker

    name = "change-to-hit" if retro else "change-to-hit-retro-off"
    broker = EmbeddedBroker().start()
    job = None
    try:
        p = f"c2h{os.getpid()}"
        topics = {"reads": f"{p}.canonical", "changes": f"{p}.changes", "hits": f"{p}.hits", "dlq": f"{p}.dlq"}
        broker.create_topics(topics.values())
        list_id = next(iter(i.list_id for i in data.index.lists))
        cfg = cache / "change-to-hit.toml"
        cfg.write_text(
            f'[kafka]\nbrokers = "{broker.address}"\npoll_timeout_ms = 5\nfetch_wait_ms = 5\nlinger_ms = 1\n'
            f'[[sources]]\ntopic = "{topics["reads"]}"\nvendor = "canonical"\n'
            f'[hotlists]\ndir = "{data.hot_dir}"\ncache_dir = "{index_cache()}"\npoll_seconds = 3600\n'
            f'changes_topic = "{topics["changes"]}"\n'
            f'[dedup]\nwindow_seconds = 0\n[deadletter]\ntopic = "{topics["dlq"]}"\n'
            + ("" if retro else "[retro]\nwindow_minutes = 0\n")
            + f'[[sinks]]\nname = "hits"\ntopic = "{topics["hits"]}"\n[logging]\nlevel = "warning"\nformat = "json"\n'
            f"[http]\nport = 0\n"
            f'[privacy]\nhash_key = "{BENCH_HASH_KEY}"\n'
        )
        job = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "feblam.cli", "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=(cache / "change-to-hit-job.log").open("wb"),
            preexec_fn=die_with_parent,
        )
        cons = Consumer(
            {
                "bootstrap.servers": broker.address,
                "group.id": f"c2h-{time.monotonic_ns()}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
                "fetch.error.backoff.ms": 5,
            }
        )
        cons.assign([TopicPartition(topics["hits"], 0, 0)])
        prod = Producer({"bootstrap.servers": broker.address, "linger.ms": 0})

        def read(plate: str, n: int) -> bytes:
            return orjson.dumps(
                {
                    "read_id": f"c2h-{plate}-{n}",
                    "camera_id": "CAM-C2H",
                    "plate_raw": plate,
                    "ts": datetime.now(UTC).isoformat(),
                }
            )

        def wait_hit(entry_id: str, plate: str, deadline: float) -> float | None:
            n = 0
            next_read = 0.0
            while time.time() < deadline:
                if time.time() >= next_read:
                    prod.produce(topics["reads"], value=read(plate, n))
                    prod.poll(0)
                    n += 1
                    next_read = time.time() + 0.02
                for m in cons.consume(100, 0.005):
                    if m.error() is None and entry_id.encode() in (m.value() or b""):
                        return time.time()
            return None

        # warm-up: the job is up, its index mapped and the feed caught up once a first change hits
        warm = wait_hit_after_change(prod, topics["changes"], list_id, "C2H-WARM", "9WARM99", 0, wait_hit, 180)
        if warm is None:
            return _figures(name, 0, 0.0, 0.0, error="the job did not hit the warm-up change in 180 s")
        # The warm-up change went live during the job's catch-up, before its flow started, and its retro-scan
        # child starts with the flow: a change in the first second or two after that takes 0.4-0.7 s (the
        # flow's first batches beside the child's start; measured, bench/RESULTS.md). Steady state is measured.
        time.sleep(2.0)
        lat: list[float] = []
        order: list[tuple[float, int]] = []  # (ms, change number): which changes were slowest
        started = time.perf_counter()
        for i in range(changes):
            ms = wait_hit_after_change(prod, topics["changes"], list_id, f"C2H-{i}", f"8CH{i:04d}", i + 1, wait_hit, 10)
            if ms is not None:
                lat.append(ms)
                order.append((ms, i))
        seconds = time.perf_counter() - started
        cons.close()
        lat.sort()
        return _figures(
            name,
            changes,
            seconds,
            0.0,
            entries=len(data.index),
            changes=changes,
            retro=retro,
            hits_found=len(lat),
            p50_ms=round(lat[len(lat) // 2], 1) if lat else None,
            p90_ms=round(lat[int(len(lat) * 0.9)], 1) if lat else None,
            p99_ms=round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1) if lat else None,
            max_ms=round(lat[-1], 1) if lat else None,
            slowest=[[n, round(ms, 1)] for ms, n in sorted(order, reverse=True)[:3]],
        )
    finally:
        if job is not None:
            _end_job(job)
        broker.stop()


def wait_hit_after_change(
    prod: Any,
    topic: str,
    list_id: str,
    entry_id: str,
    plate: str,
    seq: int,
    wait_hit: Callable[[str, str, float], float | None],
    timeout: float,
) -> float | None:
    """Publish one change; ms until the first hit on it (None if none within ``timeout``)."""
    import orjson

    change = {
        "list_id": list_id,
        "seq": 2_000_000_000 + seq,
        "op": "upsert",
        "entry_id": entry_id,
        "plate": plate,
        "category": "stolen_vehicle",
        "priority": 1,
        "action": "intercept",
    }
    prod.produce(topic, key=f"{list_id}/{entry_id}".encode(), value=orjson.dumps(change))
    prod.flush(5)
    t0 = time.time()
    got = wait_hit(entry_id, plate, t0 + timeout)
    return None if got is None else (got - t0) * 1000


def _end_job(job: Any) -> None:
    import subprocess

    job.terminate()
    try:
        job.wait(timeout=30)
    except subprocess.TimeoutExpired:
        job.kill()


def _added_index(plates: list[str]) -> HotlistIndex:
    """A small index of added stolen-vehicle entries, one per plate (already a key), for the retro rows."""
    from matchers.build import build_index
    from matchers.snapshot import SCHEMA, ListSnapshot

    rows = [
        {
            "entry_id": f"R-{i}",
            "plate": plate,
            "key": plate,
            "country": None,
            "category": "stolen_vehicle",
            "priority": 1,
            "action": "intercept",
            "valid_from": None,
            "valid_until": None,
            "owner": None,
            "note": None,
        }
        for i, plate in enumerate(plates)
    ]
    return build_index(
        [ListSnapshot("RETRO", "retro", True, (), pa.Table.from_pylist(rows, schema=SCHEMA), "x")], n_shards=1
    )


def _scan_settings(brokers: str, topics: dict[str, str]) -> Settings:
    return replace(
        Settings().without_dedup(),
        kafka=KafkaSettings(brokers=brokers),
        sources=tuple(SourceSettings(t, v) for v, t in topics.items()),
    )


def retro_scan(data: BenchData, cache: Path, reads: int = 3_600_000, entries: int = 1000) -> Figures:
    """One hour of reads at 1,000 reads/s on the vendor topics, scanned for ``entries`` added entries.

    Every ``reads // entries``-th read carries one of the added plates (so exactly ``entries``
    retro hits are due); the rest are the generator's random plates. The figure is the scan
    itself (:func:`flows.retro.scan`): reads scanned per second and seconds to the last hit.
    """
    from confluent_kafka import Producer

    from flows.retro import scan
    from sources.broker import EmbeddedBroker

    broker = EmbeddedBroker().start()
    try:
        p = f"retro{os.getpid()}"
        topics = {v: f"{p}.{v}" for v in VENDORS}
        broker.create_topics(topics.values(), partitions=2)
        added_plates = [f"9R{i:05d}X" for i in range(entries)]
        now = datetime.now(UTC)
        start = now - timedelta(seconds=reads / 1000)
        background = ReadGenerator(_hot_from_index(data.index, 100), hit_rate=0.0, seed=21)
        hot = ReadGenerator([(plate, "BE") for plate in added_plates], hit_rate=1.0, seed=22)
        prod = Producer(
            {
                "bootstrap.servers": broker.address,
                "linger.ms": 50,
                "batch.num.messages": 10000,
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        every = max(1, reads // entries)
        vendors = list(VENDORS)
        t0 = time.perf_counter()
        for i in range(reads):
            vendor = vendors[i % 3]
            ts = start + timedelta(milliseconds=i)
            gen = hot if i % every == every // 2 else background
            produce_waiting(prod, topics[vendor], gen.next(vendor, ts=ts)[0], timestamp=int(ts.timestamp() * 1000))
            if i % 100_000 == 0:
                prod.poll(0)
        prod.flush(120)
        publish_seconds = time.perf_counter() - t0
        added = _added_index(added_plates)
        settings = _scan_settings(broker.address, topics)
        c0 = time.process_time()
        result = scan(
            settings, added, since=start - timedelta(seconds=1), until_ms=None, retro_of=added.version, timeout=1800
        )
        cpu = time.process_time() - c0
        return _figures(
            "retro-scan",
            result.reads,
            result.seconds,
            cpu,
            added_entries=entries,
            retro_hits=len(result.hits),
            expected_hits=len(range(every // 2, reads, every)),
            seconds_to_last_hit=round(result.seconds, 2),
            complete=result.complete,
            publish_seconds=round(publish_seconds, 1),
        )
    finally:
        broker.stop()


def retro_stall(data: BenchData, reads: int = 600_000, entries: int = 1000) -> Figures:
    """The stall a retro-scan causes: the feblam-memory flow runs while a scan (a thread of the same
    process, as in the job) reads ``reads`` reads from the broker; ``max_stall_ms`` as in ``index-swap``."""
    from confluent_kafka import Producer

    from bench.index_rows import _flow_during
    from flows.retro import scan_in_background
    from sources.broker import EmbeddedBroker

    broker = EmbeddedBroker().start()
    try:
        topics = {v: f"stall{os.getpid()}.{v}" for v in VENDORS}
        broker.create_topics(topics.values(), partitions=2)
        gen = ReadGenerator(_hot_from_index(data.index, 100), hit_rate=0.0, seed=31)
        start = datetime.now(UTC) - timedelta(seconds=reads / 1000)
        prod = Producer(
            {"bootstrap.servers": broker.address, "linger.ms": 50, "queue.buffering.max.messages": 1_000_000}
        )
        vendors = list(VENDORS)
        for i in range(reads):
            ts = start + timedelta(milliseconds=i)
            produce_waiting(
                prod, topics[vendors[i % 3]], gen.next(vendors[i % 3], ts=ts)[0], timestamp=int(ts.timestamp() * 1000)
            )
        prod.flush(120)
        added = _added_index([f"9R{i:05d}X" for i in range(entries)])
        settings = _scan_settings(broker.address, topics)
        scanned: dict[str, Any] = {}

        def load(_settings: Any, live: Any, phases: dict[str, float]) -> Any:
            # as the job does after a swap that added entries: the scan in a child process, waited for by a thread
            phases["start"] = time.time()
            window = replace(settings, retro=replace(settings.retro, window_minutes=reads / 60_000 + 1))
            thread = scan_in_background(window, added, [("RETRO", f"R-{i}") for i in range(entries)], data.index, "x")
            if thread is not None:
                thread.join()
            phases["built"] = phases["mapped"] = time.time()
            scanned.update(seconds=phases["built"] - phases["start"])
            return live  # nothing to swap: the flow only runs beside the scan

        from feblam.config import HotlistSettings

        figures = _flow_during(
            data.payloads, IndexHolder(data.index), HotlistSettings(), lambda: None, "retro-stall", load=load
        )
        figures.update(scan_reads=reads, scan_seconds=round(scanned.get("seconds", 0.0), 2))
        return figures
    finally:
        broker.stop()
