"""The desks' numbered feeds and the gateway's store: each change once and in order, a repeat kept once,
a number that cannot be continued from said so, sessions that outlive the process that made them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.board import Board, BoardSink
from gateway.cases import BoardChange
from gateway.console.auth import Sessions, User
from gateway.journal import RECENT, Journal, message
from gateway.settings import Desks
from gateway.store import Store, token_hash
from tests.support.gateway import gateway_settings, hit_doc, opened

DESKS = ("brussels", "antwerp", "national")


def change(desk: str, n: int, *, event: bool = True) -> BoardChange:
    ev = {"event_id": f"e-{desk}-{n}", "state": "new", "hit_id": f"c{n}"} if event else None
    return BoardChange(f"c{n}", desk, {"case_id": f"c{n}", "state": "new"}, {"hit_id": f"c{n}"}, ev)


def journal(tmp: Path) -> Journal:
    return Journal(Store(tmp), DESKS, keep_hours=72).load()


def test_changes_are_numbered_per_desk_and_a_repeat_is_kept_once(tmp_path: Path) -> None:
    j = journal(tmp_path)
    kept = j.append(
        [change("brussels", 1), change("antwerp", 1), change("brussels", 2), change("brussels", 3, event=False)]
    )
    assert [(c.desk, c.seq) for c in kept] == [("brussels", 1), ("antwerp", 1), ("brussels", 2)]
    assert j.append([change("brussels", 2), change("brussels", 1)]) == []  # the flow repeated them after a crash
    assert j.head("brussels") == 2 and j.head("antwerp") == 1 and j.head("national") == 0
    got = j.since("brussels", 0)
    assert got is not None and [orjson.loads(message(c))["seq"] for c in got] == [1, 2]
    assert orjson.loads(message(got[0]))["event"]["event_id"] == "e-brussels-1"
    assert j.since("brussels", 2) == []
    assert j.since("brussels", 3) is None  # beyond the head: list again
    # a second process on the same store (a standby that took over) continues the numbering
    j2 = journal(tmp_path)
    assert j2.head("brussels") == 2
    assert [c.seq for c in j2.append([change("brussels", 2), change("brussels", 4)])] == [3]
    again = j2.since("brussels", 1)
    assert again is not None and [c.event_id for c in again] == ["e-brussels-2", "e-brussels-4"]


def test_older_changes_come_from_the_store_and_forgotten_ones_say_reset(tmp_path: Path) -> None:
    j = journal(tmp_path)
    j.append([change("brussels", n) for n in range(RECENT + 10)])
    got = j.since("brussels", 3, limit=5)
    assert got is not None and [c.seq for c in got] == [4, 5, 6, 7, 8]  # older than what memory holds
    assert j.store.prune(older_than=datetime.now(UTC).timestamp() + 10) == RECENT + 9  # the newest stays
    assert j.since("brussels", 3) is None
    assert j.since("brussels", RECENT + 10) == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(DESKS), st.integers(0, 30)), max_size=80), st.integers(1, 7))
def test_any_mix_of_repeats_gives_each_event_once_in_order(tmp_path_factory: Any, items: list[Any], batch: int) -> None:
    j = journal(tmp_path_factory.mktemp("j"))
    for i in range(0, len(items), batch):
        j.append([change(d, n) for d, n in items[i : i + batch]])
    for desk in DESKS:
        want = list(dict.fromkeys(n for d, n in items if d == desk))
        got: list[str] = []
        after = 0
        while True:  # read as a client does, a few at a time
            part = j.since(desk, after, limit=3)
            assert part is not None
            if not part:
                break
            assert [c.seq for c in part] == list(range(after + 1, after + 1 + len(part)))
            got += [c.event_id for c in part]
            after = part[-1].seq
        assert got == [f"e-{desk}-{n}" for n in want]


def test_the_board_sink_feeds_the_journal_after_the_board(tmp_path: Path) -> None:
    s = gateway_settings()
    desks = Desks(s.desks, s.gateway)
    board = Board(list(DESKS))
    j = journal(tmp_path)
    _, changes = opened(hit_doc("CAM-BXL-1"), desks, datetime.now(UTC))
    BoardSink(board, j).build("board", 0, 1).write_batch(changes)
    assert j.head("brussels") == 1 and len(board.cards("brussels")) == 1
    got = j.since("brussels", 0)
    assert got is not None
    doc = orjson.loads(message(got[0]))
    assert doc["case"] == board.cards("brussels")[0]["case"] and doc["event"]["state"] == "new"


def test_sessions_are_kept_hashed_and_outlive_their_process(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first = Sessions(600, 3600, store)
    s = first.create(User("brussels-1", "brussels", "fr"))
    raw = b"".join(f.read_bytes() for f in tmp_path.glob("gateway-store/store.sqlite3*"))  # the file and its WAL
    assert s.token.encode() not in raw and token_hash(s.token).encode() in raw
    taken_over = Sessions(600, 3600, Store(tmp_path))  # the standby's, after the takeover
    again = taken_over.get(s.token)
    assert again is not None and again.user == s.user and again.csrf == s.csrf
    assert taken_over.get("not-a-token") is None
    taken_over.drop(s.token)
    assert Sessions(600, 3600, Store(tmp_path)).get(s.token) is None  # signed out everywhere
    late = Sessions(0.001, 3600, Store(tmp_path))
    t = late.create(User("antwerp-1", "antwerp")).token
    import time

    time.sleep(0.01)
    assert late.get(t) is None  # idle past the limit, also when read from the store


def test_a_number_taken_twice_is_an_error_never_a_change_dropped(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    store = Store(tmp_path)
    assert [c.seq for c in store.append([("brussels", "e1", "c1", b"{}")], {})] == [1]
    with pytest.raises(sqlite3.IntegrityError):  # stale heads (a second writer): refused, not lost
        store.append([("brussels", "e2", "c2", b"{}")], {})
    assert store.append([("brussels", "e1", "c1", b"{}")], {"brussels": 1}) == []  # a repeat: kept once
    assert [c.event_id for c in store.since("brussels", 0, 10)] == ["e1"]
