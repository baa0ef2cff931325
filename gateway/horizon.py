"""The time the gateway decides escalations and expiries by: event time, not the moment it happens to run.

A case escalates when its deadline passes *with no acknowledgement appended
before it*. After an outage the actions written meanwhile are still on the
actions topic; deciding by the wall clock at restart would escalate cases that
a dispatcher acknowledged in time, before the flow has read those
acknowledgements. So while any partition of the actions topic is behind, the
gateway's "now" is the broker time of the last action it read there (the
oldest of the lagging partitions): a deadline passes only once every action
appended before it is applied. Once the topic is read up to date, "now" is
the wall clock again.

The hold is bounded: when the actions read stop advancing for :data:`MAX_HOLD`
of wall time while a partition stays behind (a partition that cannot be read,
a broker gone), the wall clock rules again and ``decisions_released`` is
logged: an escalation is delayed a minute at most, never for good.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from feblam.logs import get_logger

log = get_logger(__name__)

#: The longest the gateway holds its decisions back while it catches up on actions.
MAX_HOLD = timedelta(seconds=60)

#: "Now" while a lagging partition has given nothing yet: before every deadline.
NOTHING_READ = datetime.min.replace(tzinfo=UTC)

Clock = Callable[[], datetime]
#: The partitions of the actions topic not yet read up to date (lag unknown or above zero).
Behind = Callable[[], Sequence[tuple[str, int]]]


class Horizon:
    """``now()``: the wall clock, held back to the broker time of the last action read while actions are unread."""

    def __init__(self, clock: Clock, behind: Behind | None = None, hold: timedelta = MAX_HOLD) -> None:
        self.clock = clock
        self._behind = behind
        self._hold = hold
        self._read: dict[tuple[str, int], datetime] = {}  # actions partition -> broker time of the last action read
        self._progress_at: datetime | None = None  # wall time the hold began or the actions read last advanced
        self._released = False

    def read(self, topic: str, partition: int, appended: datetime) -> None:
        """The flow took an action appended at ``appended`` from ``topic[partition]``."""
        key = (topic, partition)
        last = self._read.get(key)
        if last is None or appended > last:
            self._read[key] = appended
            self._progress_at = None

    def now(self) -> datetime:
        wall = self.clock()
        lagging = self._behind() if self._behind is not None else ()
        if not lagging:
            self._progress_at, self._released = None, False
            return wall
        if self._progress_at is None:
            self._progress_at = wall
        elif wall - self._progress_at > self._hold:
            if not self._released:
                self._released = True
                log.warning(
                    "decisions_released",
                    partitions=[f"{t}[{p}]" for t, p in lagging][:10],
                    held_seconds=round((wall - self._progress_at).total_seconds()),
                    reason="actions unread and not advancing: escalations go by the wall clock",
                )
            return wall
        known = [self._read.get(p) for p in lagging]
        if any(t is None for t in known):
            return NOTHING_READ  # a lagging partition not read since the start: nothing is known to be applied
        return min(wall, *(t for t in known if t is not None))

    def held(self) -> bool:
        """Whether ``now()`` is behind the wall clock (decisions wait for actions still to be read)."""
        return self.now() < self.clock()
