"""The gateway's dataflow under Bytewax's testing tools, with a controlled clock and a recovery store.

Each run is one execution of the flow over a TestingSource; the second run
resumes from the first one's snapshot, as ``feblam gateway`` does after a
restart, with the clock moved on.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from feblam.model import PayloadBatch
from gateway.actions import encode_action
from gateway.board import Board, BoardSink
from gateway.cases import ACTION_WAITS
from gateway.flow import build_gateway_flow
from gateway.horizon import Behind
from tests.support.gateway import ACTION_KEY, Clock, desk_action, gateway_settings, hit_doc

T0 = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)


def batch(kind: str, *docs: dict[str, Any] | bytes) -> PayloadBatch:
    payloads = [d if isinstance(d, bytes) else orjson.dumps(d) for d in docs]
    return PayloadBatch(kind, f"t.{kind}s", 0, payloads, list(range(len(payloads))))


def action(hit: dict[str, Any], desk: str, kind: str, at: datetime, outcome: str | None = None) -> bytes:
    """An action on the case ``hit`` opened, as the console signs it, by the desk's user."""
    return encode_action(desk_action(hit, desk, kind, at, outcome), ACTION_KEY)


def run(
    items: list[PayloadBatch],
    clock: Clock,
    board: Board,
    recovery: Path | None = None,
    behind: Behind | None = None,
    **gateway: Any,
) -> tuple[list[Any], list[Any]]:
    quality = gateway.pop("quality", [])
    settings = gateway_settings(**gateway)
    events: list[Any] = []
    dead: list[Any] = []
    flow = build_gateway_flow(
        settings,
        TestingSource(items),
        BoardSink(board),
        TestingSink(events),
        TestingSink(dead),
        quality=TestingSink(quality),
        clock=clock,
        behind=behind,
        action_key=ACTION_KEY,
    )
    run_main(flow, epoch_interval=timedelta(seconds=0), recovery_config=RecoveryConfig(recovery) if recovery else None)
    return events, dead


def states(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["desk"], e["state"]) for e in events]


def test_hits_actions_and_refusals_through_the_flow() -> None:
    clock = Clock(T0)
    board = Board(["brussels", "antwerp", "national"])
    a, b = hit_doc("CAM-BXL-1"), hit_doc("CAM-ANT-1", priority=2)
    items = [
        batch(
            "hit",
            a,
            b,
            a,
            b"{not json",
            hit_doc("CAM-XXX-1"),  # a repeated hit, a bad one, an unrouted one
            hit_doc("CAM-BXL-2", emitted_at=T0 - timedelta(days=2)),
        ),  # and one from two days ago: on no board
        batch(
            "action",
            action(a, "brussels", "acknowledge", T0),
            action(b, "brussels", "acknowledge", T0),
            action(a, "brussels", "close", T0, "intercepted"),
            {"kind": "explode"},
        ),
    ]
    events, dead = run(items, clock, board)
    # one hit's events keep their order (keyed by hit_id); different hits' may interleave
    of_a = [e for e in events if e["hit_id"] == a["hit_id"]]
    assert states(of_a) == [("brussels", "new"), ("brussels", "acknowledged"), ("brussels", "closed")]
    assert states([e for e in events if e["hit_id"] == b["hit_id"]]) == [("antwerp", "new")]
    assert len(events) == 4
    assert of_a[2]["outcome"] == "intercepted" and of_a[2]["user"] == "brussels-1"
    assert len(dead) == 2 and "hit:" in dead[0].error and "action: kind" in dead[1].error  # nothing dropped silently
    assert [c["hit_id"] for c in board.cards("antwerp")] == [b["hit_id"]]
    assert board.card("brussels", a["hit_id"])["case"]["state"] == "closed"  # type: ignore[index]
    assert board.card("brussels", b["hit_id"]) is None  # brussels's action on antwerp's hit was refused


