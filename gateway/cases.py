"""What the Hit Gateway keeps per hit: one case per desk, new → acknowledged → closed (DESIGN 12).

Pure functions over :class:`HitCases`, given the time, so that every rule is
tested with a controlled clock; :mod:`gateway.flow` runs them in a Bytewax
``stateful`` step keyed by ``hit_id`` (the state survives restarts with the
recovery store).

- A hit opens a case ``new`` at every desk whose rule takes it (a routing rule
  of DESIGN 6, the same function the sinks use), unless it was emitted more than
  ``max_hit_age_minutes`` before the gateway takes it.
- A case not acknowledged within ``[gateway] escalate_after_seconds`` of its
  priority turns ``escalated``, and the desk's ``escalate_to`` gets a ``new``
  case of its own (which escalates along its own ``escalate_to`` in turn; a
  desk that already holds the hit is skipped, so a chain never loops).
- A desk acknowledges a ``new`` or ``escalated`` case, and closes an open one
  with an outcome. Anything else is refused with a reason (:func:`refusal`, the
  one rule the console asks too), and changes nothing.
- When every case of a hit is closed, the hit stays for
  ``keep_closed_minutes`` (a replayed hit is recognised, the board shows it),
  then leaves the state and the board.

Every change is one :class:`BoardChange`; those with an ``event`` are the audit
trail on ``events_topic`` (no plate: hit id, desk, state, user, time, outcome).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from feblam.serde import format_ts, parse_ts
from gateway.actions import ACTION_KINDS, DeskAction
from gateway.settings import OUTCOMES, Desks

CaseState = Literal["new", "acknowledged", "escalated", "closed", "expired"]
OPEN_STATES = frozenset({"new", "escalated", "acknowledged"})
UNACKNOWLEDGED = frozenset({"new", "escalated"})
#: How long an action for a hit the gateway does not hold yet waits for it: the hits topic may be read after
#: the actions topic (after a crash both are read again, in no order between them), or lag behind it.
ACTION_WAITS = timedelta(minutes=10)


@dataclass(slots=True)
class Case:
    """A hit at one desk."""

    desk: str
    state: CaseState
    opened_at: datetime
    at: datetime  # the last change
    deadline: datetime | None  # when it escalates unless acknowledged (None: never)
    user: str | None = None
    outcome: str | None = None
    escalated_from: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    #: The positions of the hit's matches this desk may see (need to know: :meth:`Desks.visible`).
    visible: tuple[int, ...] = ()

    def view(self) -> dict[str, Any]:
        """The case as the console shows it."""
        return {
            "desk": self.desk,
            "state": self.state,
            "opened_at": format_ts(self.opened_at),
            "at": format_ts(self.at),
            "deadline": format_ts(self.deadline) if self.deadline else None,
            "user": self.user,
            "outcome": self.outcome,
            "escalated_from": self.escalated_from,
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": format_ts(self.acknowledged_at) if self.acknowledged_at else None,
        }


@dataclass(slots=True)
class HitCases:
    """One hit and its cases (the Bytewax state of one ``hit_id``)."""

    hit: dict[str, Any]
    cases: dict[str, Case] = field(default_factory=dict)
    closed_at: datetime | None = None  # when the last open case was closed

    @property
    def hit_id(self) -> str:
        return str(self.hit["hit_id"])


@dataclass(slots=True)
class Waiting:
    """Actions for a hit not read yet (the state of its ``hit_id`` until the hit comes, or ``until`` passes)."""

    actions: list[DeskAction]
    until: datetime


@dataclass(frozen=True, slots=True)
class BoardChange:
    """One desk's view of one hit changed; ``case`` None: the hit leaves that desk's board."""

    hit_id: str
    desk: str
    case: dict[str, Any] | None
    hit: dict[str, Any]
    event: dict[str, Any] | None  # the audit event; None for board-only changes (after a restart, removal)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an action may not be applied; ``conflict``: the case's state forbids it (else the action is malformed)."""

    reason: str
    conflict: bool


def refusal(state: str, kind: str, outcome: str | None) -> Refusal | None:
    """Whether ``kind`` (with ``outcome``) may be applied to a case in ``state``: None, or the reason it may not."""
    if kind not in ACTION_KINDS:
        return Refusal(f"no such action {kind!r} (one of {', '.join(ACTION_KINDS)})", conflict=False)
    if kind == "acknowledge":
        return None if state in UNACKNOWLEDGED else Refusal(f"cannot acknowledge a case that is {state}", conflict=True)
    if state == "closed":
        return Refusal("the case is already closed", conflict=True)
    if outcome not in OUTCOMES:
        return Refusal(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}", conflict=False)
    return None


def event_id(*parts: str | None) -> str:
    """The id of an event on the audit trail: a digest of what it says (the same event, the same id)."""
    digest = hashlib.blake2b(digest_size=16, person=b"feblam-event")
    for part in parts:
        digest.update((part or "").encode() + b"\x1f")
    return digest.hexdigest()


def event(hc: HitCases, case: Case) -> dict[str, Any]:
    """The audit event of a case's last change (DESIGN 12). Its ``event_id`` is a digest of what it says, and
    its time comes from the hits and actions (broker time) or the deadlines they set: an event a restart
    repeats is the same event, with the same id."""
    at = format_ts(case.at)
    return {
        "event_id": event_id(hc.hit_id, case.desk, case.state, case.user, at, case.outcome),
        "hit_id": hc.hit_id,
        "desk": case.desk,
        "state": case.state,
        "user": case.user,
        "at": format_ts(case.at),
        "outcome": case.outcome,
    }


