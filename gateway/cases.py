"""What the Hit Gateway keeps per vehicle: one case per desk and entries, its sightings, its life (DESIGN 12).

Pure functions over :class:`VehicleCases`, given the time, so that every rule is
tested with a controlled clock; :mod:`gateway.flow` runs them in a Bytewax
``stateful`` step keyed by the vehicle (:func:`vehicle_of`: a keyed hash of the
plate key and country; the state survives restarts with the recovery store).

- **A case per vehicle and entries.** A hit opens a case ``new`` at every desk
  whose rule takes it (a routing rule of DESIGN 6), unless that desk already
  holds a case of this vehicle for one of the same entries: then the hit joins
  that case as a **sighting** (an event ``sighting`` with the joining hit in
  ``sighting_of``), the card shows the trail, and the escalation deadline stays
  the case's. A case closed less than ``reopen_within_minutes`` ago reopens
  (``reopened``, a new deadline, its history kept) instead of starting over.
- **Alerts.** A desk is alerted (sound, flash) for a new or reopened case, and
  for a sighting only when it comes from another region than the last one or
  after ``realert_after_minutes`` of quiet — always within
  ``alert_max_priority`` (:meth:`Desks.alerts`).
- **Escalation.** A case not acknowledged within ``escalate_after_seconds`` of
  its priority turns ``escalated``, and the desk's ``escalate_to`` gets a ``new``
  case of its own with the trail so far (unless it holds one for those entries;
  a chain never loops). Later sightings the first desk takes join it there too.
- **Actions.** A desk acknowledges a ``new``, ``escalated`` or ``reopened`` case,
  and closes an open one with an outcome (and a reason for ``false_read`` and
  ``not_found``). Anything else is refused with a reason (:func:`refusal`, the
  one rule the console asks too), and changes nothing.
- **Other desks' work.** Each card names the other desks' open cases of the same
  vehicle for the same entries (need to know: only entries this desk sees), with
  who acknowledged them and when.
- **Leaving.** A closed case leaves the board after ``keep_closed_minutes`` and
  the state once it can no longer reopen; every case leaves
  ``case_retention_hours`` after it opened (``expired`` when not closed).

Every change is one :class:`BoardChange`; those with an ``event`` are the audit
trail on ``events_topic`` (no plate: case and hit ids, desk, state, user, time,
outcome, the entries).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from feblam.logs import plate_ref
from feblam.serde import format_ts, parse_ts
from gateway.actions import ACTION_KINDS, DeskAction
from gateway.settings import OUTCOMES, Desks

CaseState = Literal["new", "acknowledged", "escalated", "reopened", "closed", "expired"]
OPEN_STATES = frozenset({"new", "escalated", "reopened", "acknowledged"})
UNACKNOWLEDGED = frozenset({"new", "escalated", "reopened"})
#: Outcomes that need a reason (what was checked, what was wrong): the list's owner acts on them.
NEEDS_REASON = frozenset({"false_read", "not_found"})
#: How long an action for a case the gateway does not hold yet waits for it: the hits topic may be read after
#: the actions topic (after a crash both are read again, in no order between them), or lag behind it.
ACTION_WAITS = timedelta(minutes=10)
#: Sightings a case's trail keeps (the newest; the count goes on): a vehicle seen all day stays bounded.
MAX_TRAIL = 50
#: Hit ids a vehicle remembers, to know a repeated hit (a replay, or one hit on two topics).
MAX_SEEN = 1000

Entry = tuple[str, str]  # (list_id, entry_id)


def vehicle_of(hit: dict[str, Any], hash_key: str | None = None) -> str:
    """The state key of a hit's vehicle: a keyed hash of its plate key and country (never the plate itself);
    ``hash_key``: the ``privacy.hash_key`` of another process (a client that names the vehicle of an action)."""
    read = hit["read"]
    return plate_ref(f"{read['plate']}/{read.get('country') or ''}", hash_key)


@dataclass(slots=True)
class Sighting:
    """One hit of a case's vehicle, as its trail shows it (no plate: where, when, which way)."""

    hit_id: str
    at: datetime  # when the gateway took it (broker time)
    ts: str  # capture time
    camera_id: str
    lat: float | None
    lon: float | None
    direction: str | int | None
    region: str | None

    @classmethod
    def of(cls, hit: dict[str, Any], at: datetime, region: str | None) -> Sighting:
        r = hit["read"]
        return cls(hit["hit_id"], at, r["ts"], r["camera_id"], r.get("lat"), r.get("lon"), r.get("direction"), region)

    @classmethod
    def earlier_of(cls, hit: dict[str, Any], at: datetime, desks: Desks) -> Sighting | None:
        """A clone hit's earlier sighting (the other place the plate was read), as a sighting of the trail."""
        clone = hit.get("clone")
        if not clone:
            return None
        e = clone["earlier"]
        region = desks.region(str(e["camera_id"]))
        return cls(hit["hit_id"], at, e["ts"], e["camera_id"], e.get("lat"), e.get("lon"), e.get("direction"), region)

    def view(self) -> dict[str, Any]:
        return {
            "hit_id": self.hit_id,
            "ts": self.ts,
            "camera_id": self.camera_id,
            "lat": self.lat,
            "lon": self.lon,
            "direction": self.direction,
            "region": self.region,
        }


