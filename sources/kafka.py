"""Kafka input: one lean Bytewax partition per topic partition.

Each poll emits **one item**: a :class:`~feblam.model.PayloadBatch` of the
messages' values, not one item per message, so Bytewax's per-item cost is paid
once per poll. Message objects stay here: offsets and append times are lazy
sequences over them, asked only for a dead letter or a hit.

The resume state of a partition is the next offset to read; with a recovery
directory a restart resumes where the last snapshot was taken (at-least-once:
reads after the snapshot are read again, and hit ids are deterministic).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from feblam.config import KafkaSettings, SourceSettings
from feblam.errors import FeblamError
from feblam.kafka import topic_partitions
from feblam.logs import get_logger
from feblam.model import PayloadBatch

log = get_logger(__name__)


_VALUE = Message.value
_ERROR = Message.error  # a KafkaError is truthy, None is not


class _Offsets(Sequence[int]):
    """The offsets of a poll's messages, looked up one at a time (only dead letters need them)."""

    __slots__ = ("_msgs",)

    def __init__(self, msgs: list[Any]) -> None:
        self._msgs = msgs

    def __len__(self) -> int:
        return len(self._msgs)

    def __getitem__(self, i: Any) -> Any:
        return int(self._msgs[i].offset())


class _AppendTimes(_Offsets):
    """The broker append (or create) time of each message, in ms since the epoch."""

    __slots__ = ()

    def __getitem__(self, i: Any) -> Any:
        return int(self._msgs[i].timestamp()[1])


class KafkaSourceError(FeblamError, RuntimeError):
    """A topic is missing or the broker reported a fatal error."""


def _consumer_config(settings: KafkaSettings) -> dict[str, Any]:
    return {
        **settings.client_config(),
        # Positions live in Bytewax state (recovery resumes from there); each closed epoch's
        # positions are also committed to this group, so that lag tools see the job.
        "group.id": settings.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": max(1, settings.fetch_wait_ms),
        # An empty or new partition must not cost half a second (the default backoff).
        "fetch.error.backoff.ms": max(1, settings.poll_timeout_ms),
        "queued.min.messages": max(10_000, settings.batch_size * 2),
    }


class _PartitionReader(StatefulSourcePartition[PayloadBatch, int]):
    def __init__(
        self,
        settings: KafkaSettings,
        vendor: str,
        topic: str,
        partition: int,
        resume: int | None,
        stop: threading.Event | None,
        monitor: SourceMonitor | None = None,
    ) -> None:
        self._vendor = vendor
        self._topic = topic
        self._partition = partition
        self._batch = settings.batch_size
        self._idle = timedelta(milliseconds=settings.poll_timeout_ms)
        self._awake: datetime | None = None
        self._stop = stop
        start = resume if resume is not None else (OFFSET_BEGINNING if settings.start == "earliest" else OFFSET_END)
        self._next = resume
        self._consumer = Consumer(_consumer_config(settings))
        self._consumer.assign([TopicPartition(topic, partition, start)])
        self._monitor = monitor
        self._committed: int | None = None
        self._start_earliest = settings.start == "earliest"
        if monitor is not None:
            monitor.assigned(topic, partition, self.lag)
        log.info("partition_assigned", topic=topic, partition=partition, resume_offset=resume)

    def next_batch(self) -> list[PayloadBatch]:
        if self._stop is not None and self._stop.is_set():
            raise StopIteration
        if self._monitor is not None:
            self._monitor.heartbeat = time.monotonic()
        # Never block here: librdkafka prefetches in the background, so a poll
        # returns what has arrived; an empty poll asks Bytewax to come back after
        # poll_timeout (next_awake), so many partitions on one worker add no delay.
        msgs = self._consumer.consume(self._batch, 0)
        if not msgs:
            self._awake = datetime.now(UTC) + self._idle
            return []
        self._awake = None
        good = msgs
        if any(map(_ERROR, msgs)):  # C-speed passes over the messages: no Python frame a message
            good = []
            for m in msgs:
                err = m.error()
                if err is None:
                    good.append(m)
                elif err.code() == KafkaError._PARTITION_EOF:
                    continue
                elif err.fatal():
                    msg = f"{self._topic}[{self._partition}]: fatal Kafka error: {err}"
                    raise KafkaSourceError(msg)
                else:
                    log.warning("kafka_consume_error", topic=self._topic, partition=self._partition, error=str(err))
            if not good:
                return []
        self._next = int(good[-1].offset() or 0) + 1
        raw: list[bytes | None] = list(map(_VALUE, good))
        # a message without a value (a tombstone): an empty payload in its place, dead-lettered as such
        values: list[bytes] = [v or b"" for v in raw] if None in raw else raw  # type: ignore[assignment]
        return [
            PayloadBatch(
                self._vendor,
                self._topic,
                self._partition,
                values,
                _Offsets(good),
                appended_ms=_AppendTimes(good),
            )
        ]

    def lag(self) -> int | None:
        """Messages on the partition not yet read: the high watermark of the last fetch minus the next offset.

        From the consumer's cached fetch state (no broker call; safe from another thread);
        None until the first fetch.
        """
        low, high = self._consumer.get_watermark_offsets(TopicPartition(self._topic, self._partition), cached=True)
        if high < 0:
            return None
        position = self._next if self._next is not None else (low if self._start_earliest else high)
        return max(0, high - position)

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int | None:  # type: ignore[override]
        if self._next is not None and self._next != self._committed:
            try:  # for lag tools only: recovery resumes from the Bytewax state this returns
                self._consumer.commit(
                    offsets=[TopicPartition(self._topic, self._partition, self._next)], asynchronous=True
                )
                self._committed = self._next
            except KafkaException as exc:
                log.warning("offset_commit_failed", topic=self._topic, partition=self._partition, error=str(exc))
        return self._next

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.released(self._topic, self._partition)
        self._consumer.close()


