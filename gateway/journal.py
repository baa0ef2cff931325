"""Each desk's feed of case changes, numbered: what the API streams and the webhooks deliver.

The flow writes every :class:`~gateway.cases.BoardChange` that carries an audit
event here (beside the boards, in the same sink); each gets the next number of
its desk's feed and is kept in the gateway's store (:mod:`gateway.store`) for
``case_retention_hours``. A client that has change ``n`` asks for what follows
``n`` (``Last-Event-ID``) and gets each later change once, in order: the feed
is one order per desk, so also one order per case. A change the flow repeats
after a crash has the same ``event_id`` and is not numbered again.

The newest changes of each desk are also held in memory, so that fifty streams
of one desk cost no query each.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from feblam.logs import get_logger
from gateway.cases import BoardChange
from gateway.store import Change, Store

log = get_logger(__name__)
#: Changes of each desk held in memory (older ones are read from the store).
RECENT = 5_000
#: How often old changes are forgotten.
PRUNE_SECONDS = 600.0


def message(change: Change) -> bytes:
    """A change as a client receives it: its JSON with its number first."""
    return b'{"seq":%d,' % change.seq + change.body[1:]


@dataclass(eq=False)
class Follower:
    """One stream of one desk on an asyncio loop, woken when its desk's feed grows."""

    desk: str
    loop: asyncio.AbstractEventLoop
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class Journal:
    """Every desk's numbered feed: appended by the flow, read by API streams (asyncio) and webhooks (threads)."""

    def __init__(self, store: Store, desks: Sequence[str], keep_hours: float) -> None:
        self.store = store
        self.desks = tuple(desks)
        self.keep_seconds = keep_hours * 3600
        self._heads: dict[str, int] = {}
        self._recent: dict[str, deque[Change]] = {d: deque(maxlen=RECENT) for d in desks}
        self._followers: dict[str, set[Follower]] = {d: set() for d in desks}
        self._grown = threading.Condition()
        self._pruned = 0.0

    def load(self) -> Journal:
        """Read the feeds' heads from the store (at start, and when a standby takes over)."""
        with self._grown:
            self._heads = self.store.heads()
            for ring in self._recent.values():
                ring.clear()
        return self

    def head(self, desk: str) -> int:
        """The number of the desk's newest change (0: none yet)."""
        with self._grown:
            return self._heads.get(desk, 0)

    def append(self, changes: Sequence[BoardChange], cores: Sequence[bytes | None] | None = None) -> list[Change]:
        """Number and keep the changes that carry an event (from the flow's thread), then wake the readers
        (``cores``: each change's case and hit as JSON, :func:`gateway.board.encoded`, when made already)."""
        items = []
        for i, ch in enumerate(changes):
            if ch.event is None or ch.desk not in self._recent:
                continue
            core = cores[i] if cores is not None else None
            if core is None:
                core = orjson.dumps({"case": ch.case, "hit": ch.hit})
            head = b'{"desk":' + orjson.dumps(ch.desk) + b',"case_id":' + orjson.dumps(ch.hit_id)
            body = head + b',"event":' + orjson.dumps(ch.event) + b"," + core[1:]
            items.append((ch.desk, ch.event["event_id"], ch.hit_id, body))
        if not items:
            return []
        with self._grown:
            kept = self.store.append(items, self._heads)
            for c in kept:
                self._recent[c.desk].append(c)
            self._grown.notify_all()
            woken = {c.desk for c in kept}
            followers = [f for d in woken for f in self._followers[d]]
        for f in followers:
            try:
                f.loop.call_soon_threadsafe(f.woken.set)
            except RuntimeError:  # its loop is gone: the stream ended
                self.unfollow(f)
        self._prune()
        return kept

    def _prune(self) -> None:
        now = time.time()
        if now - self._pruned < PRUNE_SECONDS:
            return
        self._pruned = now
        dropped = self.store.prune(now - self.keep_seconds)
        if dropped:
            log.info("journal_pruned", changes=dropped, keep_hours=self.keep_seconds / 3600)

    def since(self, desk: str, after: int, limit: int = 500) -> list[Change] | None:
        """Up to ``limit`` changes of ``desk`` after number ``after``, in order; None when ``after`` is not a
        number this feed can continue from (older than what is kept, or beyond its head): list the cases again."""
        with self._grown:
            head = self._heads.get(desk, 0)
            if after > head or after < 0:
                return None
            if after == head:
                return []
            ring = self._recent.get(desk)
            if ring and after >= ring[0].seq - 1:
                start = after - ring[0].seq + 1
                return [ring[i] for i in range(start, min(len(ring), start + limit))]
        first = self.store.first(desk)
        if first is None or after < first - 1:
            return None
        return self.store.since(desk, after, limit)

    def wait(self, desk: str, after: int, timeout: float) -> bool:
        """Block until ``desk`` has a change after ``after`` (a webhook's thread); False when ``timeout`` passed."""
        with self._grown:
            return self._grown.wait_for(lambda: self._heads.get(desk, 0) > after, timeout)

    def wake_all(self) -> None:
        """Wake every waiting thread (at stop)."""
        with self._grown:
            self._grown.notify_all()

    def follow(self, desk: str, loop: asyncio.AbstractEventLoop) -> Follower:
        f = Follower(desk, loop)
        with self._grown:
            self._followers[desk].add(f)
        return f

    def unfollow(self, f: Follower) -> None:
        with self._grown:
            self._followers[f.desk].discard(f)

    def followers(self) -> int:
        with self._grown:
            return sum(len(s) for s in self._followers.values())
