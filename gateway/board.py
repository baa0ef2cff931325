"""The desks' boards: what the console shows, kept in memory and pushed to every open page.

The gateway's flow writes its :class:`~gateway.cases.BoardChange` items here (a
Bytewax sink); each open page is a subscriber of its desk and gets every change
of that desk's board as soon as it is written. The boards are rebuilt from the
flow's state after a restart (the flow announces every case it resumes).

A subscriber that falls behind (its queue full: a frozen browser tab) is
dropped; its page reconnects and starts again from the board as it stands.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from feblam.serde import parse_ts
from gateway import metrics
from gateway.cases import BoardChange
from gateway.journal import Journal

#: Changes a page may have queued before it is dropped (and reconnects).
QUEUE_LIMIT = 10_000


@dataclass(eq=False)
class Subscriber:
    """One open page of one desk: an asyncio queue fed from the flow's thread."""

    desk: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    dropped: bool = False

    def push(self, message: bytes) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True  # the page's stream ends at its next read; the page reconnects


def encoded(change: BoardChange) -> bytes | None:
    """The JSON of a change's case and hit, made once and shared by the pages and the desks' feeds (None: the
    case leaves the board)."""
    return None if change.case is None else orjson.dumps({"case": change.case, "hit": change.hit})


def card(change: BoardChange) -> dict[str, Any]:
    """One case at one desk as the page receives it (``alert``: sound and flash for this change)."""
    return {"hit_id": change.hit_id, "case": change.case, "hit": change.hit, "alert": change.alert}


class Board:
    """Every desk's open and recently closed hits, and the pages that watch them."""

    def __init__(self, desks: Sequence[str]) -> None:
        self.desks = tuple(desks)
        self._cards: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in desks}
        self._subscribers: dict[str, set[Subscriber]] = {d: set() for d in desks}
        self._lock = threading.Lock()

    def apply(self, changes: Sequence[BoardChange], cores: Sequence[bytes | None] | None = None) -> None:
        """Write changes (from the flow's thread) and push each to its desk's pages (``cores``: each change's
        :func:`encoded`, when the caller has them)."""
        now = time.time()
        with self._lock:
            for i, ch in enumerate(changes):
                cards = self._cards.get(ch.desk)
                if cards is None:  # a desk removed from the configuration since the hit came
                    continue
                before = cards.get(ch.hit_id)
                if ch.case is None:
                    cards.pop(ch.hit_id, None)
                else:
                    cards[ch.hit_id] = {**card(ch), "alert": False}  # the board as it stands alerts nobody
                self._count(ch.desk, before, ch.case)
                if (
                    ch.event is not None
                    and ch.event["state"] in ("new", "sighting")
                    and ch.case
                    and not ch.case["escalated_from"]
                ):
                    metrics.HIT_TO_BOARD.observe(max(0.0, now - parse_ts(ch.hit["emitted_at"]).timestamp()))
                subs = self._subscribers[ch.desk]
                if subs:
                    core = cores[i] if cores is not None else encoded(ch)
                    if core is None:
                        message = orjson.dumps({"hit_id": ch.hit_id, "case": None})
                    else:
                        head = (
                            b'{"hit_id":'
                            + orjson.dumps(ch.hit_id)
                            + (b',"alert":true,' if ch.alert else b',"alert":false,')
                        )
                        message = head + core[1:]
                    for sub in list(subs):
                        try:
                            sub.loop.call_soon_threadsafe(sub.push, message)
                        except RuntimeError:  # the page's event loop is gone: never let it stop the flow
                            sub.dropped = True
                            subs.discard(sub)

    @staticmethod
    def _count(desk: str, before: dict[str, Any] | None, case: dict[str, Any] | None) -> None:
        if before is not None:
            metrics.CASES.labels(desk, before["case"]["state"]).dec()
        if case is not None:
            metrics.CASES.labels(desk, case["state"]).inc()

    def cards(self, desk: str) -> list[dict[str, Any]]:
        """The desk's board as it stands."""
        with self._lock:
            return list(self._cards.get(desk, {}).values())

    def card(self, desk: str, hit_id: str) -> dict[str, Any] | None:
        """One hit at one desk, or None when it is not on that desk's board."""
        with self._lock:
            return self._cards.get(desk, {}).get(hit_id)

    def subscribe(self, desk: str, loop: asyncio.AbstractEventLoop) -> Subscriber:
        """A new page of ``desk``: subscribe first, then read :meth:`cards` (so no change falls between)."""
        sub = Subscriber(desk, loop)
        with self._lock:
            self._subscribers[desk].add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers[sub.desk].discard(sub)

    def pages(self) -> int:
        """Open pages over every desk."""
        with self._lock:
            return sum(len(s) for s in self._subscribers.values())


class _BoardPartition(StatelessSinkPartition[BoardChange]):
    def __init__(self, board: Board, journal: Journal | None) -> None:
        self._board = board
        self._journal = journal

    def write_batch(self, items: list[BoardChange]) -> None:
        # the boards first, then the desks' feeds: a client that lists the cases and then follows the feed
        # from the number the listing gave can never miss a change (it may see one both ways)
        cores = [encoded(ch) for ch in items]  # each case's JSON once, for the pages and the feeds
        self._board.apply(items, cores)
        if self._journal is not None:
            self._journal.append(items, cores)


class BoardSink(DynamicSink[BoardChange]):
    """The flow's output to the boards of this process and, with ``journal``, to the desks' numbered feeds
    (:mod:`gateway.journal`: the API's streams and the webhooks)."""

    def __init__(self, board: Board, journal: Journal | None = None) -> None:
        self.board = board
        self.journal = journal

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _BoardPartition:
        return _BoardPartition(self.board, self.journal)