class SourceMonitor:
    """What this process's Kafka input is doing, for ``/ready``, ``/live``, lag and the stats event.

    Every ``every`` seconds a thread asks the broker for its metadata (a
    successful answer is the broker contact ``/ready`` looks at) and sets
    ``feblam_consumer_lag`` of each partition this process reads (the high
    watermark of its last fetch − its next offset).
    """

    def __init__(self, settings: KafkaSettings, every: float = 2.0) -> None:
        self.settings = settings
        self.every = every
        self.heartbeat = 0.0  # monotonic time of the last poll of any partition
        self.broker_ok_at = 0.0  # monotonic time the broker last answered
        self.broker_error: str | None = None
        self.lag: dict[tuple[str, int], int] = {}
        self._parts: dict[tuple[str, int], Callable[[], int | None]] = {}  # partition -> its lag
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def assigned(self, topic: str, partition: int, lag: Callable[[], int | None]) -> None:
        with self._lock:
            self._parts[(topic, partition)] = lag

    def released(self, topic: str, partition: int) -> None:
        with self._lock:
            self._parts.pop((topic, partition), None)

    def broker_problem(self, limit: float) -> str | None:
        """Why the broker counts as out of reach (no answer for over ``limit`` seconds), or None."""
        since = time.monotonic() - self.broker_ok_at if self.broker_ok_at else None
        if since is not None and since <= limit:
            return None
        reason = (
            f"broker {self.settings.brokers} has not answered for "
            f"{'ever' if since is None else f'{since:.0f} s'} (limit {limit:g} s)"
        )
        return f"{reason}: {self.broker_error}" if self.broker_error else reason

    @property
    def partitions(self) -> int:
        return len(self._parts)

    def behind(self, topic: str) -> list[tuple[str, int]]:
        """The partitions of ``topic`` read here that hold messages not yet read (or whose lag is not known
        yet); ``(topic, -1)`` while none of its partitions is assigned. From the flow's own thread."""
        with self._lock:
            parts = [(key, lag_of) for key, lag_of in self._parts.items() if key[0] == topic]
        if not parts:
            return [(topic, -1)]
        return [key for key, lag_of in parts if (lag := lag_of()) is None or lag > 0]

    def start(self) -> SourceMonitor:
        self._thread = threading.Thread(target=self._run, name="source-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        consumer = Consumer(
            {
                **self.settings.client_config(),
                "group.id": f"{self.settings.group_id}-monitor",
                "enable.auto.commit": False,
            }
        )
        try:
            while True:
                self.check(consumer)
                if self._stop.wait(self.every):
                    return
        finally:
            consumer.close()

    def check(self, consumer: Consumer) -> None:
        """One round: the broker's answer, and the lag of every partition read here."""
        from feblam.metrics import CONSUMER_LAG

        try:
            consumer.list_topics(timeout=min(5.0, max(1.0, self.every)))
        except KafkaException as exc:
            self.broker_error = str(exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else exc)
        else:
            self.broker_ok_at = time.monotonic()
            self.broker_error = None
        with self._lock:
            parts = dict(self._parts)
        for (topic, partition), lag_of in parts.items():
            lag = lag_of()
            if lag is not None:
                self.lag[(topic, partition)] = lag
                CONSUMER_LAG.labels(topic, str(partition)).set(lag)


class KafkaReadSource(FixedPartitionedSource[PayloadBatch, int]):
    """Every partition of every configured vendor topic; Bytewax spreads them over the workers."""

    def __init__(
        self,
        settings: KafkaSettings,
        sources: Sequence[SourceSettings] | Mapping[str, str],
        stop: threading.Event | None = None,
        *,
        monitor: SourceMonitor | None = None,
    ) -> None:
        """``sources``: the vendor topics, or topic -> the label its batches carry as ``vendor``
        (the gateway's hits and actions); ``stop``: set it to end every partition at its next
        poll; ``monitor``: where the partitions report (lag, readiness)."""
        self.settings = settings
        self.vendor_of = dict(sources) if isinstance(sources, Mapping) else {s.topic: s.vendor for s in sources}
        self.stop = stop
        self.monitor = monitor

    def list_parts(self) -> list[str]:
        consumer = Consumer(_consumer_config(self.settings))
        try:
            parts: list[str] = []
            for topic in self.vendor_of:
                parts.extend(f"{topic}#{p}" for p in topic_partitions(consumer, topic, self.settings.brokers))
            return parts
        finally:
            consumer.close()

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _PartitionReader:
        topic, _, partition = for_part.rpartition("#")
        return _PartitionReader(
            self.settings,
            self.vendor_of[topic],
            topic,
            int(partition),
            resume_state,
            self.stop,
            self.monitor,
        )
