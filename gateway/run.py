"""``feblam gateway``: the Hit Gateway's flow and console as a service (lock, signals, failure line: :mod:`flows.service`)."""

from __future__ import annotations

import threading

from feblam.config import Settings
from feblam.errors import FeblamError
from feblam.logs import get_logger, set_hash_key
from feblam.topics import gateway_topics, require_topics
from flows.pipeline import FlowStats
from flows.service import Stopped, run_dataflow, service
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
    if not any(d.users or d.clients or d.webhook for d in settings.desks):
        msg = (
            "desks: no desk has users, clients or a webhook; nobody could take a hit "
            "(add users = [ { name, password_hash } ] or clients = [ { name, token_sha256 } ])"
        )
        raise FeblamError(msg)
    require_topics(settings, gateway_topics(settings))


def run_gateway(settings: Settings, *, stop: threading.Event | None = None, clock: Clock = utc_now) -> int:
    """Run ``feblam gateway`` until stopped; returns the exit status.

    A second gateway on the same recovery directory (``[gateway] standby``, the default) serves ``/ready`` as
    ``standby`` while it waits for the recovery lock, and takes over when the active one stops or dies: its
    flow resumes from the recovery store, the boards are rebuilt from the state, the desks' feeds, sessions
    and webhook cursors come from the shared store (:mod:`gateway.store`)."""
    from gateway import metrics
    from gateway.board import Board, BoardSink
    from gateway.console import Console
    from gateway.journal import Journal
    from gateway.store import Store
    from gateway.webhooks import Webhooks
    from sinks.build import build_deadletter_sink
    from sinks.kafka import KafkaEventSink, KafkaQualitySink
    from sources.kafka import KafkaReadSource, SourceMonitor

    stats = FlowStats()
    set_hash_key(settings.privacy.hash_key)
    gateway_preflight(settings)
    g = settings.gateway
    store = Store(settings.recovery.dir)
    journal = Journal(store, [d.name for d in settings.desks], g.case_retention_hours)
    webhooks = Webhooks(settings, journal, store)  # a missing secret is one line before anything starts
    monitor = SourceMonitor(settings.kafka).start()
    board = Board([d.name for d in settings.desks])
    metrics.PAGES.set_function(board.pages)
    metrics.STREAMS.set_function(journal.followers)
    action_key = load_action_key(settings)
    console = Console(settings, board, action_key, monitor, stats, journal=journal, store=store)

    def standby(holder: str) -> None:
        metrics.ACTIVE.set(0)
        log.warning("gateway_standby", holder=holder, recovery_dir=settings.recovery.dir)
        console.standby_for = holder
        console.start()

    try:
        with service(
            settings,
            stats,
            stop,
            started="gateway_starting",
            standby=standby if g.standby else None,
            command="gateway",
        ) as stop:
            metrics.ACTIVE.set(1)
            journal.load()
            if console.standby_for is not None:
                log.warning("gateway_taking_over", was=console.standby_for)
            console.standby_for = None
            if not console.started:
                console.start()
            webhooks.start()
            topics = {t: HIT for t in g.hits_topics} | {g.actions_topic: ACTION}
            source = KafkaReadSource(settings.kafka, topics, stop, monitor=monitor)
            events = KafkaEventSink(settings.kafka, g.events_topic, "hit-events")
            flow = build_gateway_flow(
                settings,
                source,
                BoardSink(board, journal),
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
                webhooks.stop()
            log.info("gateway_stopped")
            return 0
    except Stopped:
        log.info("gateway_stopped", reason="stopped as a standby")
        return 0
    finally:
        console.stop()
        monitor.stop()
        store.close()