@dataclass(slots=True)
class Case:
    """A vehicle's case at one desk, for one or more entries."""

    case_id: str  # the hit that opened it (the card's id; actions name it)
    desk: str
    state: CaseState
    opened_at: datetime
    at: datetime  # the last change
    deadline: datetime | None  # when it escalates unless acknowledged (None: never)
    hit: dict[str, Any]  # the newest hit of the case
    visible: tuple[int, ...]  # the positions of that hit's matches this desk may see (need to know)
    entries: frozenset[Entry]  # every entry the case is for, over its sightings
    trail: list[Sighting] = field(default_factory=list)  # oldest first, the newest MAX_TRAIL
    seen: int = 0  # sightings, the first included
    #: The earliest and latest capture times over every sighting (the trail keeps only the newest).
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    user: str | None = None
    outcome: str | None = None
    reason: str | None = None
    escalated_from: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    closed_at: datetime | None = None
    on_board: bool = True
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier closings of a reopened case

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def view(self) -> dict[str, Any]:
        """The case as the console shows it (the trail newest first)."""
        first, last = self.first_seen or self.opened_at, self.last_seen or self.opened_at
        return {
            "case_id": self.case_id,
            "desk": self.desk,
            "state": self.state,
            "opened_at": format_ts(self.opened_at),
            "at": format_ts(self.at),
            "deadline": format_ts(self.deadline) if self.deadline else None,
            "user": self.user,
            "outcome": self.outcome,
            "reason": self.reason,
            "escalated_from": self.escalated_from,
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": format_ts(self.acknowledged_at) if self.acknowledged_at else None,
            "seen": self.seen,
            "seen_minutes": round((last - first).total_seconds() / 60, 1),
            "trail": [s.view() for s in reversed(self.trail)],
            "history": list(self.history),
            "entries": sorted(list(e) for e in self.entries),
        }


@dataclass(slots=True)
class VehicleCases:
    """One vehicle's cases (the Bytewax state of one vehicle key), and actions waiting for a case not read yet."""

    vehicle: str
    cases: list[Case] = field(default_factory=list)
    seen: dict[str, None] = field(default_factory=dict)  # hit ids taken, oldest first (bounded)
    waiting: list[DeskAction] = field(default_factory=list)
    waiting_until: datetime | None = None

    def case(self, desk: str, case_id: str) -> Case | None:
        return next((c for c in self.cases if c.desk == desk and c.case_id == case_id), None)

    @property
    def empty(self) -> bool:
        return not self.cases and not self.waiting


