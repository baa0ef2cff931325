"""``feblam gateway audit``: what an auditor asks of the access trail — who saw hit X, what user Y saw on day D.

Reads ``[gateway] access_topic`` from its beginning to its end (no consumer
group: an audit moves no offset), keeps the events that fit every filter given,
and prints them as JSON lines, oldest first, then one summary line on stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from feblam.config import Settings
from feblam.errors import FeblamError
from feblam.kafka import topic_partitions


def read_trail(settings: Settings, timeout: float = 60.0, idle: float = 2.0) -> Iterator[dict[str, Any]]:
    """Every event on the access topic, from its beginning until nothing more has come for ``idle`` seconds."""
    k, topic = settings.kafka, settings.gateway.access_topic
    consumer = Consumer({**k.client_config(), "group.id": "feblam-audit", "enable.auto.commit": False})
    try:
        parts = topic_partitions(consumer, topic, k.brokers, timeout=k.start_timeout_seconds)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle:
            if time.monotonic() > deadline:
                msg = f"{topic}: the audit did not reach the end of the topic within {timeout:g} s"
                raise FeblamError(msg)
            msgs = consumer.consume(500, 0.2)
            if msgs:
                quiet_since = time.monotonic()
            for m in msgs:
                if m.error() is None:
                    try:
                        yield orjson.loads(m.value() or b"{}")
                    except orjson.JSONDecodeError:
                        continue  # not ours: the trail is written by the gateway only
    except KafkaException as exc:
        msg = f"{topic}: the broker {k.brokers} did not answer: {exc}"
        raise FeblamError(msg) from None
    finally:
        consumer.close()


def audit(settings: Settings, *, hit: str | None, user: str | None, day: str | None) -> int:
    """Print the events of the access trail that fit ``hit``, ``user`` and ``day`` (YYYY-MM-DD, UTC)."""
    if day is not None:
        try:
            date.fromisoformat(day)
        except ValueError:
            msg = f"--day {day!r}: not a date (YYYY-MM-DD)"
            raise FeblamError(msg) from None
    found = 0
    events = sorted(read_trail(settings), key=lambda e: str(e.get("at")))
    for event in events:
        if hit is not None and hit not in (event.get("hit_ids") or ()):
            continue
        if user is not None and event.get("user") != user:
            continue
        if day is not None and not str(event.get("at", "")).startswith(day):
            continue
        found += 1
        print(orjson.dumps(event).decode())
    print(f"events={found} of {len(events)} on {settings.gateway.access_topic}", file=sys.stderr)
    return 0
