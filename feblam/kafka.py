"""Kafka client helpers every package uses: topic metadata and producing without dropping."""

from __future__ import annotations

import threading
import time
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
