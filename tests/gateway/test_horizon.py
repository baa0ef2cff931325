"""The gateway's event time (gateway.horizon): held back while actions are unread, never for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.horizon import MAX_HOLD, NOTHING_READ, Horizon
from tests.support.gateway import Clock

T0 = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)


def test_caught_up_it_is_the_wall_clock_behind_it_is_the_last_action_read() -> None:
    clock = Clock(T0)
    lagging: list[tuple[str, int]] = []
    h = Horizon(clock, lambda: lagging)
    assert h.now() == T0 and not h.held()
    lagging += [("actions", 0), ("actions", 1)]
    assert h.now() == NOTHING_READ  # nothing read yet from a partition that is behind: no deadline passes
    h.read("actions", 0, T0 - timedelta(minutes=5))
    assert h.now() == NOTHING_READ  # partition 1 still unknown
    h.read("actions", 1, T0 - timedelta(minutes=2))
    assert h.now() == T0 - timedelta(minutes=5) and h.held()  # the oldest of the lagging partitions
    h.read("actions", 0, T0 - timedelta(minutes=9))  # an older time never moves it back
    assert h.now() == T0 - timedelta(minutes=5)
    lagging.remove(("actions", 0))
    assert h.now() == T0 - timedelta(minutes=2)
    lagging.clear()
    assert h.now() == T0


def test_a_hold_that_makes_no_progress_is_released_after_max_hold() -> None:
    clock = Clock(T0)
    h = Horizon(clock, lambda: [("actions", 0)])
    h.read("actions", 0, T0 - timedelta(minutes=30))
    assert h.now() == T0 - timedelta(minutes=30)
    clock.now = T0 + MAX_HOLD
    assert h.now() == T0 - timedelta(minutes=30)  # still within the hold
    clock.now = T0 + MAX_HOLD + timedelta(seconds=1)
    assert h.now() == clock.now  # stuck for longer than the hold: the wall clock rules
    h.read("actions", 0, T0 - timedelta(minutes=29))  # progress again: held again
    assert h.now() == T0 - timedelta(minutes=29)


def test_without_a_source_that_knows_its_lag_it_is_the_wall_clock() -> None:
    clock = Clock(T0)
    assert Horizon(clock).now() == T0
