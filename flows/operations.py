"""What operators see of a running job (DESIGN section 11): HTTP endpoints and the ``stats`` event.

- ``/metrics``: Prometheus text format (:mod:`feblam.metrics`).
- ``/live``: 200 while the flow's loop turns (its input was polled within
  ``http.live_timeout_seconds``, or it is still starting); 503 otherwise.
- ``/ready``: 200 once the index is loaded and source partitions are assigned,
  while the broker has answered within ``http.broker_timeout_seconds``;
  otherwise 503 with a JSON reason.

These three routes are written once (:func:`operations_routes`) and served by
one server (:class:`HttpServer`: Starlette under uvicorn, on a thread beside the
flow), alone on ``[http] port`` for the job and beside the console on
``[gateway] http_port`` for the Hit Gateway.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

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
        held = {"held_back": dict(self.holder.held_back)} if self.holder.held_back else {}
        if m is None:
            return True, {"status": "ready", "index_version": self.holder.current.version, **held}
        if m.partitions == 0:
            return False, {"status": "not ready", "reason": "no source partition assigned yet"}
        reason = m.broker_problem(self.settings.http.broker_timeout_seconds)
        if reason:
            return False, {"status": "not ready", "reason": reason}
        return True, {
            "status": "ready",
            "index_version": self.holder.current.version,
            "partitions": m.partitions,
            **held,
        }


#: The answer of ``/live`` or ``/ready``: healthy or not, and the JSON document that says why.
Check = Callable[[], tuple[bool, dict[str, Any]]]


def operations_routes(live: Check, ready: Check, registry: CollectorRegistry = REGISTRY) -> list[Route]:
    """``/metrics`` (of ``registry``: the process's own), ``/live`` and ``/ready`` (no sign-in: for the internal
    network only)."""

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def answer(check: Check) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            ok, doc = check()
            return JSONResponse(doc, status_code=200 if ok else 503)

        return endpoint

    return [Route("/metrics", metrics), Route("/live", answer(live)), Route("/ready", answer(ready))]


def operations_app(health: Health) -> Starlette:
    """The job's endpoints alone; anything else is a JSON 404 naming them."""

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "not found: /metrics, /live, /ready"}, status_code=404)

    return Starlette(routes=operations_routes(health.live, health.ready), exception_handlers={404: not_found})


class HttpServer:
    """A port bound at once (a port in use is one clear error naming ``key``, the configuration key of the
    port), then an ASGI app served on it by uvicorn on a thread of this process."""

    def __init__(self, host: str, port: int, key: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            msg = f"{key} {port} on {host}: cannot listen ({exc.strerror or exc})"
            raise FeblamError(msg) from None
        sock.listen(512)
        self.socket = sock
        self.port = int(sock.getsockname()[1])
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, app: ASGIApp) -> HttpServer:
        import uvicorn

        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            proxy_headers=False,  # no X-Forwarded-For taken on trust: the console decides (gateway.trusted_proxies)
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.socket]}, name="http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5.0)
        self.socket.close()


class StatsReporter(threading.Thread):
    """One ``stats`` log event every ``logging.stats_seconds``: what an operator reads in the log."""

    def __init__(
        self, every: float, stats: FlowStats, holder: IndexHolder, monitor: SourceMonitor | None, stop: threading.Event
    ) -> None:
        super().__init__(name="stats", daemon=True)
        self.every = every
        self.stats = stats
        self.holder = holder
        self.monitor = monitor
        self.stop_event = stop

    def run(self) -> None:
        from feblam.metrics import index_age_seconds

        last_reads, last_t = self.stats.reads, time.monotonic()
        while not self.stop_event.wait(self.every):
            now = time.monotonic()
            s = self.stats
            lag = sum(self.monitor.lag.values()) if self.monitor is not None else None
            log.info(
                "stats",
                reads=s.reads,
                reads_per_s=round((s.reads - last_reads) / max(now - last_t, 1e-9), 1),
                hits=s.hits,
                deadletters=s.deadletters,
                suppressed=s.suppressed,
                consumer_lag=lag,
                index_version=self.holder.current.version,
                index_age_seconds=round(index_age_seconds()),
            )
            last_reads, last_t = s.reads, now


class Operations:
    """The endpoints, the source monitor and the stats event of one process.

    ``start()`` opens the endpoints at once (``/ready`` answers 503 while the
    index loads); ``attach()`` hands over the index and the flow's counters.
    """

    def __init__(
        self, settings: Settings, monitor: SourceMonitor | None, stop: threading.Event, process_id: int | None = None
    ) -> None:
        self.settings = settings
        self.monitor = monitor
        self.stop_event = stop
        self.health = Health(settings, None, monitor)
        READY.set_function(lambda: float(self.health.ready()[0]))
        port = settings.http.port + (process_id or 0)  # process i of a cluster on port + i
        self.http = HttpServer(settings.http.host, port, "http.port") if settings.http.port else None

    def start(self) -> Operations:
        from feblam.metrics import BUILD_INFO
        from feblam.version import versions

        BUILD_INFO.labels(versions()["feblam"]).set(1)
        if self.http is not None:
            self.http.start(operations_app(self.health))
            log.info("http_listening", port=self.http.port, paths=["/metrics", "/live", "/ready"])
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
