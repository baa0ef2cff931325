"""The Kafka source against the bundled broker: batches with their offsets, resume after a snapshot, stop."""

from __future__ import annotations

import threading
import time

import pytest

from feblam.config import KafkaSettings
from feblam.model import PayloadBatch
from sources.broker import EmbeddedBroker
from sources.kafka import KafkaReadSource, SourceMonitor
from tests.support.kafka import produce

pytestmark = pytest.mark.kafka


def collect(part: object, want: int, timeout: float = 20.0) -> list[PayloadBatch]:
    batches: list[PayloadBatch] = []
    deadline = time.monotonic() + timeout
    while sum(len(b) for b in batches) < want and time.monotonic() < deadline:
        batches += part.next_batch()  # type: ignore[attr-defined]
        time.sleep(0.01)
    return batches


def test_a_partition_gives_its_payloads_in_batches_and_resumes_after_its_snapshot(
    broker: EmbeddedBroker, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.reads"
    broker.create_topics([topic], partitions=1)
    produce(broker.address, topic, [f"p{i}".encode() for i in range(5)], partition=0)
    settings = KafkaSettings(brokers=broker.address, batch_size=3)
    monitor = SourceMonitor(settings)
    source = KafkaReadSource(settings, {topic: "canonical"}, monitor=monitor)
    assert source.list_parts() == [f"{topic}#0"]
    part = source.build_part("in", f"{topic}#0", None)
    batches = collect(part, 5)
    assert all(b.vendor == "canonical" and b.origin == topic and b.partition == 0 for b in batches)
    assert max(len(b) for b in batches) <= 3  # batch_size bounds a poll
    assert [p for b in batches for p in b.payloads] == [f"p{i}".encode() for i in range(5)]
    assert [o for b in batches for o in b.positions] == [0, 1, 2, 3, 4]
    assert part.snapshot() == 5  # the next offset: what recovery resumes from
    assert monitor.partitions == 1
    part.close()
    assert monitor.partitions == 0

    produce(broker.address, topic, [b"p5", b"p6"], partition=0)
    again = source.build_part("in", f"{topic}#0", 3)  # resumed from an older snapshot
    assert [p for b in collect(again, 4) for p in b.payloads] == [b"p3", b"p4", b"p5", b"p6"]
    again.close()


def test_every_partition_of_every_topic_is_listed(broker: EmbeddedBroker, topic_prefix: str) -> None:
    a, b = f"{topic_prefix}.a", f"{topic_prefix}.b"
    broker.create_topics([a, b], partitions=2)
    source = KafkaReadSource(KafkaSettings(brokers=broker.address), {a: "vendor-a", b: "vendor-b"})
    assert sorted(source.list_parts()) == sorted([f"{a}#0", f"{a}#1", f"{b}#0", f"{b}#1"])


def test_the_stop_event_ends_a_partition_at_its_next_poll(broker: EmbeddedBroker, topic_prefix: str) -> None:
    topic = f"{topic_prefix}.reads"
    broker.create_topics([topic], partitions=1)
    stop = threading.Event()
    part = KafkaReadSource(KafkaSettings(brokers=broker.address), {topic: "canonical"}, stop).build_part(
        "in", f"{topic}#0", None
    )
    assert part.next_batch() == []  # an empty topic: nothing, and no wait
    stop.set()
    with pytest.raises(StopIteration):
        part.next_batch()
    part.close()


def test_a_message_without_a_value_is_an_empty_payload_in_its_place(broker: EmbeddedBroker, topic_prefix: str) -> None:
    from confluent_kafka import Producer

    topic = f"{topic_prefix}.reads"
    broker.create_topics([topic], partitions=1)
    producer = Producer({"bootstrap.servers": broker.address})
    for value in (b"p0", None, b"p2"):  # None: a tombstone, which the flow dead-letters as an empty payload
        producer.produce(topic, value=value, key=b"k", partition=0)
    assert producer.flush(10) == 0
    part = KafkaReadSource(KafkaSettings(brokers=broker.address), {topic: "canonical"}).build_part(
        "in", f"{topic}#0", None
    )
    batches = collect(part, 3)
    assert [p for b in batches for p in b.payloads] == [b"p0", b"", b"p2"]
    assert [o for b in batches for o in b.positions] == [0, 1, 2]
    part.close()