@dataclass(frozen=True, slots=True)
class BoardChange:
    """One desk's view of one case changed; ``case`` None: it leaves that desk's board. ``alert``: the desk's
    page sounds and flashes for it (:meth:`Desks.alerts`)."""

    hit_id: str  # the case id
    desk: str
    case: dict[str, Any] | None
    hit: dict[str, Any]
    event: dict[str, Any] | None  # the audit event; None for board-only changes (after a restart, removal)
    alert: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an action may not be applied; ``conflict``: the case's state forbids it (else the action is malformed)."""

    reason: str
    conflict: bool


def refusal(state: str, kind: str, outcome: str | None, reason: str | None = None) -> Refusal | None:
    """Whether ``kind`` (with ``outcome`` and ``reason``) may be applied to a case in ``state``: None, or why not."""
    if kind not in ACTION_KINDS:
        return Refusal(f"no such action {kind!r} (one of {', '.join(ACTION_KINDS)})", conflict=False)
    if kind == "acknowledge":
        return None if state in UNACKNOWLEDGED else Refusal(f"cannot acknowledge a case that is {state}", conflict=True)
    if state not in OPEN_STATES:
        return Refusal(f"the case is already {state}", conflict=True)
    if outcome not in OUTCOMES:
        return Refusal(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}", conflict=False)
    if outcome in NEEDS_REASON and not (reason or "").strip():
        return Refusal(f"outcome {outcome} needs a reason (what was checked, what was wrong)", conflict=False)
    return None


def card_action(
    card: dict[str, Any], desk: str, party: str, kind: str, outcome: str | None, reason: str | None
) -> DeskAction | Refusal:
    """What a desk's user (console) or system (API) asks of a case on its board: the action to sign and send,
    or why the case rules refuse it (the flow asks :func:`refusal` the same)."""
    refused = refusal(card["case"]["state"], kind, outcome, reason)
    if refused is not None:
        return refused
    vehicle = vehicle_of(card["hit"])
    at = datetime.now(UTC)
    return DeskAction(card["hit_id"], desk, party, kind, at, outcome, reason.strip() if reason else None, vehicle)  # type: ignore[arg-type]


def event_id(*parts: str | None) -> str:
    """The id of an event on the audit trail: a digest of what it says (the same event, the same id)."""
    digest = hashlib.blake2b(digest_size=16, person=b"feblam-event")
    for part in parts:
        digest.update((part or "").encode() + b"\x1f")
    return digest.hexdigest()


def event(case: Case, state: str | None = None, sighting_of: str | None = None) -> dict[str, Any]:
    """The audit event of a case's last change (DESIGN 12). Its ``event_id`` is a digest of what it says, and
    its time comes from the hits and actions (broker time) or the deadlines they set: an event a restart
    repeats is the same event, with the same id."""
    state = state or case.state
    at = format_ts(case.trail[-1].at if sighting_of and case.trail else case.at)
    doc: dict[str, Any] = {
        "event_id": event_id(case.case_id, case.desk, state, case.user, at, case.outcome, sighting_of),
        "hit_id": case.case_id,
        "desk": case.desk,
        "state": state,
        "user": None if state in ("sighting", "reopened", "escalated", "expired") else case.user,
        "at": at,
        "outcome": case.outcome if state == "closed" else None,
        "entries": sorted(list(e) for e in case.entries),
        "priority": desk_view(case.hit, case.visible)["priority"],
    }
    if state == "closed" and case.reason:
        doc["reason"] = case.reason
    if sighting_of is not None:
        doc["sighting_of"] = sighting_of
    return doc


def desk_view(hit: dict[str, Any], visible: Sequence[int]) -> dict[str, Any]:
    """The hit as one desk sees it: only the matches it may see, and the best priority among them."""
    matches = [hit["matches"][i] for i in visible]
    return {**hit, "matches": matches, "priority": min((m["priority"] for m in matches), default=hit["priority"])}


