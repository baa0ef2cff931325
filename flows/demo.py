"""``feblam demo``: the main job on embedded defaults.

Starts the bundled Kafka-compatible broker on a free loopback port, creates the
topics, runs a camera simulator publishing the three vendor formats (a few bad
payloads and some hotlisted plates among them), runs the job on the shipped
sample hotlists, shows reads/s, hits and dead letters live, writes
``hits.jsonl`` and ``deadletter.jsonl`` under ``--out-dir``, starts the Hit
Gateway over the hits topic (:mod:`gateway.demo`, passed in by the CLI; it
prints the console's address and a login),
prints the summary line and always stops its gateway and broker.
"""

from __future__ import annotations

import gc
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Protocol

from bytewax.testing import run_main

from feblam.config import (
    DEV_HASH_KEY,
    DeadletterSettings,
    HotlistSettings,
    PrivacySettings,
    Settings,
    SinkSettings,
    SourceSettings,
    replace,
)
from feblam.errors import FeblamError
from feblam.logs import get_logger, set_hash_key
from flows.operations import Operations
from flows.pipeline import FlowStats, build_flow
from matchers.index import IndexHolder
from matchers.refresh import open_live_index
from sinks.deadletters import DeadletterWriter
from sources.broker import EmbeddedBroker
from sources.changes import start_change_feed
from sources.kafka import KafkaReadSource, SourceMonitor
from sources.simulator import VENDORS, KafkaSimulator, ReadGenerator

log = get_logger(__name__)
SAMPLE_HOTLISTS = Path(__file__).resolve().parents[1] / "examples" / "hotlists"


def hot_plates(holder: IndexHolder) -> list[tuple[str, str | None]]:
    """Plates (as printed) and countries of the plain entries of the live index, for the simulator."""
    return [(e.plate, e.country) for e in holder.current.entries() if not e.is_pattern]


class LiveView(threading.Thread):
    """Reads/s, hits and dead letters, refreshed once a second.

    On a terminal it is a rich ``Live`` line at the bottom, with log lines
    printed above it (rich redirects stdout and stderr while it is shown);
    otherwise one plain line a second.
    """

    def __init__(self, stats: FlowStats, stop: threading.Event) -> None:
        super().__init__(name="live-view", daemon=True)
        self.stats = stats
        self.stop_event = stop
        self.tty = sys.stdout.isatty()

    def line(self, rate: float) -> str:
        s = self.stats
        return f"reads/s={rate:8.0f}  reads={s.reads}  hits={s.hits}  suppressed={s.suppressed}  deadletter={s.deadletters}"

    def run(self) -> None:
        if not self.tty:
            self._loop(lambda text: print(text, flush=True))
            return
        from rich.live import Live
        from rich.text import Text

        with Live(
            Text(self.line(0.0)), refresh_per_second=4, transient=False, redirect_stdout=True, redirect_stderr=True
        ) as live:
            self._loop(lambda text: live.update(Text(text)))

    def _loop(self, show: Callable[[str], None]) -> None:
        last_reads, last_t = 0, time.monotonic()
        while not self.stop_event.wait(1.0):
            now = time.monotonic()
            rate = (self.stats.reads - last_reads) / max(now - last_t, 1e-9)
            last_reads, last_t = self.stats.reads, now
            show(self.line(rate))


CHANGES_TOPIC = "hotlist.changes"


class TheftReport(threading.Thread):
    """A theft reported during the demo: one change on the change topic, then the car passes six cameras of
    two regions (:attr:`ROUTE`), so that the gateway's boards show one case per desk with its trail.

    Prints when the report goes out and when the first hit on it reaches ``hits.jsonl``.
    """

    PLATE, ENTRY = "1-THF-042", "S-DEMO-THEFT"
    #: Where the stolen car goes: four cameras in Brussels, then two on the way into Antwerp.
    ROUTE = (
        ("CAM-BXL-0042", 50.8503, 4.3517),
        ("CAM-BXL-0043", 50.8601, 4.3602),
        ("CAM-BXL-0107", 50.8790, 4.3755),
        ("CAM-BXL-0210", 50.8952, 4.3921),
        ("CAM-ANT-0003", 51.1702, 4.3981),
        ("CAM-ANT-0011", 51.2108, 4.4055),
    )

    def __init__(self, brokers: str, topic: str, hits: Path, stop: threading.Event, after: float = 5.0) -> None:
        super().__init__(name="theft-report", daemon=True)
        self.brokers, self.topic, self.hits, self.stop_event, self.after = brokers, topic, hits, stop, after

    def run(self) -> None:
        import orjson
        from confluent_kafka import Producer

        if self.stop_event.wait(self.after):
            return
        producer = Producer({"bootstrap.servers": self.brokers})
        change = {
            "list_id": "BE-STOLEN",
            "seq": 1_000_000,
            "op": "upsert",
            "entry_id": self.ENTRY,
            "plate": self.PLATE,
            "country": "BE",
            "category": "stolen_vehicle",
            "priority": 1,
            "action": "intercept",
            "note": "reported stolen during the demo",
        }
        producer.produce(CHANGES_TOPIC, key=f"BE-STOLEN/{self.ENTRY}".encode(), value=orjson.dumps(change))
        producer.flush(5)
        reported = time.monotonic()
        print(f"theft reported: BE-STOLEN/{self.ENTRY} on the change topic", flush=True)
        if self.stop_event.wait(1.0):
            return
        now = datetime.now(UTC)
        for i, (camera, lat, lon) in enumerate(self.ROUTE):
            # the car's drive of the last half hour, one camera every six minutes (beyond the dedup window)
            captured = now - timedelta(minutes=6 * (len(self.ROUTE) - 1 - i))
            read = {
                "id": f"a-demo-theft-{i}",
                "camera": {"id": camera, "lat": lat, "lon": lon, "lane": 1},
                "plate": {"text": self.PLATE.lower(), "country": "B", "confidence": 91},
                "captured_at": captured.isoformat(),
                "image": f"s3://anpr/a/demo-theft-{i}.jpg",
            }
            producer.produce(self.topic, key=b"demo-theft", value=orjson.dumps(read))
            producer.flush(5)
            if i == 0:
                self._first_hit(reported)
            if self.stop_event.wait(0.4):
                return
        print(
            f"the stolen car passed {len(self.ROUTE)} cameras in Brussels and Antwerp: one case per desk, "
            "with its trail, on the Hit Gateway's boards",
            flush=True,
        )

    def _first_hit(self, reported: float) -> None:
        deadline = time.monotonic() + 30
        while not self.stop_event.wait(0.2) and time.monotonic() < deadline:
            if self.hits.exists() and self.ENTRY.encode() in self.hits.read_bytes():
                print(
                    f"hit on the reported theft at {self.ROUTE[0][0]}, {time.monotonic() - reported:.1f} s after the report",
                    flush=True,
                )
                return


