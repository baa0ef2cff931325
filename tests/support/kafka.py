"""Producing to and reading back from the test broker."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition


def produce(brokers: str, topic: str, values: Iterable[bytes], partition: int | None = None) -> int:
    p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "acks": "all"})
    n = 0
    for v in values:
        if partition is None:
            p.produce(topic, value=v)
        else:
            p.produce(topic, value=v, partition=partition)
        n += 1
    assert p.flush(15) == 0
    return n


def produce_file(brokers: str, topic: str, path: Path) -> int:
    lines = [line.rstrip(b"\r\n") for line in path.read_bytes().splitlines()]
    return produce(brokers, topic, [line for line in lines if line.strip()])


def read_topic(
    brokers: str, topic: str, *, expect: int | None = None, timeout: float = 30.0, idle: float = 2.0
) -> list:
    """Every message of a topic (all partitions) until ``expect`` are read, or nothing new for ``idle`` s."""
    c = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"reader-{topic}-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    md = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    out = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msgs = c.consume(1000, 0.2)
            for m in msgs:
                if m.error() is None:
                    out.append(m)
            if msgs:
                last_new = time.monotonic()
            if expect is not None and len(out) >= expect:
                # keep reading briefly to catch duplicates
                if time.monotonic() - last_new > 0.5:
                    break
            elif expect is None and time.monotonic() - last_new > idle:
                break
    finally:
        c.close()
    return out


def hits_of(msgs: list) -> list[dict]:
    return [orjson.loads(m.value()) for m in msgs]