def entries_of(hit: dict[str, Any], visible: Iterable[int]) -> frozenset[Entry]:
    return frozenset((hit["matches"][i]["list_id"], hit["matches"][i]["entry_id"]) for i in visible)


def also_open(vc: VehicleCases, case: Case) -> list[dict[str, Any]]:
    """The other desks' open cases of this vehicle for entries this case is for (need to know: nothing of
    entries this desk does not see)."""
    return [
        {
            "desk": o.desk,
            "state": o.state,
            "acknowledged_by": o.acknowledged_by,
            "acknowledged_at": format_ts(o.acknowledged_at) if o.acknowledged_at else None,
            "opened_at": format_ts(o.opened_at),
        }
        for o in vc.cases
        if o.desk != case.desk and o.is_open and o.entries & case.entries
    ]


def _change(vc: VehicleCases, case: Case, ev: dict[str, Any] | None, alert: bool = False) -> BoardChange:
    view = {**case.view(), "also_open": also_open(vc, case)}
    return BoardChange(case.case_id, case.desk, view, desk_view(case.hit, case.visible), ev, alert)


def _others(vc: VehicleCases, changed: Iterable[Case]) -> list[BoardChange]:
    """Board-only changes of the vehicle's other cases on a board whose "also open" names a changed case (those
    of another desk for one of its entries); ``changed`` None-like empty: every case on a board."""
    changed = list(changed)
    done = {(c.desk, c.case_id) for c in changed}
    return [
        _change(vc, c, None)
        for c in vc.cases
        if c.on_board
        and (c.desk, c.case_id) not in done
        and (not changed or any(o.desk != c.desk and o.entries & c.entries for o in changed))
    ]


def too_old(hit: dict[str, Any], desks: Desks, now: datetime) -> bool:
    """Whether a hit was emitted longer than ``max_hit_age_minutes`` before the gateway took it."""
    return now - parse_ts(hit["emitted_at"]) > desks.max_age


def repeated(vc: VehicleCases, hit: dict[str, Any]) -> bool:
    """Whether the vehicle already took this hit (a replay, or the same hit on two hits topics)."""
    return hit["hit_id"] in vc.seen


def take_hit(
    vc: VehicleCases, hit: dict[str, Any], routes: Sequence[str], desks: Desks, now: datetime
) -> list[BoardChange]:
    """A new hit of the vehicle at each desk of ``routes`` (:meth:`Desks.route`): it joins that desk's case for
    the same entries (a sighting; a recently closed one reopens), or opens a new one."""
    vc.seen[hit["hit_id"]] = None
    while len(vc.seen) > MAX_SEEN:
        del vc.seen[next(iter(vc.seen))]
    region = desks.region(str(hit["read"]["camera_id"]))
    changes: list[BoardChange] = []
    touched: list[Case] = []
    took: set[str] = set()
    todo: list[tuple[str, str | None]] = [(name, None) for name in routes]
    while todo:
        name, via = todo.pop(0)
        if name in took:
            continue
        took.add(name)
        visible = desks.visible(hit, name, via=via)
        if not visible:
            continue
        entries = entries_of(hit, visible)
        case = _joinable(vc, name, entries, now, desks)
        sighting = Sighting.of(hit, now, region)
        if case is None:
            priority = desk_view(hit, visible)["priority"]
            case = Case(
                hit["hit_id"], name, "new", now, now, desks.deadline(priority, name, now), hit, visible, entries
            )
            case.trail.append(sighting)
            case.seen = 1
            case.first_seen = case.last_seen = parse_ts(sighting.ts)
            _add_earlier(case, hit, now, desks)
            vc.cases.append(case)
            changes.append(_change(vc, case, event(case), desks.alerts(priority)))
        else:
            changes.append(_join(vc, case, hit, visible, entries, sighting, desks, now))
        touched.append(case)
        # a case that went on by escalation takes the sightings of the desk it came from
        todo += [(c.desk, name) for c in vc.cases if c.escalated_from == name and c.is_open and c.entries & entries]
    return changes + _others(vc, touched)


