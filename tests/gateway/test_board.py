"""The desks' boards: what each desk's pages see as the flow writes its changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from gateway.board import Board, Subscriber, card
from gateway.cases import apply_action, sweep
from gateway.metrics import CASES
from gateway.settings import Desks
from tests.support.gateway import desk_action, gateway_settings, hit_doc, opened

T0 = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)


def desks() -> Desks:
    s = gateway_settings()
    return Desks(s.desks, s.gateway)


def drain(loop: asyncio.AbstractEventLoop, sub: Subscriber) -> list[dict]:
    loop.run_until_complete(asyncio.sleep(0))  # run the pushes the flow's thread scheduled
    out = []
    while not sub.queue.empty():
        out.append(orjson.loads(sub.queue.get_nowait()))
    return out


def test_a_change_is_on_its_desks_board_only_and_pushed_to_its_pages() -> None:
    d = desks()
    board = Board(d.names)
    loop = asyncio.new_event_loop()
    bxl, ant = board.subscribe("brussels", loop), board.subscribe("antwerp", loop)
    hit = hit_doc("CAM-BXL-1")
    _, changes = opened(hit, d, T0)
    board.apply(changes)
    assert [c["hit_id"] for c in board.cards("brussels")] == [hit["hit_id"]]
    assert board.cards("antwerp") == [] and board.card("antwerp", hit["hit_id"]) is None
    assert drain(loop, bxl) == [orjson.loads(orjson.dumps(card(changes[0])))]
    assert drain(loop, ant) == []
    loop.close()


def test_a_case_that_changes_replaces_its_card_and_removal_takes_it_off() -> None:
    d = desks()
    board = Board(d.names)
    hit = hit_doc("CAM-BXL-1")
    vc, changes = opened(hit, d, T0)
    board.apply(changes)
    closed, refused = apply_action(vc, desk_action(hit, "brussels", "close", T0, "intercepted"))
    assert refused is None
    board.apply(closed)
    assert [c["case"]["state"] for c in board.cards("brussels")] == ["closed"]
    before = CASES.labels("brussels", "closed")._value.get()
    board.apply(sweep(vc, d, T0 + d.keep_closed + timedelta(seconds=1)))
    assert board.cards("brussels") == []
    assert CASES.labels("brussels", "closed")._value.get() == before - 1


def test_a_change_for_a_desk_no_longer_configured_is_ignored() -> None:
    d = desks()
    hit = hit_doc("CAM-BXL-1")
    _, changes = opened(hit, d, T0)
    board = Board(["antwerp"])  # brussels left the configuration since the hit came
    board.apply(changes)
    assert board.cards("antwerp") == [] and board.cards("brussels") == []


def test_a_page_that_falls_behind_is_dropped_not_the_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.board as module

    monkeypatch.setattr(module, "QUEUE_LIMIT", 2)  # a frozen tab's queue, small for the test
    d = desks()
    board = Board(d.names)
    loop = asyncio.new_event_loop()
    sub = board.subscribe("brussels", loop)
    for _ in range(3):
        hit = hit_doc("CAM-BXL-1")
        board.apply(opened(hit, d, T0)[1])
    loop.run_until_complete(asyncio.sleep(0))
    assert sub.dropped and sub.queue.qsize() == 2
    assert len(board.cards("brussels")) == 3  # the board itself keeps every card
    loop.close()


def test_pages_are_counted_and_unsubscribed() -> None:
    board = Board(["brussels", "antwerp"])
    loop = asyncio.new_event_loop()
    a, b = board.subscribe("brussels", loop), board.subscribe("antwerp", loop)
    assert board.pages() == 2
    board.unsubscribe(a)
    board.unsubscribe(b)
    assert board.pages() == 0
    loop.close()