class Companion(Protocol):
    """A service the demo starts beside its job (the Hit Gateway: :class:`gateway.demo.DemoGateway`)."""

    def start(self) -> Companion: ...

    def announce(self) -> str:
        """Once it serves: the line that tells the person at the demo how to use it (or why it did not start)."""
        ...

    def stop(self) -> None: ...


def run_demo(
    settings: Settings,
    *,
    seconds: float | None,
    out_dir: Path,
    rate: float = 2000.0,
    hotlists: str | None = None,
    gateway: Callable[[Settings, Path], Companion] | None = None,
) -> int:
    """Run the demo (DESIGN section 7) and print its summary line; the broker is always stopped.

    ``gateway`` makes the service to start beside the job over its hits topic (the CLI passes the Hit Gateway's)."""
    hot_dir = Path(hotlists) if hotlists else SAMPLE_HOTLISTS
    if not hot_dir.is_dir():
        msg = f"{hot_dir}: hotlist directory not found"
        raise FeblamError(msg)
    out_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    stats = FlowStats()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    broker = EmbeddedBroker(log_path=out_dir / "broker.log")
    started = None
    companion: Companion | None = None
    try:
        broker.start()
        topics = {v: f"reads.{v}" for v in VENDORS}
        g = settings.gateway
        broker.create_topics(
            [
                *topics.values(),
                "hits",
                "reads.deadletter",
                CHANGES_TOPIC,
                g.events_topic,
                g.actions_topic,
                g.access_topic,
                g.quality_topic,
            ],
            partitions=2,
        )
        if settings.privacy.hash_key == DEV_HASH_KEY:  # a key of this demo alone, never the one every clone knows
            settings = replace(settings, privacy=PrivacySettings(hash_key=secrets.token_hex(16)))
            set_hash_key(settings.privacy.hash_key)
        settings = replace(
            settings,
            kafka=replace(settings.kafka, brokers=broker.address),
            sources=tuple(SourceSettings(t, v) for v, t in topics.items()),
            hotlists=HotlistSettings(dir=str(hot_dir), poll_seconds=2.0, changes_topic=CHANGES_TOPIC),
            deadletter=DeadletterSettings(path=str(out_dir / "deadletter.jsonl")),
            sinks=(
                SinkSettings("hits-topic", topic="hits"),
                SinkSettings("hits-file", path=str(out_dir / "hits.jsonl")),
            ),
        )
        if gateway is not None and settings.gateway.http_port:
            companion = gateway(settings, out_dir).start()
        monitor = SourceMonitor(settings.kafka)
        ops = Operations(settings, monitor, stop).start()
        live = open_live_index(settings.hotlists)
        holder = live.holder
        start_change_feed(settings, holder, stop, DeadletterWriter(settings).write)
        ops.attach(holder, stats)
        generator = ReadGenerator(hot_plates(holder), hit_rate=0.01, bad_rate=0.002)
        simulator = KafkaSimulator(broker.address, topics, generator, rate, stop)
        simulator.start()
        TheftReport(broker.address, topics["vendor-a"], out_dir / "hits.jsonl", stop).start()
        view = LiveView(stats, stop)
        view.start()
        if seconds is not None:
            timer = threading.Timer(seconds, stop.set)
            timer.daemon = True  # a stop by signal must not wait for the rest of --seconds
            timer.start()
        flow = build_flow(
            settings,
            KafkaReadSource(settings.kafka, settings.sources, stop, monitor=monitor),
            holder=holder,
            stats=stats,
            flow_id="feblam_demo",
        )
        endpoints = f"; metrics http://127.0.0.1:{ops.http.port}/metrics" if ops.http is not None else ""
        print(
            f"broker {broker.address}; hotlists {hot_dir} (index {holder.current.version}); "
            f"simulating {rate:.0f} reads/s; output in {out_dir}/{endpoints}",
            flush=True,
        )
        if companion is not None:
            print(companion.announce(), flush=True)
        started = time.monotonic()
        run_main(flow)
        elapsed = time.monotonic() - started
        stop.set()
        live.close()
        ops.close()
        simulator.join(timeout=10)
        view.join(timeout=2)
        del flow, simulator  # close Kafka clients before the broker goes away
        gc.collect()
    finally:
        stop.set()
        if companion is not None:
            companion.stop()
        broker.stop()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    reads_per_s = stats.reads / elapsed if started and elapsed > 0 else 0.0
    print(f"reads={stats.reads} hits={stats.hits} deadletter={stats.deadletters} reads_per_s={reads_per_s:.0f}")
    return 0