def _joinable(vc: VehicleCases, desk: str, entries: frozenset[Entry], now: datetime, desks: Desks) -> Case | None:
    """The desk's case of this vehicle for one of ``entries``: open, or closed recently enough to reopen."""
    for case in vc.cases:
        if case.desk != desk or not case.entries & entries:
            continue
        if case.is_open:
            return case
        if case.state == "closed" and case.closed_at is not None and now - case.closed_at < desks.reopen_within:
            return case
    return None


def _join(
    vc: VehicleCases,
    case: Case,
    hit: dict[str, Any],
    visible: tuple[int, ...],
    entries: frozenset[Entry],
    sighting: Sighting,
    desks: Desks,
    now: datetime,
) -> BoardChange:
    last = case.trail[-1] if case.trail else None
    case.hit, case.visible, case.entries = hit, visible, case.entries | entries
    case.trail.append(sighting)
    case.seen += 1
    ts = parse_ts(sighting.ts)
    case.first_seen = min(case.first_seen or ts, ts)
    case.last_seen = max(case.last_seen or ts, ts)
    _add_earlier(case, hit, now, desks)
    del case.trail[:-MAX_TRAIL]
    priority = desk_view(hit, visible)["priority"]
    if case.state == "closed":
        case.history.append(
            {"outcome": case.outcome, "reason": case.reason, "user": case.user, "at": format_ts(case.at)}
        )
        case.state, case.outcome, case.reason, case.closed_at, case.on_board = "reopened", None, None, None, True
        case.acknowledged_by = case.acknowledged_at = None
        case.user, case.at = None, now
        case.deadline = desks.deadline(priority, case.desk, now)
        return _change(vc, case, event(case, sighting_of=hit["hit_id"]), desks.alerts(priority))
    quiet = last is None or now - last.at >= desks.realert_after
    moved = last is not None and sighting.region is not None and sighting.region != last.region
    return _change(vc, case, event(case, "sighting", hit["hit_id"]), (quiet or moved) and desks.alerts(priority))


def _add_earlier(case: Case, hit: dict[str, Any], now: datetime, desks: Desks) -> None:
    """A clone hit's earlier sighting joins the trail before the hit's own (unless the trail has it): the card
    and the map then show both places the plate was read."""
    earlier = Sighting.earlier_of(hit, now, desks)
    if earlier is None or any(s.ts == earlier.ts and s.camera_id == earlier.camera_id for s in case.trail):
        return
    case.trail.insert(len(case.trail) - 1, earlier)
    case.seen += 1
    ts = parse_ts(earlier.ts)
    case.first_seen = min(case.first_seen or ts, ts)


def apply_action(vc: VehicleCases, action: DeskAction) -> tuple[list[BoardChange], str | None]:
    """A desk's acknowledge or close: the changes, or none and the reason it was refused."""
    case = vc.case(action.desk, action.hit_id)
    if case is None:
        return [], f"case {action.hit_id[:64]} is not at desk {action.desk}"
    refused = refusal(case.state, action.kind, action.outcome, action.reason)
    if refused is not None:
        return [], refused.reason
    if action.kind == "acknowledge":
        case.state, case.acknowledged_by, case.acknowledged_at = "acknowledged", action.user, action.at
        case.deadline = None
    else:
        case.state, case.outcome, case.reason, case.deadline = "closed", action.outcome, action.reason, None
        case.closed_at = action.at
    case.user, case.at = action.user, action.at
    return [_change(vc, case, event(case)), *_others(vc, [case])], None


