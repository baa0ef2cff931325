"""Outcomes that clean the lists: per hotlist entry, the gateway counts the cases closed as ``false_read``
and flags an entry that has ``flag_false_reads`` of them within ``flag_window_days``.

A flag is one event on ``[gateway] quality_topic`` for the list's owner (keyed by
list and entry, never a plate: the owner looks the entry up in its own list),
the metric ``feblam_gateway_entries_flagged_total``, and a line in
``feblam gateway report``. A drivers' O/0 typo in an entry, which made patrols
stop the same innocent car again and again, is then fixed at its source.

The counting is a Bytewax ``stateful`` step keyed by ``list_id/entry_id``
(:class:`EntryLogic`); a case closed at two desks (the region and the desk it
escalated to) counts once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bytewax.operators import StatefulLogic

from feblam.logs import get_logger
from feblam.serde import format_ts, parse_ts
from gateway import metrics
from gateway.cases import BoardChange, event_id

log = get_logger(__name__)
#: The case ids an entry remembers (a bound on the state of an entry closed as false_read all day).
MAX_CASES = 1000


@dataclass(frozen=True, slots=True)
class FalseRead:
    """One case closed as ``false_read``, for one of its entries."""

    list_id: str
    entry_id: str
    owner: str | None
    case_id: str
    at: datetime
    reason: str | None


def false_reads(change: BoardChange) -> list[tuple[str, FalseRead]]:
    """The entries of a case a desk just closed as ``false_read`` (only those that desk saw: the case's entries),
    with each entry's owner where the case's newest hit names it."""
    ev = change.event
    if ev is None or ev["state"] != "closed" or ev.get("outcome") != "false_read":
        return []
    at = parse_ts(ev["at"])
    owners = {(m["list_id"], m["entry_id"]): m.get("owner") for m in change.hit["matches"]}
    out = []
    for list_id, entry_id in ev["entries"]:  # every entry the case is for, over all its sightings
        fr = FalseRead(list_id, entry_id, owners.get((list_id, entry_id)), change.hit_id, at, ev.get("reason"))
        out.append((f"{list_id}/{entry_id}", fr))
    return out


@dataclass(slots=True)
class EntryQuality:
    """One entry's cases closed as ``false_read`` within the window, oldest first, and when it was last flagged."""

    cases: dict[str, datetime] = field(default_factory=dict)
    flagged_at: datetime | None = None


def flag_event(fr: FalseRead, q: EntryQuality, window: timedelta) -> dict[str, Any]:
    at = format_ts(fr.at)
    return {
        "event_id": event_id(fr.list_id, fr.entry_id, "flagged", at, str(len(q.cases))),
        "kind": "entry_flagged",
        "list_id": fr.list_id,
        "entry_id": fr.entry_id,
        "owner": fr.owner,
        "flag": "false_reads",
        "false_reads": len(q.cases),
        "window_days": window.total_seconds() / 86400,
        "at": at,
        "cases": list(q.cases),
        "last_reason": fr.reason,
    }


class EntryLogic(StatefulLogic[FalseRead, dict[str, Any], EntryQuality]):
    """The false reads of one entry; a flag event when they reach the threshold (again once per window)."""

    def __init__(self, threshold: int, window: timedelta, resume: EntryQuality | None) -> None:
        self.threshold, self.window = threshold, window
        self.q = resume or EntryQuality()

    def on_item(self, value: FalseRead) -> tuple[Iterable[dict[str, Any]], bool]:
        q = self.q
        if value.case_id in q.cases:
            return [], self.RETAIN  # the same case closed at another desk: counted once
        q.cases[value.case_id] = value.at
        start = value.at - self.window
        q.cases = dict(sorted(((c, t) for c, t in q.cases.items() if t > start), key=lambda kv: kv[1])[-MAX_CASES:])
        if len(q.cases) < self.threshold:
            return [], self.RETAIN
        if q.flagged_at is not None and value.at - q.flagged_at < self.window:
            return [], self.RETAIN  # flagged already within this window: the owner has it
        q.flagged_at = value.at
        metrics.FLAGGED.labels(value.list_id).inc()
        log.warning(
            "entry_flagged",
            list_id=value.list_id,
            entry_id=value.entry_id,
            false_reads=len(q.cases),
            window_days=self.window.total_seconds() / 86400,
        )
        return [flag_event(value, q, self.window)], self.RETAIN

    def on_notify(self) -> tuple[Iterable[dict[str, Any]], bool]:
        return [], self.DISCARD  # nothing within the window any more: the entry's state goes

    def notify_at(self) -> datetime | None:
        last = max(self.q.cases.values(), default=None)
        return last + self.window if last is not None else None

    def snapshot(self) -> EntryQuality:
        return copy.deepcopy(self.q)