def desk_view(hit: dict[str, Any], visible: Sequence[int]) -> dict[str, Any]:
    """The hit as one desk sees it: only the matches it may see, and the best priority among them."""
    matches = [hit["matches"][i] for i in visible]
    return {**hit, "matches": matches, "priority": min((m["priority"] for m in matches), default=hit["priority"])}


def _change(hc: HitCases, case: Case, *, audit: bool = True) -> BoardChange:
    view = desk_view(hc.hit, getattr(case, "visible", range(len(hc.hit["matches"]))))
    return BoardChange(hc.hit_id, case.desk, case.view(), view, event(hc, case) if audit else None)


def too_old(hit: dict[str, Any], desks: Desks, now: datetime) -> bool:
    """Whether a hit was emitted longer than ``max_hit_age_minutes`` before the gateway took it."""
    return now - parse_ts(hit["emitted_at"]) > desks.max_age


def open_cases(
    hit: dict[str, Any], routes: Sequence[str], desks: Desks, now: datetime
) -> tuple[HitCases, list[BoardChange]]:
    """A new hit: a ``new`` case at each desk of ``routes`` (:meth:`Desks.route`; none: no change)."""
    hc = HitCases(hit)
    changes = []
    for name in routes:
        visible = desks.visible(hit, name)
        priority = desk_view(hit, visible)["priority"]
        case = Case(name, "new", now, now, desks.deadline(priority, name, now), visible=visible)
        hc.cases[name] = case
        changes.append(_change(hc, case))
    return hc, changes


def apply_action(hc: HitCases, action: DeskAction) -> tuple[list[BoardChange], str | None]:
    """A desk's acknowledge or close: the changes, or none and the reason it was refused."""
    case = hc.cases.get(action.desk)
    if case is None:
        return [], f"hit is not at desk {action.desk}"
    refused = refusal(case.state, action.kind, action.outcome)
    if refused is not None:
        return [], refused.reason
    if action.kind == "acknowledge":
        case.state, case.acknowledged_by, case.acknowledged_at = "acknowledged", action.user, action.at
        case.deadline = None
    else:
        case.state, case.outcome, case.deadline = "closed", action.outcome, None
    case.user, case.at = action.user, action.at
    if all(c.state == "closed" for c in hc.cases.values()):
        hc.closed_at = action.at
    return [_change(hc, case)], None


def escalate_due(hc: HitCases, desks: Desks, now: datetime) -> list[BoardChange]:
    """Every unacknowledged case past its deadline turns ``escalated``; its desk's target gets a ``new`` case."""
    changes: list[BoardChange] = []
    while True:
        due = [
            c for c in hc.cases.values() if c.state in UNACKNOWLEDGED and c.deadline is not None and c.deadline <= now
        ]
        if not due:
            return changes
        for case in due:
            when = case.deadline or now  # dated by the deadline it passed: the same after any restart
            case.state, case.user, case.at, case.deadline = "escalated", None, when, None
            changes.append(_change(hc, case))
            target = desks.escalate_to.get(case.desk)
            if target and target not in hc.cases:
                visible = desks.visible(hc.hit, target, via=case.desk)
                deadline = desks.deadline(desk_view(hc.hit, visible)["priority"], target, when)
                new = Case(target, "new", when, when, deadline, escalated_from=case.desk, visible=visible)
                hc.cases[target] = new
                changes.append(_change(hc, new))


def next_due(hc: HitCases, desks: Desks) -> datetime:
    """The next time something happens to this hit without anyone acting: an escalation, or leaving the board."""
    deadlines = [c.deadline for c in hc.cases.values() if c.deadline is not None and c.state in UNACKNOWLEDGED]
    if hc.closed_at is not None:
        deadlines.append(hc.closed_at + desks.keep_closed)
    deadlines.append(retention_end(hc, desks))
    return min(deadlines)


def retention_end(hc: HitCases, desks: Desks) -> datetime:
    """When the hit leaves the state whatever its cases' states: ``case_retention_hours`` after its first case."""
    return min(c.opened_at for c in hc.cases.values()) + desks.retention


def expire(hc: HitCases, desks: Desks, now: datetime) -> list[BoardChange]:
    """Past its retention, every case not closed turns ``expired`` (an audit event each); then the caller
    removes the hit. Nothing of it (plate, position, note) stays in the state or the recovery store."""
    end = retention_end(hc, desks)
    if now < end:
        return []
    changes = []
    for case in hc.cases.values():
        if case.state != "closed":
            case.state, case.user, case.at, case.deadline = "expired", None, end, None
            changes.append(_change(hc, case))
    return changes


def expired(hc: HitCases, desks: Desks, now: datetime) -> bool:
    """Every case closed, longer ago than ``keep_closed_minutes``: the hit leaves state and board."""
    return hc.closed_at is not None and hc.closed_at + desks.keep_closed <= now


def removal(hc: HitCases) -> list[BoardChange]:
    """The hit leaves every board it is on."""
    return [BoardChange(hc.hit_id, name, None, hc.hit, None) for name in hc.cases]


def board_view(hc: HitCases) -> list[BoardChange]:
    """Every case as it stands, without audit events (the boards after a restart)."""
    return [_change(hc, case, audit=False) for case in hc.cases.values()]
