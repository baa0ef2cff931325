"""``feblam gateway``: the Hit Gateway's flow and console as a service (lock, signals, failure line: :mod:`flows.service`)."""

from __future__ import annotations

import threading

from feblam.config import Settings
from feblam.errors import FeblamError
from feblam.logs import get_logger, set_hash_key
from feblam.topics import gateway_topics, require_topics
from flows.pipeline import FlowStats
from flows.service import run_dataflow, service
from gateway.actions import load_action_key
from gateway.flow import ACTION, HIT, Clock, build_gateway_flow, utc_now

log = get_logger(__name__)


def gateway_preflight(settings: Settings) -> None:
    """Desks to serve, a recovery directory, a broker that answers and every topic the gateway uses."""
    if not settings.desks:
        msg = "desks: the gateway needs at least one [[desks]] (a dispatch centre, zone or partner with its rule and users)"
        raise FeblamError(msg)
    if not settings.recovery.dir:
        msg = (
            "recovery.dir: the gateway needs a recovery directory (its cases and their deadlines live there); "
            "without one a restart would read every hit again as new and repeat its events"
        )
        raise FeblamError(msg)
    if not any(d.users for d in settings.desks):
        msg = "desks: no desk has users; nobody could log in to the console (add users = [ { name, password_hash } ])"
        raise FeblamError(msg)
    require_topics(settings, gateway_topics(settings))


def run_gateway(settings: Settings, *, stop: threading.Event | None = None, clock: Clock = utc_now) -> int:
    """Run ``feblam gateway`` until stopped; returns the exit status."""
    from gateway import metrics
    from gateway.board import Board, BoardSink
    from gateway.console import Console
    from sinks.build import build_deadletter_sink
    from sinks.kafka import KafkaEventSink, KafkaQualitySink
    from sources.kafka import KafkaReadSource, SourceMonitor

    stats = FlowStats()
    with service(settings, stats, stop, started="gateway_starting") as stop:
        set_hash_key(settings.privacy.hash_key)
        gateway_preflight(settings)
        monitor = SourceMonitor(settings.kafka).start()
        board = Board([d.name for d in settings.desks])
        metrics.PAGES.set_function(board.pages)
        action_key = load_action_key(settings)
        console = Console(settings, board, action_key, monitor, stats).start()
        g = settings.gateway
        topics = {t: HIT for t in g.hits_topics} | {g.actions_topic: ACTION}
        source = KafkaReadSource(settings.kafka, topics, stop, monitor=monitor)
        events = KafkaEventSink(settings.kafka, g.events_topic, "hit-events")
        flow = build_gateway_flow(
            settings,
            source,
            BoardSink(board),
            events,
            build_deadletter_sink(settings),
            quality=KafkaQualitySink(settings.kafka, g.quality_topic, "list-quality"),
            clock=clock,
            behind=lambda: monitor.behind(g.actions_topic),
            stats=stats,
            action_key=action_key,
        )
        try:
            run_dataflow(flow, settings, failed="gateway_failed")
        finally:
            console.stop()
            monitor.stop()
        log.info("gateway_stopped")
        return 0
