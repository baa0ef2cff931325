"""The gateway's case rules with a controlled clock: routing, sightings, reopening, acknowledge, close,
escalation, other desks' work, leaving the board and the state."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from feblam.config import settings_from_dict
from gateway.cases import (
    VehicleCases,
    apply_action,
    escalate_due,
    next_due,
    refusal,
    retention_end,
    sweep,
    take_hit,
    too_old,
    vehicle_of,
)
from gateway.settings import Desks
from tests.support.gateway import desk_action, gateway_doc, gateway_settings, hit_doc, opened

T0 = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
PLATE = "1ABC123"


def desks(**gateway) -> Desks:
    s = gateway_settings(**gateway)
    return Desks(s.desks, s.gateway)


def two_regions() -> Desks:
    """Brussels and Antwerp both take every camera of theirs; national takes every live P1 hit (a catch-all)."""
    doc = gateway_doc(escalate_after_seconds={"1": 600})
    doc["desks"][2].pop("lists")
    s = settings_from_dict(doc)
    return Desks(s.desks, s.gateway)


def case_of(vc: VehicleCases, desk: str):
    (case,) = [c for c in vc.cases if c.desk == desk]
    return case


def sighting(vc: VehicleCases, d: Desks, camera: str, at: datetime, **kw) -> list:
    hit = hit_doc(camera, plate=PLATE, **{"emitted_at": at, **kw})  # captured when the gateway takes it
    return take_hit(vc, hit, d.route(hit), d, at)


def test_a_hit_opens_a_new_case_at_each_desk_its_rule_takes() -> None:
    hit = hit_doc("CAM-BXL-9")
    vc, changes = opened(hit, desks(), T0)
    assert [c.desk for c in changes] == ["brussels"]
    assert {k: v for k, v in changes[0].event.items() if k != "event_id"} == {
        "hit_id": hit["hit_id"],
        "desk": "brussels",
        "state": "new",
        "user": None,
        "at": "2026-11-29T20:00:00.000Z",
        "outcome": None,
        "entries": [["BE-STOLEN", "S-1"]],
        "priority": 1,
    }
    assert changes[0].alert  # a P1 case alerts its desk
    assert case_of(vc, "brussels").deadline == T0 + timedelta(seconds=60)
    assert vc.vehicle == vehicle_of(hit) and hit["read"]["plate"] not in vc.vehicle  # keyed, never the plate
    _, none = opened(hit_doc("CAM-GNT-1"), desks(), T0)
    assert none == []  # no desk takes it: unrouted


def test_a_second_hit_of_the_vehicle_joins_its_open_case_as_a_sighting() -> None:
    d = desks(realert_after_minutes=15)
    first = hit_doc("CAM-BXL-1", plate=PLATE, emitted_at=T0)
    vc, _ = opened(first, d, T0)
    deadline = case_of(vc, "brussels").deadline
    changes = sighting(vc, d, "CAM-BXL-2", T0 + timedelta(minutes=5))
    (ch,) = changes
    assert ch.hit_id == first["hit_id"]  # the same card
    assert ch.event["state"] == "sighting" and ch.event["sighting_of"] != first["hit_id"]
    assert ch.event["hit_id"] == first["hit_id"] and ch.event["at"] == "2026-11-29T20:05:00.000Z"
    assert not ch.alert  # five minutes after the last sighting, in the same region: no new alert
    case = case_of(vc, "brussels")
    assert case.deadline == deadline and case.seen == 2 and case.state == "new"
    view = ch.case
    assert [s["camera_id"] for s in view["trail"]] == ["CAM-BXL-2", "CAM-BXL-1"]  # newest first
    assert view["seen"] == 2 and view["seen_minutes"] == 5.0
    assert len(vc.cases) == 1


def test_a_sighting_alerts_again_after_a_quiet_spell_or_from_another_region() -> None:
    d = two_regions()
    vc, _ = opened(hit_doc("CAM-BXL-1", plate=PLATE), d, T0)
    quiet = sighting(vc, d, "CAM-BXL-2", T0 + timedelta(minutes=16))
    assert [c.alert for c in quiet if c.desk == "national"] == [True]  # 16 min of quiet at the national desk
    near = sighting(vc, d, "CAM-BXL-3", T0 + timedelta(minutes=17))
    assert [c.alert for c in near if c.event] == [False, False]
    moved = sighting(vc, d, "CAM-ANT-1", T0 + timedelta(minutes=18))
    by_desk = {c.desk: c for c in moved if c.event}
    assert by_desk["national"].alert and by_desk["national"].event["state"] == "sighting"  # another region
    assert by_desk["antwerp"].event["state"] == "new" and by_desk["antwerp"].alert  # antwerp's own new case


def test_alerts_only_within_alert_max_priority() -> None:
    d = desks(alert_max_priority=1)
    _, p2 = opened(hit_doc("CAM-BXL-1", priority=2), d, T0)
    _, p1 = opened(hit_doc("CAM-BXL-1", priority=1), d, T0)
    assert [c.alert for c in p2] == [False] and [c.alert for c in p1] == [True]
    _, never = opened(hit_doc("CAM-BXL-1", priority=1), desks(alert_max_priority=0), T0)
    assert [c.alert for c in never] == [False]


def test_another_desk_sees_the_open_case_and_who_acknowledged_it() -> None:
    d = two_regions()
    vc, _ = opened(hit_doc("CAM-BXL-1", plate=PLATE), d, T0)
    bxl = case_of(vc, "brussels")
    apply_action(vc, desk_action(bxl.hit, "brussels", "acknowledge", T0 + timedelta(minutes=1), case=bxl.case_id))
    changes = sighting(vc, d, "CAM-ANT-1", T0 + timedelta(minutes=13))
    antwerp = next(c for c in changes if c.desk == "antwerp" and c.event)
    also = {o["desk"]: o for o in antwerp.case["also_open"]}
    assert also["brussels"]["acknowledged_by"] == "brussels-1"
    assert also["brussels"]["acknowledged_at"] == "2026-11-29T20:01:00.000Z"
    # brussels' card is refreshed to name antwerp's new case (a board-only change, no audit event)
    refreshed = [c for c in changes if c.desk == "brussels"]
    assert refreshed and refreshed[-1].event is None
    assert "antwerp" in {o["desk"] for o in refreshed[-1].case["also_open"]}


def test_other_desks_cases_on_entries_a_desk_may_not_see_are_not_named() -> None:
    d = two_regions()
    covert = hit_doc("CAM-BXL-1", plate=PLATE, action="observe")
    doc = gateway_doc()
    doc["desks"][1].update(kind="partner", lists=["BE-STOLEN"])  # antwerp: no covert matches
    s = settings_from_dict(doc)
    d = Desks(s.desks, s.gateway)
    vc, _ = opened(covert, d, T0)
    plain = hit_doc("CAM-ANT-1", plate=PLATE)
    plain["matches"][0]["entry_id"] = "S-2"
    changes = take_hit(vc, plain, d.route(plain), d, T0 + timedelta(minutes=1))
    antwerp = next(c for c in changes if c.desk == "antwerp")
    assert antwerp.case["also_open"] == []  # brussels' case is on a covert entry antwerp does not see


def test_a_recently_closed_case_reopens_on_a_new_sighting_and_keeps_its_history() -> None:
    d = desks(reopen_within_minutes=60)
    first = hit_doc("CAM-BXL-1", plate=PLATE)
    vc, _ = opened(first, d, T0)
    apply_action(vc, desk_action(first, "brussels", "close", T0 + timedelta(minutes=2), "not_found", "gone"))
    changes = sighting(vc, d, "CAM-BXL-2", T0 + timedelta(minutes=30))
    (ch,) = changes
    assert ch.event["state"] == "reopened" and ch.alert
    case = case_of(vc, "brussels")
    assert case.state == "reopened" and case.seen == 2
    assert case.history == [
        {"outcome": "not_found", "reason": "gone", "user": "brussels-1", "at": "2026-11-29T20:02:00.000Z"}
    ]
    assert case.deadline == T0 + timedelta(minutes=30, seconds=60)  # a new round: a new deadline
    assert refusal(case.state, "acknowledge", None) is None


def test_a_case_closed_longer_ago_than_reopen_within_starts_over() -> None:
    d = desks(reopen_within_minutes=60, keep_closed_minutes=30)
    first = hit_doc("CAM-BXL-1", plate=PLATE)
    vc, _ = opened(first, d, T0)
    apply_action(vc, desk_action(first, "brussels", "close", T0, "intercepted"))
    left = sweep(vc, d, T0 + timedelta(minutes=30))
    assert [(c.desk, c.case) for c in left] == [("brussels", None)]  # off the board, still in the state
    assert len(vc.cases) == 1
    assert sweep(vc, d, T0 + timedelta(minutes=60)) == [] and vc.cases == []  # can no longer reopen: gone
    (ch,) = sighting(vc, d, "CAM-BXL-2", T0 + timedelta(minutes=61))
    assert ch.event["state"] == "new" and ch.hit_id != first["hit_id"]


def test_closing_a_false_read_or_not_found_needs_a_reason() -> None:
    assert refusal("new", "close", "false_read").reason.startswith("outcome false_read needs a reason")
    assert refusal("new", "close", "not_found", " ") is not None
    assert refusal("new", "close", "false_read", "the entry has O for 0") is None
    assert refusal("new", "close", "intercepted") is None


def test_priority_sets_the_deadline_and_an_absent_priority_never_escalates() -> None:
    d = desks()
    vc, _ = opened(hit_doc(priority=2), d, T0)
    assert vc.cases[0].deadline == T0 + timedelta(seconds=120)
    vc, _ = opened(hit_doc(priority=3), d, T0)
    assert vc.cases[0].deadline is None
    assert next_due(vc, d) == T0 + d.retention  # no escalation ever: only the case's retention is due
    assert escalate_due(vc, d, T0 + timedelta(days=1)) == []


def test_unacknowledged_escalates_exactly_at_the_deadline_with_its_trail() -> None:
    d = desks()
    first = hit_doc(plate=PLATE)
    vc, _ = opened(first, d, T0)
    sighting(vc, d, "CAM-BXL-2", T0 + timedelta(seconds=30))
    assert escalate_due(vc, d, T0 + timedelta(seconds=59.999)) == []
    assert next_due(vc, d) == T0 + timedelta(seconds=60)
    changes = escalate_due(vc, d, T0 + timedelta(seconds=60))
    assert [(c.desk, c.event["state"]) for c in changes if c.event] == [("brussels", "escalated"), ("national", "new")]
    national = case_of(vc, "national")
    assert national.escalated_from == "brussels" and national.case_id == first["hit_id"]
    assert national.seen == 2 and len(national.trail) == 2  # the trail so far goes with it
    assert national.deadline is None  # national escalates nowhere
    assert escalate_due(vc, d, T0 + timedelta(hours=1)) == []  # once
    # a later sighting brussels takes joins national's case too
    later = sighting(vc, d, "CAM-BXL-3", T0 + timedelta(minutes=5))
    assert sorted((c.desk, c.event["state"]) for c in later if c.event) == [
        ("brussels", "sighting"),
        ("national", "sighting"),
    ]


def test_acknowledged_in_time_never_escalates() -> None:
    d = desks()
    hit = hit_doc()
    vc, _ = opened(hit, d, T0)
    changes, refused = apply_action(vc, desk_action(hit, "brussels", "acknowledge", T0 + timedelta(seconds=30)))
    assert refused is None
    assert {k: v for k, v in changes[0].event.items() if k not in ("event_id", "entries", "priority")} == {
        "hit_id": hit["hit_id"],
        "desk": "brussels",
        "state": "acknowledged",
        "user": "brussels-1",
        "at": "2026-11-29T20:00:30.000Z",
        "outcome": None,
    }
    assert next_due(vc, d) == T0 + d.retention
    assert escalate_due(vc, d, T0 + timedelta(hours=1)) == []


def test_refused_actions_change_nothing() -> None:
    d = desks()
    hit = hit_doc()
    vc, _ = opened(hit, d, T0)
    assert apply_action(vc, desk_action(hit, "antwerp", "acknowledge", T0)) == (
        [],
        f"case {hit['hit_id']} is not at desk antwerp",
    )
    bad = desk_action(hit, "brussels", "close", T0, outcome="arrested-the-wrong-car")
    assert apply_action(vc, bad)[0] == [] and vc.cases[0].state == "new"
    close = desk_action(hit, "brussels", "close", T0, outcome="false_read", reason="O for 0 in the entry")
    assert apply_action(vc, close)[1] is None
    assert apply_action(vc, close) == ([], "the case is already closed")
    assert apply_action(vc, desk_action(hit, "brussels", "acknowledge", T0))[1] == (
        "cannot acknowledge a case that is closed"
    )


def test_a_closed_case_leaves_the_board_after_keep_closed() -> None:
    d = desks(reopen_within_minutes=0)
    hit = hit_doc()
    vc, _ = opened(hit, d, T0)
    apply_action(vc, desk_action(hit, "brussels", "close", T0 + timedelta(seconds=5), outcome="intercepted"))
    closed_at = T0 + timedelta(seconds=5)
    assert next_due(vc, d) == closed_at + d.keep_closed
    assert sweep(vc, d, closed_at + d.keep_closed - timedelta(seconds=1)) == []
    assert [c.case for c in sweep(vc, d, closed_at + d.keep_closed)] == [None]
    assert vc.empty


def test_retro_rule_and_escalation_chain_never_loops() -> None:
    doc = gateway_doc()
    doc["desks"][2]["escalate_to"] = "brussels"  # brussels -> national -> brussels: a loop in the configuration
    doc["desks"][2].update({"max_priority": 5, "lists": ["NONE"]})
    doc["desks"][0]["retro"] = False
    s = settings_from_dict(doc)
    d = Desks(s.desks, s.gateway)
    assert opened(hit_doc(retro=True), d, T0)[1] == []  # brussels takes live hits only
    vc, _ = opened(hit_doc(), d, T0)
    escalate_due(vc, d, T0 + timedelta(seconds=60))
    later = escalate_due(vc, d, T0 + timedelta(seconds=120))
    assert [(c.desk, c.case["state"]) for c in later if c.event] == [("national", "escalated")]
    assert escalate_due(vc, d, T0 + timedelta(days=1)) == []


RANK = {"new": 0, "reopened": 0, "escalated": 1, "acknowledged": 2, "closed": 3, "expired": 4}

step = st.tuples(
    st.sampled_from(["acknowledge", "close", "wait", "sighting", "sighting-ant", "restart"]), st.integers(0, 1200)
)


@settings(max_examples=80, deadline=None)
@given(st.lists(step, max_size=16))
def test_case_rules_with_sightings_under_a_controlled_clock_and_restarts(steps: list[tuple[str, int]]) -> None:
    """State only moves forward within a round (a reopen starts the next one); each change is one event; a
    reopened case keeps its history and trail; a restart (the state through a snapshot) changes nothing."""
    d = two_regions()
    first = hit_doc("CAM-BXL-1", plate=PLATE)
    vc, _ = opened(first, d, T0)
    now = T0
    events: list[dict] = []
    for kind, secs in steps:
        now += timedelta(seconds=secs)
        before = {(c.desk, c.case_id): (c.state, len(c.history), c.seen) for c in vc.cases}
        if kind == "restart":
            vc = copy.deepcopy(vc)  # what the recovery store gives back
            changes = []
        elif kind == "wait":
            changes = escalate_due(vc, d, now) + sweep(vc, d, now)
        elif kind.startswith("sighting"):
            changes = escalate_due(vc, d, now) + sighting(
                vc, d, "CAM-ANT-1" if kind.endswith("ant") else "CAM-BXL-2", now
            )
        else:
            case = vc.case("brussels", first["hit_id"])
            if case is None:
                continue
            changes = escalate_due(vc, d, now)
            act = desk_action(case.hit, "brussels", kind, now, "false_read", case=case.case_id)
            changes += apply_action(vc, act)[0]
        audited = [ch for ch in changes if ch.event is not None]
        events += [ch.event for ch in audited]
        for c in vc.cases:
            key = (c.desk, c.case_id)
            if key not in before:
                continue
            state, rounds, seen = before[key]
            assert len(c.history) >= rounds and c.seen >= seen  # nothing of a case's past is lost
            if len(c.history) == rounds:
                assert RANK[c.state] >= RANK[state]  # within a round, only forward
            else:
                assert state == "closed" and c.state == "reopened"
        # one event per change of a case: a state change or a sighting
        for ch in audited:
            assert ch.event["state"] in ("sighting", ch.case["state"] if ch.case else "expired")
        assert len({e["event_id"] for e in events}) == len(events)  # no event twice
    for c in vc.cases:
        assert c.seen >= len(c.trail) and c.opened_at + d.retention == retention_end(c, d)


def test_a_hit_older_than_max_age_is_too_old() -> None:
    d = desks()
    assert not too_old(hit_doc(emitted_at=T0), d, T0 + timedelta(minutes=1439))
    assert too_old(hit_doc(emitted_at=T0), d, T0 + timedelta(minutes=1441))


def test_a_case_past_its_retention_expires_with_an_event_and_leaves() -> None:
    d = desks()
    vc, _ = opened(hit_doc(priority=3), d, T0)
    assert retention_end(vc.cases[0], d) == T0 + timedelta(hours=72)
    assert sweep(vc, d, T0 + timedelta(hours=71)) == []
    changes = sweep(vc, d, T0 + timedelta(hours=72))
    assert [(c.desk, c.event["state"]) for c in changes if c.event] == [("brussels", "expired")]
    assert changes[0].event["at"] == "2026-12-02T20:00:00.000Z"
    assert vc.empty


def clone_hit_doc(at: datetime) -> dict:
    """A clone hit as the job writes it (feblam.serde), read by the gateway's schema."""
    from feblam.model import Clone, Hit, Match, Read
    from feblam.serde import hit_to_json
    from gateway.schema import read_hit

    later = Read("r2", "CAM-BXL-7", "canonical", at, "1-XYZ-987", "BE", 0.9, 50.8467, 4.3525, None, None, "s3://r2.jpg")
    earlier = Read(
        "r1",
        "CAM-LUX-9",
        "canonical",
        at - timedelta(minutes=20),
        "1XYZ987",
        "BE",
        0.92,
        50.2014,
        6.9935,
        None,
        None,
        "s3://r1.jpg",
    )
    match = Match(
        "FEBLAM-CLONES", "clone", "cloned_plate", 2, "inform", "exact", None, "also read at CAM-LUX-9", "1XYZ987", "BE"
    )
    hit = Hit(
        "h-clone", "v1", 2, at, later, "1XYZ987", "BE", (match,), ("all-hits",), clone=Clone(earlier, 200.0, 20.0, 600)
    )
    return read_hit(hit_to_json(hit), 1 << 20)


