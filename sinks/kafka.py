"""Kafka hit sinks: hits and dead letters.

One sink partition per topic partition: a hit's item key is the keyed hash of
its plate key, Bytewax routes it to the worker that owns that partition, and
the message is produced **to that partition** with that key — so one vehicle's
hits stay in order and never carry the clear plate.

The producer is idempotent (``enable.idempotence``, ``acks=all``). It is not
flushed after every batch: it is flushed when Bytewax snapshots (the end of
each epoch) and at close, and a delivery failure raises there, so the job stops
and restarts from the last snapshot instead of losing a hit.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import orjson
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from confluent_kafka import KafkaError, Producer

from feblam.config import KafkaSettings
from feblam.errors import FeblamError
from feblam.kafka import produce_waiting, producer_config, topic_partitions
from feblam.logs import get_logger, plate_ref
from feblam.metrics import SINK_ERRORS
from feblam.model import DeadLetter, Hit
from feblam.serde import deadletter_to_json, hit_to_json

log = get_logger(__name__)


class DeliveryError(FeblamError, RuntimeError):
    """The broker did not confirm a message."""


class _ProducerPartition(StatefulSinkPartition[Any, None]):
    def __init__(self, producer: Producer, topic: str, partition: int, kind: str, timeout: float, name: str) -> None:
        self._producer = producer
        self._timeout = timeout
        self._error_count = SINK_ERRORS.labels(name)
        self._topic = topic
        self._partition = partition
        self._kind = kind
        self._errors: list[KafkaError] = []
        self._lock = threading.Lock()

    def _on_delivery(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self._error_count.inc()
            with self._lock:
                self._errors.append(err)

    def _raise_errors(self) -> None:
        if self._errors:
            err = self._errors[0]
            log.error(
                "kafka_delivery_failed",
                topic=self._topic,
                partition=self._partition,
                error=str(err),
                count=len(self._errors),
            )
            msg = f"{self._topic}[{self._partition}]: {len(self._errors)} message(s) not delivered: {err}"
            raise DeliveryError(msg)

    def write_batch(self, values: list[Any]) -> None:
        self._raise_errors()
        for item in values:
            if self._kind == "hit":
                value, key = hit_to_json(item), plate_ref(item.plate).encode()
            elif self._kind == "event":  # a hit event by its case, a list-quality event by its entry
                value = orjson.dumps(item)
                key = (item["hit_id"] if "hit_id" in item else f"{item['list_id']}/{item['entry_id']}").encode()
            else:
                value, key = deadletter_to_json(item, datetime.now(UTC)), item.source.encode()
            produce_waiting(
                self._producer,
                self._topic,
                value,
                0.1,
                key=key,
                partition=self._partition,
                on_delivery=self._on_delivery,
            )
        self._producer.poll(0)

    def snapshot(self) -> None:
        remaining = self._producer.flush(self._timeout + 1.0)
        if remaining:
            log.error(
                "kafka_delivery_failed",
                topic=self._topic,
                partition=self._partition,
                queued=remaining,
                timeout_seconds=self._timeout,
            )
            msg = (
                f"{self._topic}[{self._partition}]: {remaining} message(s) not confirmed by the broker within "
                f"{self._timeout:g} s (kafka.delivery_timeout_seconds)"
            )
            raise DeliveryError(msg)
        self._raise_errors()
        return None

    def close(self) -> None:
        # Never raise here: close also runs while the job is failing; what is not confirmed is
        # after the last snapshot and is produced again after the restart.
        remaining = self._producer.flush(self._timeout + 1.0)
        if remaining or self._errors:
            log.error(
                "kafka_delivery_failed",
                topic=self._topic,
                partition=self._partition,
                queued=remaining,
                failed=len(self._errors),
                at="close",
            )


class _TopicSink(FixedPartitionedSink[Any, None]):
    kind = "hit"

    def __init__(self, settings: KafkaSettings, topic: str, name: str | None = None) -> None:
        """``name``: the sink's name in the settings (the ``sink`` label of ``feblam_sink_errors_total``)."""
        self.settings = settings
        self.topic = topic
        self.name = name or topic
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def list_parts(self) -> list[str]:
        from confluent_kafka.admin import AdminClient

        return [
            str(p)
            for p in topic_partitions(AdminClient(self.settings.client_config()), self.topic, self.settings.brokers)
        ]

    def part_fn(self, item_key: str) -> int:
        return int(item_key[:8], 16) if item_key else 0

    def _shared_producer(self) -> Producer:
        with self._lock:  # one producer per process for all partitions of this sink
            if self._producer is None:
                self._producer = Producer(producer_config(self.settings))
            return self._producer

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _ProducerPartition:
        return _ProducerPartition(
            self._shared_producer(),
            self.topic,
            int(for_part),
            self.kind,
            self.settings.delivery_timeout_seconds,
            self.name,
        )


class KafkaHitSink(_TopicSink):
    """Hits as DESIGN section 6 JSON, keyed by the keyed hash of the plate key."""

    kind = "hit"

    @staticmethod
    def item_key(hit: Hit) -> str:
        return plate_ref(hit.plate)


class KafkaDeadletterSink(_TopicSink):
    """Dead letters as JSON (source, partition, offset or line, error, payload)."""

    kind = "deadletter"

    @staticmethod
    def item_key(dl: DeadLetter) -> str:
        import hashlib

        return hashlib.blake2b(f"{dl.source}/{dl.partition}".encode(), digest_size=4).hexdigest()


class KafkaEventSink(_TopicSink):
    """The gateway's hit events (DESIGN 12) as JSON, keyed by ``hit_id``: one hit's events stay in order."""

    kind = "event"

    @staticmethod
    def item_key(event: dict[str, Any]) -> str:
        import hashlib

        return hashlib.blake2b(event["hit_id"].encode(), digest_size=4).hexdigest()


class KafkaQualitySink(_TopicSink):
    """The gateway's list-quality events (flagged entries) as JSON, keyed by list and entry."""

    kind = "event"

    @staticmethod
    def item_key(event: dict[str, Any]) -> str:
        import hashlib

        return hashlib.blake2b(f"{event['list_id']}/{event['entry_id']}".encode(), digest_size=4).hexdigest()
