"""``feblam gateway``: the Hit Gateway's dataflow (DESIGN 12) and its console.

The flow reads the hits topics and the console's actions topic, keys both by
``hit_id`` and keeps each hit's cases (:mod:`flows.cases`) in Bytewax state:
new hits open cases at the desks their routing names, actions acknowledge or
close them, and a timer escalates what nobody acknowledged in time. Every
change goes to the desks' boards (:mod:`sinks.board`, what the console shows)
and, as an audit event, to ``[gateway] events_topic``.

What the console does is produced to ``actions_topic`` and read back here, so
that it is in the recovery store's offsets like every other input: an action
the console confirmed survives a crash (at-least-once; a repeated action is
refused as a no-op, not applied twice).
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from feblam.config import Settings
from feblam.errors import FeblamError
from feblam.logs import filter_native_stderr, get_logger
from feblam.metrics import GATEWAY_EVENTS, GATEWAY_HITS, GATEWAY_REFUSED, reason_of
from feblam.model import DeadLetter, PayloadBatch
from feblam.serde import parse_ts
from flows.cases import (
    BoardChange,
    DeskAction,
    Desks,
    HitCases,
    apply_action,
    board_view,
    escalate_due,
    expired,
    next_due,
    open_cases,
    removal,
    too_old,
)
from flows.pipeline import FlowStats, write_to

log = get_logger(__name__)

Clock = Callable[[], datetime]
HIT, ACTION = "hit", "action"


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- decoding


def decode_hit(payload: bytes) -> dict[str, Any]:
    """A hit message as its JSON object; what the gateway cannot show raises ValueError with the reason."""
    doc = orjson.loads(payload)
    if not isinstance(doc, dict):
        msg = "not a JSON object"
        raise ValueError(msg)
    for key, typ in (("hit_id", str), ("priority", int), ("emitted_at", str), ("read", dict), ("matches", list)):
        if not isinstance(doc.get(key), typ):
            msg = f"{key}: missing or not a {typ.__name__}"
            raise ValueError(msg)
    if not doc["hit_id"]:
        msg = "hit_id: empty"
        raise ValueError(msg)
    parse_ts(doc["emitted_at"])
    return doc


def decode_action(payload: bytes) -> DeskAction:
    """An action message (written by the console)."""
    doc = orjson.loads(payload)
    if not isinstance(doc, dict):
        msg = "not a JSON object"
        raise ValueError(msg)
    kind = doc.get("kind")
    if kind not in ("acknowledge", "close"):
        msg = f"kind: {kind!r} is not acknowledge or close"
        raise ValueError(msg)
    return DeskAction(str(doc["hit_id"]), str(doc["desk"]), str(doc["user"]), kind, parse_ts(doc["at"]), doc.get("outcome"))


def make_decoder(desks: Desks, stats: FlowStats) -> Callable[[PayloadBatch], list[Any]]:
    """A batch of hits or actions -> ``(hit_id, (kind, value))`` items and dead letters; a hit's value is
    its JSON object and the desks its routing names (a hit that cannot be routed is a dead letter too)."""

    def decode(batch: PayloadBatch) -> list[Any]:
        stats.batches += 1
        out: list[Any] = []
        for i, payload in enumerate(batch.payloads):
            try:
                if batch.vendor == HIT:
                    doc = decode_hit(payload)
                    out.append((doc["hit_id"], (HIT, (doc, desks.route(doc)))))
                else:
                    action = decode_action(payload)
                    out.append((action.hit_id, (ACTION, action)))
            except (ValueError, KeyError, TypeError) as exc:
                error = f"{batch.vendor}: {exc}"
                GATEWAY_REFUSED.labels(batch.vendor, reason_of(error)).inc()
                log.warning("gateway_message_refused", topic=batch.origin, partition=batch.partition,
                            offset=batch.positions[i], kind=batch.vendor, error=str(exc)[:200])
                out.append(batch.deadletter(i, error))
        return out

    return decode


# ---------------------------------------------------------------- the cases of one hit


class CaseLogic(StatefulLogic[tuple[str, Any], BoardChange, HitCases]):
    """The Bytewax state of one ``hit_id``: its cases, their timer, their snapshot."""

    def __init__(self, desks: Desks, clock: Clock, resume: HitCases | None) -> None:
        self.desks = desks
        self.clock = clock
        self.cases = resume
        self.announce = resume is not None  # after a restart: put the hit back on the boards first

    def on_item(self, value: tuple[str, Any]) -> tuple[Iterable[BoardChange], bool]:
        kind, item = value
        now = self.clock()
        if kind == HIT:
            if self.cases is not None:
                GATEWAY_HITS.labels("repeated").inc()  # the same hit again (a replay, or on two hits topics)
                return [], self.RETAIN
            hit, routes = item
            if too_old(hit, self.desks, now):
                GATEWAY_HITS.labels("too_old").inc()
                log.warning("hit_too_old", hit_id=hit["hit_id"], emitted_at=hit["emitted_at"],
                            max_age_minutes=self.desks.max_age.total_seconds() / 60)
                return [], self.DISCARD
            self.cases, changes = open_cases(hit, routes, self.desks, now)
            if not changes:
                GATEWAY_HITS.labels("unrouted").inc()
                log.warning("hit_unrouted", hit_id=hit["hit_id"], priority=hit["priority"],
                            reason="no desk's rule takes it")
                return [], self.DISCARD
            GATEWAY_HITS.labels("routed").inc()
            return self._counted(changes), self.RETAIN
        if self.cases is None:
            GATEWAY_REFUSED.labels(ACTION, "unknown hit").inc()
            log.warning("action_refused", hit_id=item.hit_id, desk=item.desk, user=item.user, action=item.kind,
                        reason="the gateway holds no such hit")
            return [], self.DISCARD
        changes, refused = apply_action(self.cases, item)
        if refused:
            GATEWAY_REFUSED.labels(ACTION, reason_of(refused)).inc()
            log.info("action_refused", hit_id=item.hit_id, desk=item.desk, user=item.user, action=item.kind, reason=refused)
        return self._counted(changes), self.RETAIN

    def on_notify(self) -> tuple[Iterable[BoardChange], bool]:
        if self.cases is None:
            return [], self.DISCARD
        now = self.clock()
        changes: list[BoardChange] = []
        if self.announce:
            self.announce = False
            changes += board_view(self.cases)
        escalated = escalate_due(self.cases, self.desks, now)
        for ch in escalated:
            if ch.case and ch.case["state"] == "escalated":
                log.warning("hit_escalated", hit_id=ch.hit_id, desk=ch.desk, to=self.desks.escalate_to.get(ch.desk),
                            priority=self.cases.hit["priority"])
        changes += self._counted(escalated)
        if expired(self.cases, self.desks, now):
            return changes + removal(self.cases), self.DISCARD
        return changes, self.RETAIN

    def notify_at(self) -> datetime | None:
        if self.cases is None:
            return None
        if self.announce:
            return self.clock()
        return next_due(self.cases, self.desks)

    def snapshot(self) -> HitCases:
        return copy.deepcopy(self.cases)  # type: ignore[return-value]

    @staticmethod
    def _counted(changes: list[BoardChange]) -> list[BoardChange]:
        for ch in changes:
            if ch.event is not None:
                GATEWAY_EVENTS.labels(ch.desk, ch.event["state"]).inc()
        return changes


# ---------------------------------------------------------------- the dataflow


def build_gateway_flow(
    settings: Settings, source: Source[Any], board: Sink[Any], events: Sink[Any], deadletter: Sink[Any],
    *, clock: Clock = utc_now, stats: FlowStats | None = None,
) -> Dataflow:
    """Hits and actions in; board changes, hit events and dead letters out."""
    desks = Desks(settings.desks, settings.gateway)
    stats = stats if stats is not None else FlowStats()
    flow = Dataflow("feblam-gateway")
    raw = op.input("hits_and_actions", flow, source)
    decoded = op.flat_map("decode_and_route", raw, make_decoder(desks, stats))
    split = op.branch("split_deadletter", decoded, lambda x: isinstance(x, DeadLetter))
    write_to("deadletter_out", split.trues, deadletter)
    keyed = op.stateful("cases", split.falses, lambda resume: CaseLogic(desks, clock, resume))
    changes = op.key_rm("drop_hit_id", keyed)
    write_to("board_out", changes, board)
    audit = op.filter_map("audit_events", changes, lambda ch: ch.event)
    write_to("events_out", audit, events)
    return flow


# ---------------------------------------------------------------- the command


class GatewayFailed(FeblamError, RuntimeError):
    """The gateway stopped on an error (exit status 1: the supervisor restarts it)."""


def gateway_preflight(settings: Settings) -> None:
    """Desks to serve, a broker that answers and every topic the gateway uses."""
    from flows.run import preflight_topics

    if not settings.desks:
        msg = "desks: the gateway needs at least one [[desks]] (a dispatch centre, zone or partner with its rule and users)"
        raise FeblamError(msg)
    if not settings.recovery.dir:
        msg = ("recovery.dir: the gateway needs a recovery directory (its cases and their deadlines live there); "
               "without one a restart would read every hit again as new and repeat its events")
        raise FeblamError(msg)
    if not any(d.users for d in settings.desks):
        msg = "desks: no desk has users; nobody could log in to the console (add users = [ { name, password_hash } ])"
        raise FeblamError(msg)
    g = settings.gateway
    needed = [(t, "hits topic (gateway.hits_topics)") for t in g.hits_topics]
    needed += [(g.events_topic, "events topic (gateway.events_topic)"), (g.actions_topic, "actions topic (gateway.actions_topic)")]
    if settings.deadletter.topic and not settings.deadletter.path:
        needed.append((settings.deadletter.topic, "dead-letter topic (deadletter.topic)"))
    preflight_topics(settings, needed)


def run_gateway(settings: Settings, *, stop: threading.Event | None = None, clock: Clock = utc_now) -> int:
    """Run ``feblam gateway`` until stopped; returns the exit status."""
    from bytewax.run import cli_main

    from feblam.cli import versions
    from feblam.logs import set_hash_key
    from feblam.metrics import GATEWAY_PAGES
    from flows.run import RecoveryLock, Stopper, failure_message, recovery_config
    from sinks.board import Board, BoardSink
    from sinks.build import build_deadletter_sink
    from sinks.console import Console
    from sinks.kafka import KafkaEventSink
    from sources.kafka import KafkaReadSource, SourceMonitor

    lock = RecoveryLock(Path(settings.recovery.dir), None) if settings.recovery.dir else None
    if lock is not None:
        lock.acquire()
    try:
        log.info("gateway_starting", versions=versions(), settings=settings.redacted())
        set_hash_key(settings.privacy.hash_key)
        stats = FlowStats()
        stop = stop or threading.Event()
        if threading.current_thread() is threading.main_thread():
            Stopper(stop, stats).start()
        gateway_preflight(settings)
        monitor = SourceMonitor(settings.kafka).start()
        board = Board([d.name for d in settings.desks])
        GATEWAY_PAGES.set_function(board.pages)
        console = Console(settings, board, monitor, stats).start()
        g = settings.gateway
        topics = {t: HIT for t in g.hits_topics} | {g.actions_topic: ACTION}
        source = KafkaReadSource(settings.kafka, topics, stop, monitor=monitor)
        flow = build_gateway_flow(settings, source, BoardSink(board), KafkaEventSink(settings.kafka, g.events_topic, "hit-events"),
                                  build_deadletter_sink(settings), clock=clock, stats=stats)
        os.environ["RUST_BACKTRACE"] = "0"
        filter_native_stderr()
        try:
            cli_main(flow, epoch_interval=timedelta(seconds=settings.recovery.snapshot_seconds),
                     recovery_config=recovery_config(settings, 1))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            message = failure_message(exc, [], None)
            log.error("gateway_failed", error=message, error_type=type(exc).__name__)
            raise GatewayFailed(message) from None
        finally:
            console.stop()
            monitor.stop()
        log.info("gateway_stopped")
        return 0
    finally:
        if lock is not None:
            lock.release()