def test_a_clone_hit_shows_both_sightings_on_its_card_and_trail() -> None:
    d = desks()
    hit = clone_hit_doc(T0)
    assert hit["clone"]["earlier"]["camera_id"] == "CAM-LUX-9" and hit["clone"]["kmh"] == 600
    vc, changes = opened(hit, d, T0)
    assert [c.desk for c in changes] == ["brussels"]
    view = case_of(vc, "brussels").view()
    assert [(s["camera_id"], s["lat"]) for s in view["trail"]] == [("CAM-BXL-7", 50.8467), ("CAM-LUX-9", 50.2014)]
    assert view["seen"] == 2
    # the next clone hit of the vehicle joins the case; the earlier sighting it names is not added twice
    again = clone_hit_doc(T0 + timedelta(minutes=6))
    again["hit_id"] = "h-clone-2"
    again["clone"]["earlier"] = hit["read"] | {"plate_raw": "1XYZ987"}
    take_hit(vc, again, d.route(again), d, T0 + timedelta(minutes=6))
    view = case_of(vc, "brussels").view()
    assert [s["camera_id"] for s in view["trail"]] == ["CAM-BXL-7", "CAM-BXL-7", "CAM-LUX-9"]
    assert view["seen"] == 3
    plain = hit_doc("CAM-BXL-1")
    assert "clone" not in plain  # an ordinary hit is drawn as it came


def test_a_clone_block_that_does_not_fit_is_refused_with_its_path() -> None:
    import orjson
    import pytest

    from gateway.schema import MessageRefused, read_hit

    doc = clone_hit_doc(T0)
    doc["clone"]["kmh"] = -5
    with pytest.raises(MessageRefused, match=r"clone\.kmh"):
        read_hit(orjson.dumps(doc), 1 << 20)
    doc = clone_hit_doc(T0)
    doc["clone"]["earlier"]["ts"] = "yesterday"
    with pytest.raises(MessageRefused, match=r"clone\.earlier\.ts"):
        read_hit(orjson.dumps(doc), 1 << 20)
