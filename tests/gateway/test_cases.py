"""The gateway's case rules with a controlled clock: routing, acknowledge, close, escalation, leaving the board."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.actions import DeskAction
from gateway.cases import apply_action, escalate_due, expired, next_due, open_cases
from gateway.settings import Desks
from tests.support.gateway import gateway_settings, hit_doc

T0 = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)


def opened(hit: dict, d: Desks, now: datetime) -> tuple:
    """A new hit opened at the desks its routing names."""
    return open_cases(hit, d.route(hit), d, now)


def desks() -> Desks:
    s = gateway_settings()
    return Desks(s.desks, s.gateway)


def test_a_hit_opens_a_new_case_at_each_desk_its_rule_takes() -> None:
    hc, changes = opened(hit_doc("CAM-BXL-9"), desks(), T0)
    assert [c.desk for c in changes] == ["brussels"]
    assert {k: v for k, v in changes[0].event.items() if k != "event_id"} == {
        "hit_id": hc.hit_id,
        "desk": "brussels",
        "state": "new",
        "user": None,
        "at": "2026-11-29T20:00:00.000Z",
        "outcome": None,
    }
    assert hc.cases["brussels"].deadline == T0 + timedelta(seconds=60)
    _, none = opened(hit_doc("CAM-GNT-1"), desks(), T0)
    assert none == []  # no desk takes it: unrouted


def test_priority_sets_the_deadline_and_an_absent_priority_never_escalates() -> None:
    d = desks()
    assert opened(hit_doc(priority=2), d, T0)[0].cases["brussels"].deadline == T0 + timedelta(seconds=120)
    hc, _ = opened(hit_doc(priority=3), d, T0)
    assert hc.cases["brussels"].deadline is None
    assert next_due(hc, d) == T0 + d.retention  # no escalation ever: only the case's retention is due
    assert escalate_due(hc, d, T0 + timedelta(days=1)) == []


def test_unacknowledged_escalates_exactly_at_the_deadline_to_the_target_desk() -> None:
    d = desks()
    hc, _ = opened(hit_doc(), d, T0)
    assert escalate_due(hc, d, T0 + timedelta(seconds=59.999)) == []
    assert next_due(hc, d) == T0 + timedelta(seconds=60)
    changes = escalate_due(hc, d, T0 + timedelta(seconds=60))
    assert [(c.desk, c.event["state"]) for c in changes if c.event] == [("brussels", "escalated"), ("national", "new")]
    assert hc.cases["national"].escalated_from == "brussels"
    assert hc.cases["national"].deadline is None  # national escalates nowhere
    assert escalate_due(hc, d, T0 + timedelta(hours=1)) == []  # once


def test_acknowledged_in_time_never_escalates() -> None:
    d = desks()
    hc, _ = opened(hit_doc(), d, T0)
    changes, refused = apply_action(
        hc, DeskAction(hc.hit_id, "brussels", "brussels-1", "acknowledge", T0 + timedelta(seconds=30))
    )
    assert refused is None
    assert {k: v for k, v in changes[0].event.items() if k != "event_id"} == {
        "hit_id": hc.hit_id,
        "desk": "brussels",
        "state": "acknowledged",
        "user": "brussels-1",
        "at": "2026-11-29T20:00:30.000Z",
        "outcome": None,
    }
    assert next_due(hc, d) == T0 + d.retention  # acknowledged: no escalation due, only the retention
    assert escalate_due(hc, d, T0 + timedelta(hours=1)) == []


def test_an_escalated_case_can_still_be_acknowledged_and_closed_by_its_desk() -> None:
    d = desks()
    hc, _ = opened(hit_doc(), d, T0)
    escalate_due(hc, d, T0 + timedelta(seconds=61))
    _, refused = apply_action(hc, DeskAction(hc.hit_id, "brussels", "u", "acknowledge", T0 + timedelta(seconds=62)))
    assert refused is None and hc.cases["brussels"].state == "acknowledged"


def test_refused_actions_change_nothing() -> None:
    d = desks()
    hc, _ = opened(hit_doc(), d, T0)
    act = DeskAction(hc.hit_id, "antwerp", "antwerp-1", "acknowledge", T0)
    assert apply_action(hc, act) == ([], "hit is not at desk antwerp")
    bad = DeskAction(hc.hit_id, "brussels", "u", "close", T0, outcome="arrested-the-wrong-car")
    assert apply_action(hc, bad)[0] == [] and hc.cases["brussels"].state == "new"
    close = DeskAction(hc.hit_id, "brussels", "u", "close", T0, outcome="false_read")
    assert apply_action(hc, close)[1] is None
    assert apply_action(hc, close) == ([], "the case is already closed")
    assert (
        apply_action(hc, DeskAction(hc.hit_id, "brussels", "u", "acknowledge", T0))[1]
        == "cannot acknowledge a case that is closed"
    )


def test_a_hit_every_desk_closed_leaves_after_keep_closed() -> None:
    d = desks()
    hc, _ = opened(hit_doc(), d, T0)
    apply_action(hc, DeskAction(hc.hit_id, "brussels", "u", "close", T0 + timedelta(seconds=5), outcome="intercepted"))
    assert hc.closed_at == T0 + timedelta(seconds=5)
    assert next_due(hc, d) == hc.closed_at + d.keep_closed
    assert not expired(hc, d, hc.closed_at + d.keep_closed - timedelta(seconds=1))
    assert expired(hc, d, hc.closed_at + d.keep_closed)


def test_retro_rule_and_escalation_chain_never_loops() -> None:
    from feblam.config import settings_from_dict
    from tests.support.gateway import gateway_doc

    doc = gateway_doc()
    doc["desks"][2]["escalate_to"] = "brussels"  # brussels -> national -> brussels: a loop in the configuration
    doc["desks"][2].update({"max_priority": 5, "lists": ["NONE"]})
    doc["desks"][0]["retro"] = False
    s = settings_from_dict(doc)
    d = Desks(s.desks, s.gateway)
    assert opened(hit_doc(retro=True), d, T0)[1] == []  # brussels takes live hits only
    hc, _ = opened(hit_doc(), d, T0)
    escalate_due(hc, d, T0 + timedelta(seconds=60))
    later = escalate_due(hc, d, T0 + timedelta(seconds=120))
    assert [(c.desk, c.case["state"]) for c in later] == [("national", "escalated")]  # brussels already holds it
    assert escalate_due(hc, d, T0 + timedelta(days=1)) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["acknowledge", "close", "wait"]), st.integers(0, 200)), max_size=12))
def test_state_only_moves_forward_and_each_change_is_one_event(steps: list[tuple[str, int]]) -> None:
    d = desks()
    hc, _ = opened(hit_doc(), d, T0)
    rank = {"new": 0, "escalated": 1, "acknowledged": 2, "closed": 3}
    now = T0
    for kind, secs in steps:
        now += timedelta(seconds=secs)
        before = {k: c.state for k, c in hc.cases.items()}
        if kind == "wait":
            changes = escalate_due(hc, d, now)
        else:
            changes, _ = apply_action(hc, DeskAction(hc.hit_id, "brussels", "u", kind, now, outcome="other"))  # type: ignore[arg-type]
        for k, c in hc.cases.items():
            assert rank[c.state] >= rank[before.get(k, "new")]
        assert len(changes) == sum(1 for k, c in hc.cases.items() if before.get(k) != c.state)
        assert all(ch.event is not None and ch.event["state"] == hc.cases[ch.desk].state for ch in changes)


def test_a_hit_older_than_max_age_is_too_old() -> None:
    from gateway.cases import too_old

    d = desks()
    assert not too_old(hit_doc(emitted_at=T0), d, T0 + timedelta(minutes=1439))
    assert too_old(hit_doc(emitted_at=T0), d, T0 + timedelta(minutes=1441))


def test_a_case_past_its_retention_expires_with_an_event_and_leaves() -> None:
    from gateway.cases import expire, retention_end

    d = desks()
    hc, _ = opened(hit_doc(priority=3), d, T0)
    assert retention_end(hc, d) == T0 + timedelta(hours=72)
    assert expire(hc, d, T0 + timedelta(hours=71)) == []
    changes = expire(hc, d, T0 + timedelta(hours=72))
    assert [(c.desk, c.event["state"]) for c in changes if c.event] == [("brussels", "expired")]
    assert changes[0].event["at"] == "2026-12-02T20:00:00.000Z"
