"""Kafka client helpers every package uses: topic metadata and producing without dropping."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from feblam.config import KafkaSettings
from feblam.errors import FeblamError


class TopicError(FeblamError, RuntimeError):
    """A topic is missing or has no partitions."""


def topic_partitions(client: Any, topic: str, brokers: str, timeout: float = 10.0) -> list[int]:
    """The partitions of ``topic`` (from a Consumer's or AdminClient's metadata), or a :class:`TopicError`."""
    md = client.list_topics(topic, timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        reason = t.error if t is not None else "no metadata"
        msg = f"topic {topic!r} is not available on {brokers}: {reason}"
        raise TopicError(msg)
    return sorted(t.partitions)


def read_to_end(
    settings: KafkaSettings, topics: Sequence[str], *, since_ms: int | None, timeout: float, group: str, what: str
) -> Iterator[bytes]:
    """Every value on ``topics``, from broker time ``since_ms`` (None: each partition's beginning) up to each
    partition's end as it stands at the call; a :class:`FeblamError` naming ``what`` when the broker does not
    answer, or the end is not reached within ``timeout`` seconds."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({**settings.client_config(), "group.id": group, "enable.auto.commit": False})
    wait = settings.start_timeout_seconds
    try:
        parts = [TopicPartition(t, p) for t in topics for p in topic_partitions(consumer, t, settings.brokers, wait)]
        if since_ms is not None:
            for tp in parts:
                tp.offset = since_ms
            parts = [tp for tp in consumer.offsets_for_times(parts, timeout=wait) if tp.offset >= 0]
        ends: dict[tuple[str, int], int] = {}
        for tp in parts:
            low, high = consumer.get_watermark_offsets(tp, timeout=wait)
            if since_ms is None:
                tp.offset = low
            if high > tp.offset:
                ends[(tp.topic, tp.partition)] = high
        consumer.assign([tp for tp in parts if (tp.topic, tp.partition) in ends])
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.2):
                if m.error() is not None:
                    continue
                yield m.value() or b""
                where = (str(m.topic()), int(m.partition() or 0))
                if (m.offset() or 0) + 1 >= ends.get(where, 0):
                    ends.pop(where, None)
        if ends:
            msg = f"{what}: could not read {', '.join(topics)} to the end within {timeout:g} s"
            raise FeblamError(msg)
    except KafkaException as exc:
        msg = f"{what}: the broker {settings.brokers} did not answer: {exc}"
        raise FeblamError(msg) from None
    finally:
        consumer.close()


def produce_waiting(producer: Any, topic: str, value: bytes, wait: float = 0.05, **kwargs: Any) -> None:
    """Produce one message; when the local queue is full, let it drain and try again — never drop."""
    while True:
        try:
            producer.produce(topic, value=value, **kwargs)
            return
        except BufferError:
            producer.poll(wait)


def producer_config(settings: KafkaSettings) -> dict[str, Any]:
    """librdkafka settings of the hit producer: idempotent, acks=all, bounded delivery time."""
    return {
        **settings.client_config(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": settings.linger_ms,
        "compression.type": "lz4",
        "message.timeout.ms": int(settings.delivery_timeout_seconds * 1000),
        "request.timeout.ms": int(settings.delivery_timeout_seconds * 1000),
    }


class Deliveries:
    """The delivery reports of a command's producer (pass it as ``on_delivery``); :meth:`settle` flushes and
    makes any message not delivered one line naming the topic, how many and why."""

    def __init__(self, settings: KafkaSettings, topic: str, what: str) -> None:
        self.settings, self.topic, self.what = settings, topic, what
        self.failed: list[str] = []

    def __call__(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failed.append(str(err))

    def settle(self, producer: Any, sent: int) -> None:
        from confluent_kafka import KafkaException

        wait = self.settings.delivery_timeout_seconds
        try:
            left = producer.flush(wait)
        except KafkaException as exc:
            left, self.failed = sent, [*self.failed, str(exc)]
        if self.failed or left:
            why = self.failed[0] if self.failed else f"unconfirmed after {wait:g} s (kafka.delivery_timeout_seconds)"
            msg = (
                f"{self.topic}: {len(self.failed) + left} of {sent} {self.what} not delivered to "
                f"{self.settings.brokers}: {why}"
            )
            raise FeblamError(msg)


class ServedProducer:
    """A producer with a thread of its own that serves its delivery reports, for callers that never poll
    (the console's request handlers); ``close`` stops the thread and flushes what is still queued."""

    def __init__(self, settings: KafkaSettings, name: str, **config: Any) -> None:
        from confluent_kafka import Producer

        self.producer = Producer({**producer_config(settings), **config})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def close(self, timeout: float) -> None:
        self._stop.set()
        self._thread.join(2.0)
        deadline = time.monotonic() + timeout
        while self.producer.flush(0.1) and time.monotonic() < deadline:
            pass


class NotConfirmed(FeblamError, RuntimeError):
    """The broker did not confirm a message in time."""


class ConfirmedProducer:
    """Produce one message at a time and wait for the broker to confirm it (a request that must not answer
    before its message is safe: a desk's action, a webhook's dead letter). Blocking: call it off an event loop."""

    def __init__(self, settings: KafkaSettings, topic: str, name: str, what: str) -> None:
        self.topic, self.what = topic, what
        self.timeout = settings.delivery_timeout_seconds
        self._served = ServedProducer(settings, name)

    def send(self, value: bytes, key: bytes) -> None:
        done = threading.Event()
        errors: list[Any] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(err)
            done.set()

        produce_waiting(self._served.producer, self.topic, value, key=key, on_delivery=delivered)
        if not done.wait(self.timeout + 1.0):
            msg = f"{self.topic}: the broker did not confirm the {self.what} within {self.timeout:g} s"
            raise NotConfirmed(msg)
        if errors:
            msg = f"{self.topic}: {self.what} not delivered: {errors[0]}"
            raise NotConfirmed(msg)

    def close(self) -> None:
        self._served.close(self.timeout)