def escalate_due(vc: VehicleCases, desks: Desks, now: datetime) -> list[BoardChange]:
    """Every unacknowledged case past its deadline turns ``escalated``; its desk's target gets a ``new`` case."""
    changes: list[BoardChange] = []
    touched: list[Case] = []
    while True:
        due = [c for c in vc.cases if c.state in UNACKNOWLEDGED and c.deadline is not None and c.deadline <= now]
        if not due:
            return changes + (_others(vc, touched) if touched else [])
        for case in due:
            when = case.deadline or now  # dated by the deadline it passed: the same after any restart
            case.state, case.user, case.at, case.deadline = "escalated", None, when, None
            changes.append(_change(vc, case, event(case)))
            touched.append(case)
            target = desks.escalate_to.get(case.desk)
            if not target or any(
                c.desk == target and (c.case_id == case.case_id or (c.is_open and c.entries & case.entries))
                for c in vc.cases
            ):
                continue  # the target already holds it: a chain never loops
            visible = desks.visible(case.hit, target, via=case.desk)
            deadline = desks.deadline(desk_view(case.hit, visible)["priority"], target, when)
            new = Case(
                case.case_id,
                target,
                "new",
                when,
                when,
                deadline,
                case.hit,
                visible,
                entries_of(case.hit, visible),
                trail=list(case.trail),
                seen=case.seen,
                first_seen=case.first_seen,
                last_seen=case.last_seen,
                escalated_from=case.desk,
            )
            vc.cases.append(new)
            touched.append(new)
            changes.append(_change(vc, new, event(new), desks.alerts(desk_view(case.hit, visible)["priority"])))


def hold_until(case: Case, desks: Desks) -> datetime | None:
    """When a closed case leaves the state: once it left the board and can no longer reopen."""
    if case.closed_at is None:
        return None
    return case.closed_at + max(desks.keep_closed, desks.reopen_within)


def next_due(vc: VehicleCases, desks: Desks) -> datetime | None:
    """The next time something happens to this vehicle without anyone acting: an escalation, a closed case
    leaving the board or the state, a case's retention, an action's wait."""
    due: list[datetime] = []
    for c in vc.cases:
        if c.deadline is not None and c.state in UNACKNOWLEDGED:
            due.append(c.deadline)
        if c.closed_at is not None:
            due.append(c.closed_at + desks.keep_closed if c.on_board else hold_until(c, desks) or c.closed_at)
        due.append(c.opened_at + desks.retention)
    if vc.waiting_until is not None:
        due.append(vc.waiting_until)
    return min(due, default=None)


def retention_end(case: Case, desks: Desks) -> datetime:
    """When a case leaves the state whatever its state: ``case_retention_hours`` after it opened."""
    return case.opened_at + desks.retention


def sweep(vc: VehicleCases, desks: Desks, now: datetime) -> list[BoardChange]:
    """Past its retention, a case not closed turns ``expired`` (an audit event) and leaves; a closed case leaves
    the board after ``keep_closed_minutes`` and the state when it can no longer reopen. Nothing of a case that
    left (position, note, the hit) stays in the state or the recovery store."""
    changes: list[BoardChange] = []
    kept: list[Case] = []
    for case in vc.cases:
        end = retention_end(case, desks)
        if now >= end:
            if case.state != "closed":
                case.state, case.user, case.at, case.deadline = "expired", None, end, None
                changes.append(_change(vc, case, event(case)))
            if case.on_board:
                changes.append(BoardChange(case.case_id, case.desk, None, case.hit, None))
            continue
        if case.on_board and case.closed_at is not None and case.closed_at + desks.keep_closed <= now:
            case.on_board = False
            changes.append(BoardChange(case.case_id, case.desk, None, case.hit, None))
        until = hold_until(case, desks)
        if until is not None and until <= now:
            continue
        kept.append(case)
    if len(kept) != len(vc.cases):
        vc.cases = kept
        changes += _others(vc, [])
    return changes


def board_view(vc: VehicleCases) -> list[BoardChange]:
    """Every case on a board as it stands, without audit events (the boards after a restart)."""
    return [_change(vc, case, None) for case in vc.cases if case.on_board]