def test_escalation_and_state_across_a_restart(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    a, b = hit_doc("CAM-BXL-1"), hit_doc("CAM-BXL-2")
    first = [
        batch("hit", a, b),
        batch("action", action(b, "brussels", "acknowledge", T0 + timedelta(seconds=10))),
    ]
    clock = Clock(T0)
    board = Board(["brussels", "antwerp", "national"])
    events, _ = run(first, clock, board, tmp_path)
    assert sorted(states(events)) == [("brussels", "acknowledged"), ("brussels", "new"), ("brussels", "new")]

    # Restart 59 s after the hits came: nothing is due yet; the new process's boards are rebuilt from state.
    clock.now = T0 + timedelta(seconds=59)
    board = Board(["brussels", "antwerp", "national"])
    events, _ = run(first, clock, board, tmp_path)
    assert events == []  # no event is repeated, and nothing escalated early
    assert {c["hit_id"]: c["case"]["state"] for c in board.cards("brussels")} == {
        a["hit_id"]: "new",
        b["hit_id"]: "acknowledged",
    }
    assert board.cards("national") == []

    # Restart again past the deadline: the unacknowledged hit escalates to national, once; the acknowledged one never.
    clock.now = T0 + timedelta(seconds=61)
    board = Board(["brussels", "antwerp", "national"])
    events, _ = run(first, clock, board, tmp_path)
    assert states(events) == [("brussels", "escalated"), ("national", "new")]
    assert all(e["hit_id"] == a["hit_id"] for e in events)
    assert [c["case"]["escalated_from"] for c in board.cards("national")] == ["brussels"]
    clock.now = T0 + timedelta(hours=1)
    events, _ = run(first, clock, Board(["brussels", "antwerp", "national"]), tmp_path)
    assert events == []


def appended(b: PayloadBatch, *at: datetime) -> PayloadBatch:
    """The batch as the Kafka source gives it: with the broker's append time of each message."""
    return replace(b, appended_ms=[int(t.timestamp() * 1000) for t in at])


def test_after_an_outage_deadlines_pass_in_event_time(tmp_path: Path) -> None:
    """An acknowledgement appended before the deadline, read only after a long outage, wins: no escalation.
    One appended after the deadline lands after the escalation it missed, dated by that deadline."""
    init_db_dir(tmp_path, 1)
    in_time, late = hit_doc("CAM-BXL-1"), hit_doc("CAM-BXL-2")
    hits = batch("hit", in_time, late)
    clock = Clock(T0)
    events, _ = run([hits], clock, Board(["brussels", "antwerp", "national"]), tmp_path)
    assert states(events) == [("brussels", "new"), ("brussels", "new")]

    # Ten minutes later the gateway is back; the actions written meanwhile are still unread on the topic.
    clock.now = T0 + timedelta(minutes=10)
    acks = appended(
        batch(
            "action",
            action(in_time, "brussels", "acknowledge", T0 + timedelta(seconds=30)),
            action(late, "brussels", "acknowledge", T0 + timedelta(seconds=90)),
        ),
        T0 + timedelta(seconds=30),
        T0 + timedelta(seconds=90),
    )
    board = Board(["brussels", "antwerp", "national"])
    events, _ = run([hits, acks], clock, board, tmp_path, behind=lambda: [("t.actions", 0)])
    assert states([e for e in events if e["hit_id"] == in_time["hit_id"]]) == [("brussels", "acknowledged")]
    of_late = [e for e in events if e["hit_id"] == late["hit_id"]]
    assert states(of_late) == [("brussels", "escalated"), ("national", "new"), ("brussels", "acknowledged")]
    assert [e["at"] for e in of_late] == ["2026-11-29T20:01:00.000Z"] * 2 + ["2026-11-29T20:01:30.000Z"]
    assert board.cards("national") and [c["hit_id"] for c in board.cards("national")] == [late["hit_id"]]


def test_an_action_read_before_its_hit_waits_for_it_and_across_a_restart(tmp_path: Path) -> None:
    """After a crash the actions and hits topics are read again in no order between them: an acknowledgement
    read before its hit is applied when the hit comes (also after a restart in between); one whose hit never
    comes is refused after ACTION_WAITS."""
    init_db_dir(tmp_path, 1)
    hit, never = hit_doc("CAM-BXL-1"), hit_doc("CAM-BXL-2")
    acks = batch(
        "action",
        action(hit, "brussels", "acknowledge", T0 + timedelta(seconds=5)),
        action(never, "brussels", "acknowledge", T0 + timedelta(seconds=5)),
    )
    clock = Clock(T0)
    events, dead = run([acks], clock, Board(["brussels", "antwerp", "national"]), tmp_path)
    assert events == [] and dead == []
    board = Board(["brussels", "antwerp", "national"])
    events, _ = run([acks, batch("hit", hit)], clock, board, tmp_path)
    assert states(events) == [("brussels", "new"), ("brussels", "acknowledged")]
    assert board.card("brussels", hit["hit_id"])["case"]["state"] == "acknowledged"  # type: ignore[index]
    clock.now = T0 + ACTION_WAITS + timedelta(seconds=1)
    events, _ = run([acks, batch("hit", hit)], clock, board, tmp_path)
    assert events == []
    events, _ = run([acks, batch("hit", hit), batch("hit", never)], clock, board, tmp_path)
    assert states(events) == [("brussels", "new")]  # its action was refused once it had waited long enough


def test_a_hit_that_cannot_be_routed_is_a_dead_letter() -> None:
    """A hit whose matches the routing cannot read is never dropped quietly: it goes to the dead letters."""
    board = Board(["brussels", "antwerp", "national"])
    broken = hit_doc("CAM-BXL-1")
    broken["matches"] = [{"list_id": "BE-STOLEN"}]  # no priority, action, ...
    events, dead = run([batch("hit", broken)], Clock(T0), board)
    assert events == [] and board.cards("brussels") == []
    assert len(dead) == 1 and dead[0].error.startswith("hit: ")


def test_a_forged_action_changes_no_case_and_is_on_the_audit_trail_as_refused() -> None:
    clock = Clock(T0)
    board = Board(["brussels", "antwerp", "national"])
    a = hit_doc("CAM-BXL-1")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    close = desk_action(a, "brussels", "close", epoch, "intercepted")
    unsigned = orjson.loads(encode_action(close, ACTION_KEY)) | {"sig": ""}
    forged = [
        orjson.dumps(unsigned),  # no signature
        encode_action(close, b"not-the-gateway-key" * 3),  # another key
        encode_action(desk_action(a, "brussels", "close", epoch, "intercepted", user="nobody"), ACTION_KEY),
        encode_action(desk_action(a, "brussels", "close", epoch, "intercepted", user="antwerp-1"), ACTION_KEY),
    ]
    events, dead = run([batch("hit", a), batch("action", *forged)], clock, board)
    assert board.card("brussels", a["hit_id"])["case"]["state"] == "new"  # type: ignore[index]
    assert [e["state"] for e in events if e["state"] != "new"] == ["security"] * 4
    security = [e for e in events if e["state"] == "security"]
    assert all(e["at"] == "2026-11-29T20:00:00.000Z" for e in security)  # the gateway's clock, never 1970
    assert [e["reason"] for e in security][2:] == [
        "action refused: user 'nobody' is not a user of desk 'brussels'",
        "action refused: user 'antwerp-1' is not a user of desk 'brussels'",
    ]
    assert len(dead) == 4 and all(d.error.startswith("action: forged: ") for d in dead)
    assert len({e["event_id"] for e in security}) == 4  # each refused message its own event, with an id


def test_a_hit_leaves_the_state_and_the_boards_after_its_retention(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    a = hit_doc("CAM-BXL-1", priority=3)  # never escalates, nobody acts: without retention it would stay for ever
    clock = Clock(T0)
    board = Board(["brussels", "antwerp", "national"])
    events, _ = run([batch("hit", a)], clock, board, tmp_path)
    assert states(events) == [("brussels", "new")]
    # (Bytewax fires timers by the wall clock: the controlled clock stays in the past, so the retention is short.)
    clock.now = T0 + timedelta(hours=2)
    board = Board(["brussels", "antwerp", "national"])
    later, _ = run([batch("hit", a)], clock, board, tmp_path, case_retention_hours=1)  # its retention is over
    assert states(later) == [("brussels", "expired")]
    assert board.cards("brussels") == []
    board = Board(["brussels", "antwerp", "national"])
    again, _ = run([batch("hit", a)], clock, board, tmp_path, case_retention_hours=1)
    assert again == [] and board.cards("brussels") == []  # nothing of it is left in the recovery store


def test_a_replayed_hit_and_action_give_the_same_events_with_the_same_ids() -> None:
    """Cases dated by the broker's times (not by when the gateway happens to read them): a crash that makes
    the gateway read a hit and an action again gives the very same events, ids included (DESIGN 12)."""
    a = hit_doc("CAM-BXL-1")
    t0_ms = int(T0.timestamp() * 1000)
    appended = [t0_ms, t0_ms + 12_000]  # the broker's append times: 20:00:00 and 20:00:12

    def with_time(kind: str, doc: Any, ms: int) -> PayloadBatch:
        b = batch(kind, doc)
        return PayloadBatch(b.vendor, b.origin, 0, b.payloads, b.positions, appended_ms=[ms])

    items = [
        with_time("hit", a, appended[0]),
        with_time("action", action(a, "brussels", "acknowledge", T0), appended[1]),
    ]
    first, _ = run(items, Clock(T0 + timedelta(seconds=13)), Board(["brussels", "antwerp", "national"]))
    again, _ = run(items, Clock(T0 + timedelta(seconds=40)), Board(["brussels", "antwerp", "national"]))
    assert first == again and len({e["event_id"] for e in first}) == 2
    assert [(e["state"], e["at"]) for e in first] == [
        ("new", "2026-11-29T20:00:00.000Z"),
        ("acknowledged", "2026-11-29T20:00:12.000Z"),  # the broker's time, not the console's claim (T0)
    ]


def test_sightings_of_one_vehicle_join_its_case_through_the_flow_and_across_a_restart(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    plate = "1XYZ987"
    first = hit_doc("CAM-BXL-1", plate=plate)
    again = [hit_doc(f"CAM-BXL-{i}", plate=plate) for i in (2, 3)]
    t = [T0 + timedelta(minutes=m) for m in (0, 4, 9)]
    hits = appended(batch("hit", first, *again), *t)
    clock = Clock(T0 + timedelta(minutes=10))
    board = Board(["brussels", "antwerp", "national"])
    events, _ = run([hits], clock, board, tmp_path, escalate_after_seconds={"1": 3600})
    assert states(events) == [("brussels", "new"), ("brussels", "sighting"), ("brussels", "sighting")]
    assert {e["hit_id"] for e in events} == {first["hit_id"]}
    assert [e.get("sighting_of") for e in events] == [None, again[0]["hit_id"], again[1]["hit_id"]]
    (card,) = board.cards("brussels")
    assert card["hit_id"] == first["hit_id"] and card["case"]["seen"] == 3
    assert [s["camera_id"] for s in card["case"]["trail"]] == ["CAM-BXL-3", "CAM-BXL-2", "CAM-BXL-1"]
    # after a restart the board has the one card with its trail, and a repeated hit changes nothing
    board = Board(["brussels", "antwerp", "national"])
    close = appended(batch("action", action(first, "brussels", "close", t[2], "intercepted")), t[2])
    events, _ = run([hits, close], clock, board, tmp_path, escalate_after_seconds={"1": 3600})
    assert states(events) == [("brussels", "closed")]
    (card,) = board.cards("brussels")
    assert card["case"]["state"] == "closed" and card["case"]["seen"] == 3


def test_an_entry_closed_as_false_read_n_times_is_flagged_once_for_its_owner(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    hits = [hit_doc("CAM-BXL-1") for _ in range(4)]  # four vehicles, one entry (BE-STOLEN/S-1)
    t = [T0 + timedelta(minutes=m) for m in range(4)]
    closes = [action(h, "brussels", "close", at, "false_read") for h, at in zip(hits, t, strict=True)]
    quality: list[Any] = []
    clock = Clock(T0 + timedelta(minutes=5))
    items = [appended(batch("hit", *hits), *t), appended(batch("action", *closes[:2]), *t[:2])]
    run(items, clock, Board(["brussels", "antwerp", "national"]), tmp_path, quality=quality, flag_false_reads=3)
    assert quality == []  # two false reads: not yet
    items.append(appended(batch("action", *closes[2:]), *t[2:]))
    run(items, clock, Board(["brussels", "antwerp", "national"]), tmp_path, quality=quality, flag_false_reads=3)
    (flag,) = quality  # across the restart the first two still count; the fourth does not flag it again
    assert (flag["list_id"], flag["entry_id"], flag["owner"], flag["false_reads"]) == (
        "BE-STOLEN",
        "S-1",
        "police-be",
        3,
    )
    # (the third and fourth closes are of two vehicles, read in one batch: either may come first)
    ids = [h["hit_id"] for h in hits]
    assert flag["cases"][:2] == ids[:2] and flag["cases"][2] in ids[2:]
    assert flag["at"] in ("2026-11-29T20:02:00.000Z", "2026-11-29T20:03:00.000Z")
    assert flag["last_reason"] == "checked by the test"
    assert "1ABC" not in orjson.dumps(flag).decode()  # no plate
