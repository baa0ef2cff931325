"""What operators see of a running job (DESIGN section 11): HTTP endpoints and the ``stats`` event.

- ``/metrics``: Prometheus text format (:mod:`feblam.metrics`).
- ``/live``: 200 while the flow's loop turns (its input was polled within
  ``http.live_timeout_seconds``, or it is still starting); 503 otherwise.
- ``/ready``: 200 once the index is loaded and source partitions are assigned,
  while the broker has answered within ``http.broker_timeout_seconds``;
  otherwise 503 with a JSON reason.

The server is the standard library's threaded HTTP server: three GET paths need
no framework, and it runs on its own threads beside the flow.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from feblam.config import Settings
from feblam.errors import FeblamError
from feblam.logs import get_logger
from feblam.metrics import READY, REGISTRY, index_live
from flows.pipeline import FlowStats
from matchers.index import IndexHolder
from sources.kafka import SourceMonitor

log = get_logger(__name__)


class Health:
    """The answers of ``/live`` and ``/ready``, from the index holder, the source monitor and the flow's counters."""

    def __init__(self, settings: Settings, holder: IndexHolder | None, monitor: SourceMonitor | None) -> None:
        self.settings = settings
        self.holder = holder
        self.monitor = monitor
        self.started = time.monotonic()

    def live(self) -> tuple[bool, dict[str, Any]]:
        m = self.monitor
        if m is None or not m.heartbeat:
            return True, {"status": "starting"}
        quiet = time.monotonic() - m.heartbeat
        if quiet > self.settings.http.live_timeout_seconds:
            return False, {"status": "stalled", "reason": f"the flow has not polled its input for {quiet:.0f} s"}
        return True, {"status": "live"}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        if self.holder is None:
            return False, {"status": "not ready", "reason": "hotlist index not loaded yet"}
        m = self.monitor
        if m is None:
            return True, {"status": "ready", "index_version": self.holder.current.version}
        if m.partitions == 0:
            return False, {"status": "not ready", "reason": "no source partition assigned yet"}
        reason = m.broker_problem(self.settings.http.broker_timeout_seconds)
        if reason:
            return False, {"status": "not ready", "reason": reason}
        return True, {"status": "ready", "index_version": self.holder.current.version, "partitions": m.partitions}


def _handler(health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif path in ("/live", "/ready"):
                ok, doc = health.live() if path == "/live" else health.ready()
                self._send(200 if ok else 503, orjson.dumps(doc), "application/json")
            else:
                self._send(404, b'{"error":"not found: /metrics, /live, /ready"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            pass  # scrapes every few seconds are no news

    return Handler


class HttpEndpoints:
    """The endpoints on ``[http] host:port`` (process ``i`` of a cluster on ``port + i``)."""

    def __init__(self, settings: Settings, health: Health, process_id: int | None = None) -> None:
        self.port = settings.http.port + (process_id or 0)
        try:
            self.server = ThreadingHTTPServer((settings.http.host, self.port), _handler(health))
        except OSError as exc:
            msg = f"http.port: cannot listen on {settings.http.host}:{self.port}: {exc.strerror or exc}"
            raise FeblamError(msg) from None
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    def start(self) -> HttpEndpoints:
        self.thread.start()
        log.info("http_listening", port=self.port, paths=["/metrics", "/live", "/ready"])
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class StatsReporter(threading.Thread):
    """One ``stats`` log event every ``logging.stats_seconds``: what an operator reads in the log."""

    def __init__(self, every: float, stats: FlowStats, holder: IndexHolder, monitor: SourceMonitor | None,
                 stop: threading.Event) -> None:
        super().__init__(name="stats", daemon=True)
        self.every = every
        self.stats = stats
        self.holder = holder
        self.monitor = monitor
        self.stop_event = stop
        self.live_since = time.time()

    def run(self) -> None:
        last_reads, last_t = self.stats.reads, time.monotonic()
        version = self.holder.current.version
        while not self.stop_event.wait(self.every):
            now = time.monotonic()
            s = self.stats
            if self.holder.current.version != version:
                version, self.live_since = self.holder.current.version, time.time()
            lag = sum(self.monitor.lag.values()) if self.monitor is not None else None
            log.info("stats", reads=s.reads, reads_per_s=round((s.reads - last_reads) / max(now - last_t, 1e-9), 1),
                     hits=s.hits, deadletters=s.deadletters, suppressed=s.suppressed, consumer_lag=lag,
                     index_version=version, index_age_seconds=round(time.time() - self.live_since))
            last_reads, last_t = s.reads, now


class Operations:
    """The endpoints, the source monitor and the stats event of one process.

    ``start()`` opens the endpoints at once (``/ready`` answers 503 while the
    index loads); ``attach()`` hands over the index and the flow's counters.
    """

    def __init__(self, settings: Settings, monitor: SourceMonitor | None, stop: threading.Event,
                 process_id: int | None = None) -> None:
        self.settings = settings
        self.monitor = monitor
        self.stop_event = stop
        self.health = Health(settings, None, monitor)
        READY.set_function(lambda: float(self.health.ready()[0]))
        self.http = HttpEndpoints(settings, self.health, process_id) if settings.http.port else None

    def start(self) -> Operations:
        from feblam.cli import versions
        from feblam.metrics import BUILD_INFO

        BUILD_INFO.labels(versions()["feblam"]).set(1)
        if self.http is not None:
            self.http.start()
        if self.monitor is not None:
            self.monitor.start()
        return self

    def attach(self, holder: IndexHolder, stats: FlowStats) -> None:
        index_live(holder.current.version, ((i.list_id, i.entries) for i in holder.current.lists), swapped=False)
        self.health.holder = holder
        if self.settings.logging.stats_seconds:
            StatsReporter(self.settings.logging.stats_seconds, stats, holder, self.monitor, self.stop_event).start()

    def close(self) -> None:
        if self.http is not None:
            self.http.stop()
        if self.monitor is not None:
            self.monitor.stop()
