"""The Hit Gateway's dataflow (DESIGN 12): hits and actions in; board changes, hit events and dead letters out.

The flow reads the hits topics and the console's actions topic, keys both by
vehicle (a keyed hash of plate key and country) and keeps each vehicle's cases
(:mod:`gateway.cases`) in Bytewax state: new hits open cases at the desks their
routing names or join an open one as sightings, actions acknowledge or close
them, and a timer escalates what nobody acknowledged in time. Every
change goes to the desks' boards (:mod:`gateway.board`, what the console shows)
and, as an audit event, to ``[gateway] events_topic``. :mod:`gateway.run` runs
it as ``feblam gateway``.

What the console does is produced to ``actions_topic`` and read back here, so
that it is in the recovery store's offsets like every other input: an action
the console confirmed survives a crash (at-least-once; a repeated action is
refused as a no-op, not applied twice).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from feblam.config import Settings
from feblam.logs import get_logger
from feblam.metrics import reason_of
from feblam.model import DeadLetter, PayloadBatch
from feblam.serde import format_ts
from flows.pipeline import FlowStats, write_to
from gateway import metrics
from gateway.actions import DeskAction, SignedAction, decode_action
from gateway.cases import (
    ACTION_WAITS,
    BoardChange,
    VehicleCases,
    apply_action,
    board_view,
    escalate_due,
    event_id,
    next_due,
    repeated,
    sweep,
    take_hit,
    too_old,
    vehicle_of,
)
from gateway.horizon import Behind, Clock, Horizon
from gateway.quality import EntryLogic, false_reads
from gateway.schema import read_hit
from gateway.settings import Desks
from matchers.explain import explain_match

log = get_logger(__name__)

#: While decisions are held for unread actions, how often a hit's deadlines are looked at again.
RECHECK = timedelta(seconds=1)
HIT, ACTION = "hit", "action"


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- decoding


def broker_time(batch: PayloadBatch, i: int) -> datetime | None:
    """When the broker appended message ``i`` (None where the source does not know it: files, tests)."""
    if batch.appended_ms is None:
        return None
    ms = batch.appended_ms[i]
    return datetime.fromtimestamp(ms / 1000, UTC) if ms and ms > 0 else None


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """An action the flow refused as forged (not the console's signature, or a user not of that desk): an
    event on the audit trail, beside its dead letter."""

    event: dict[str, Any]


def forged(signed: SignedAction, desks: Desks) -> str | None:
    """Why an action cannot be the console's, or None: it carries the console's signature, for a user of that desk."""
    a = signed.action
    if not signed.signed:
        return "not signed with the gateway's action key"
    if a.user not in desks.users.get(a.desk, ()):
        return f"user {a.user[:64]!r} is not a user of desk {a.desk[:64]!r}"
    return None


def make_decoder(
    desks: Desks, stats: FlowStats, max_bytes: int, key: bytes, horizon: Horizon
) -> Callable[[PayloadBatch], list[Any]]:
    """A batch of hits or actions -> ``(hit_id, (kind, value))`` items, dead letters and security events; a hit's
    value is its JSON object and the desks its routing names (a hit that cannot be routed is a dead letter too);
    an action is taken only when it is the console's (:func:`forged`)."""

    def refuse_forged(
        batch: PayloadBatch, i: int, signed: SignedAction, reason: str, appended: datetime | None
    ) -> list[Any]:
        a = signed.action
        metrics.REFUSED.labels(ACTION, "forged").inc()
        log.warning(
            "action_forged",
            topic=batch.origin,
            partition=batch.partition,
            offset=batch.positions[i],
            hit_id=a.hit_id[:64],
            desk=a.desk[:64],
            user=a.user[:64],
            reason=reason,
        )
        source = f"{batch.origin}[{batch.partition}]@{batch.positions[i]}"
        refused = f"action refused: {reason}"
        event = {
            # one message refused once: the same id when a restart reads it again
            "event_id": event_id(a.hit_id, a.desk, "security", a.user, source, refused),
            "hit_id": a.hit_id,
            "desk": a.desk,
            "state": "security",
            "user": a.user,
            "at": format_ts(appended or horizon.clock()),
            "outcome": None,
            "reason": refused,
            "source": source,
        }
        return [batch.deadletter(i, f"{ACTION}: forged: {reason}"), SecurityEvent(event)]

    def decode(batch: PayloadBatch) -> list[Any]:
        stats.batches += 1
        out: list[Any] = []
        for i, payload in enumerate(batch.payloads):
            try:
                appended = broker_time(batch, i)
                if batch.vendor == HIT:
                    doc = read_hit(payload, max_bytes)
                    for m in doc["matches"]:  # why each matched, for the card (matchers.explain, the one rule)
                        m["why"] = explain_match(doc["read"], m)
                    out.append((vehicle_of(doc), (HIT, (doc, desks.route(doc), appended))))
                else:
                    signed = decode_action(payload, key, max_bytes)
                    reason = forged(signed, desks)
                    if reason is not None:
                        out += refuse_forged(batch, i, signed, reason, appended)
                    else:
                        # the case changes at the broker's time of the action; the console's time was its claim
                        action = signed.action if appended is None else replace(signed.action, at=appended)
                        out.append((action.vehicle, (ACTION, action)))
            except Exception as exc:  # noqa: BLE001 - whatever a message does, it is a dead letter, never a crash loop
                error = f"{batch.vendor}: {exc}"
                metrics.REFUSED.labels(batch.vendor, reason_of(error)).inc()
                log.warning(
                    "gateway_message_refused",
                    topic=batch.origin,
                    partition=batch.partition,
                    offset=batch.positions[i],
                    kind=batch.vendor,
                    error=str(exc)[:200],
                )
                out.append(batch.deadletter(i, error))
        if batch.vendor == ACTION and batch.payloads:
            last = broker_time(batch, len(batch.payloads) - 1)
            if last is not None and batch.partition is not None:  # every action appended up to then is read
                horizon.read(batch.origin, batch.partition, last)
        return out

    return decode


# ---------------------------------------------------------------- the cases of one vehicle


class CaseLogic(StatefulLogic[tuple[str, Any], BoardChange, VehicleCases]):
    """The Bytewax state of one vehicle: its cases (and the actions waiting for one), their timer, their snapshot."""

    def __init__(self, desks: Desks, horizon: Horizon, resume: VehicleCases | None) -> None:
        self.desks = desks
        self.clock = horizon.clock  # the wall clock: a hit's age, and when a case opens without a broker time
        self.horizon = horizon  # event time: escalations and expiries (gateway.horizon)
        self.vc = resume
        self.announce = resume is not None and bool(resume.cases)  # after a restart: the boards first

    def on_item(self, value: tuple[str, Any]) -> tuple[Iterable[BoardChange], bool]:
        kind, item = value
        if kind == HIT:
            hit, routes, appended = item
            if self.vc is None:
                self.vc = VehicleCases(vehicle_of(hit))
            return self._hit(self.vc, hit, routes, appended)
        if self.vc is None:
            self.vc = VehicleCases(item.vehicle)
        if self.vc.case(item.desk, item.hit_id) is None:
            # the hits topic may be behind the actions topic (after a crash both are read again, in no
            # order between them): the action waits for its case, for a while
            self.vc.waiting.append(item)
            if self.vc.waiting_until is None:
                self.vc.waiting_until = self.clock() + ACTION_WAITS
            return [], self._keep()
        return self._counted(self._act(self.vc, item)), self._keep()

    def _keep(self) -> bool:
        return self.DISCARD if self.vc is None or self.vc.empty else self.RETAIN

    def _hit(
        self, vc: VehicleCases, hit: dict[str, Any], routes: list[str], appended: datetime | None
    ) -> tuple[list[BoardChange], bool]:
        if repeated(vc, hit):
            metrics.HITS.labels("repeated").inc()  # the same hit again (a replay, or on two hits topics)
            return [], self._keep()
        now = self.clock()
        if too_old(hit, self.desks, now):
            metrics.HITS.labels("too_old").inc()
            log.warning(
                "hit_too_old",
                hit_id=hit["hit_id"],
                emitted_at=hit["emitted_at"],
                max_age_minutes=self.desks.max_age.total_seconds() / 60,
            )
            return [], self._keep()
        # taken at the broker's time of the hit (the clock where the source does not know it): a hit read
        # again after a crash opens or joins its cases at the same time, and its events keep their ids
        at = appended or now
        changes = self._escalated(vc, at) if vc.cases else []
        taken = take_hit(vc, hit, routes, self.desks, at)
        if not taken:
            metrics.HITS.labels("unrouted").inc()
            log.warning(
                "hit_unrouted", hit_id=hit["hit_id"], priority=hit["priority"], reason="no desk's rule takes it"
            )
            return changes, self._keep()
        joined = any(ch.event is not None and ch.event["state"] in ("sighting", "reopened") for ch in taken)
        metrics.HITS.labels("joined" if joined else "routed").inc()
        changes += taken
        waiting, vc.waiting, vc.waiting_until = vc.waiting, [], None
        for action in sorted(waiting, key=lambda a: a.at):
            if vc.case(action.desk, action.hit_id) is None:
                vc.waiting.append(action)  # still not here: it waits on
            else:
                changes += self._act(vc, action)
        if vc.waiting:
            vc.waiting_until = now + ACTION_WAITS
        return self._counted(changes), self._keep()

    def _act(self, vc: VehicleCases, action: DeskAction) -> list[BoardChange]:
        # event order: a deadline that passed before this action was appended escalates first
        escalated = self._escalated(vc, action.at)
        changes, refused = apply_action(vc, action)
        if refused:
            metrics.REFUSED.labels(ACTION, reason_of(refused)).inc()
            log.info(
                "action_refused",
                hit_id=action.hit_id,
                desk=action.desk,
                user=action.user,
                action=action.kind,
                reason=refused,
            )
        return escalated + changes

    @staticmethod
    def _refuse_waiting(waiting: Iterable[DeskAction], reason: str) -> None:
        for a in waiting:
            metrics.REFUSED.labels(ACTION, "unknown hit").inc()
            log.warning("action_refused", hit_id=a.hit_id, desk=a.desk, user=a.user, action=a.kind, reason=reason)

    def on_notify(self) -> tuple[Iterable[BoardChange], bool]:
        vc = self.vc
        if vc is None:
            return [], self.DISCARD
        changes: list[BoardChange] = []
        if vc.waiting_until is not None and self.clock() >= vc.waiting_until:
            minutes = ACTION_WAITS.total_seconds() / 60
            self._refuse_waiting(vc.waiting, f"the gateway holds no such case (waited {minutes:g} min for it)")
            vc.waiting, vc.waiting_until = [], None
        now = self.horizon.now()
        if self.announce:
            self.announce = False
            changes += board_view(vc)
        changes += self._escalated(vc, now)
        swept = sweep(vc, self.desks, now)
        for ch in swept:
            if ch.event is not None and ch.event["state"] == "expired":
                log.info(
                    "case_expired",
                    hit_id=ch.hit_id,
                    desk=ch.desk,
                    retention_hours=self.desks.retention.total_seconds() / 3600,
                )
        changes += self._counted(swept)
        return changes, self._keep()

    def notify_at(self) -> datetime | None:
        if self.vc is None:
            return None
        if self.announce:
            return self.clock()
        due = next_due(self.vc, self.desks)
        if due is not None and self.horizon.held():  # actions still to read: look again in a moment
            return max(due, self.clock() + RECHECK)
        return due

    def _escalated(self, vc: VehicleCases, now: datetime) -> list[BoardChange]:
        """The cases whose deadline passed by ``now``, escalated (logged and counted)."""
        escalated = escalate_due(vc, self.desks, now)
        for ch in escalated:
            if ch.event is not None and ch.event["state"] == "escalated":
                log.warning(
                    "hit_escalated",
                    hit_id=ch.hit_id,
                    desk=ch.desk,
                    to=self.desks.escalate_to.get(ch.desk),
                    priority=ch.event["priority"],
                )
        return self._counted(escalated)

    def snapshot(self) -> VehicleCases:
        return copy.deepcopy(self.vc)  # type: ignore[return-value]

    @staticmethod
    def _counted(changes: list[BoardChange]) -> list[BoardChange]:
        for ch in changes:
            if ch.event is not None:
                metrics.EVENTS.labels(ch.desk, ch.event["state"]).inc()
        return changes


# ---------------------------------------------------------------- the dataflow


def build_gateway_flow(
    settings: Settings,
    source: Source[Any],
    board: Sink[Any],
    events: Sink[Any],
    deadletter: Sink[Any],
    *,
    quality: Sink[Any],
    clock: Clock = utc_now,
    behind: Behind | None = None,
    stats: FlowStats | None = None,
    action_key: bytes,
) -> Dataflow:
    """Hits and actions in; board changes, hit events (with the security events of forged actions), list-quality
    flags (``quality``: :mod:`gateway.quality`) and dead letters out. ``action_key``: what the console signs actions with (:func:`gateway.actions.load_action_key`);
    ``behind``: the actions partitions not read up to date (:meth:`sources.kafka.SourceMonitor.behind`), so
    that deadlines pass in event time (:mod:`gateway.horizon`)."""
    desks = Desks(settings.desks, settings.gateway)
    horizon = Horizon(clock, behind)
    stats = stats if stats is not None else FlowStats()
    flow = Dataflow("feblam-gateway")
    raw = op.input("hits_and_actions", flow, source)
    decoder = make_decoder(desks, stats, settings.gateway.max_message_bytes, action_key, horizon)
    decoded = op.flat_map("decode_and_route", raw, decoder)
    split = op.branch("split_deadletter", decoded, lambda x: isinstance(x, DeadLetter))
    write_to("deadletter_out", split.trues, deadletter)
    security = op.branch("split_security", split.falses, lambda x: isinstance(x, SecurityEvent))
    keyed = op.stateful("cases", security.falses, lambda resume: CaseLogic(desks, horizon, resume))
    changes = op.key_rm("drop_vehicle", keyed)
    write_to("board_out", changes, board)
    audit = op.filter_map("audit_events", changes, lambda ch: ch.event)
    refused = op.map("security_events", security.trues, lambda se: se.event)
    write_to("events_out", op.merge("audit_trail", audit, refused), events)
    g = settings.gateway
    closed = op.flat_map("false_reads", changes, false_reads)
    window = timedelta(days=g.flag_window_days)
    flagged = op.stateful("entry_quality", closed, lambda resume: EntryLogic(g.flag_false_reads, window, resume))
    write_to("quality_out", op.key_rm("drop_entry", flagged), quality)
    return flow
