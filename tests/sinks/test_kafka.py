"""The Kafka hit sinks against the bundled broker: what lands on the topic, under which key."""

from __future__ import annotations

import orjson
import pytest

from feblam.config import KafkaSettings
from feblam.logs import plate_ref
from feblam.model import DeadLetter
from feblam.serde import hit_from_dict
from sinks.kafka import KafkaDeadletterSink, KafkaEventSink, KafkaHitSink
from sources.broker import EmbeddedBroker
from tests.support.gateway import hit_doc
from tests.support.kafka import read_topic

pytestmark = pytest.mark.kafka


def write(sink: object, items: list[object]) -> None:
    parts = sink.list_parts()  # type: ignore[attr-defined]
    built = {p: sink.build_part("out", p, None) for p in parts}  # type: ignore[attr-defined]
    for item in items:
        key = sink.item_key(item)  # type: ignore[attr-defined]
        built[parts[sink.part_fn(key) % len(parts)]].write_batch([item])  # type: ignore[attr-defined]
    for part in built.values():
        part.snapshot()  # waits for the broker's confirmation (raises if it does not come)
        part.close()


def test_hits_land_as_json_keyed_by_the_plate_reference_never_the_plate(
    broker: EmbeddedBroker, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.hits"
    broker.create_topics([topic], partitions=2)
    hits = [hit_from_dict(hit_doc(plate=p)) for p in ("1ABC123", "2DEF456", "1ABC123")]
    write(KafkaHitSink(KafkaSettings(brokers=broker.address), topic, "all-hits"), hits)
    msgs = read_topic(broker.address, topic, expect=3)
    assert sorted(orjson.loads(m.value())["hit_id"] for m in msgs) == sorted(h.hit_id for h in hits)
    assert {m.key().decode() for m in msgs} == {plate_ref("1ABC123"), plate_ref("2DEF456")}
    assert not any(b"1ABC123" in m.key() for m in msgs)
    one_vehicle = [m for m in msgs if m.key().decode() == plate_ref("1ABC123")]
    assert len({m.partition() for m in one_vehicle}) == 1  # one vehicle's hits stay in order


def test_dead_letters_and_events_keep_their_shape(broker: EmbeddedBroker, topic_prefix: str) -> None:
    dlq, events = f"{topic_prefix}.dlq", f"{topic_prefix}.events"
    broker.create_topics([dlq, events], partitions=1)
    settings = KafkaSettings(brokers=broker.address)
    dl = DeadLetter("reads.vendor-a", "bad JSON", b"\xff{", "vendor-a", None, 0, 7)
    write(KafkaDeadletterSink(settings, dlq, "deadletter"), [dl])
    (msg,) = read_topic(broker.address, dlq, expect=1)
    doc = orjson.loads(msg.value())
    assert (doc["source"], doc["offset"], doc["error"], doc["payload_encoding"]) == (
        "reads.vendor-a",
        7,
        "bad JSON",
        "base64",
    )
    event = {
        "hit_id": "h1",
        "desk": "brussels",
        "state": "new",
        "user": None,
        "at": "2026-11-29T20:00:00.000Z",
        "outcome": None,
    }
    write(KafkaEventSink(settings, events, "hit-events"), [event])
    (msg,) = read_topic(broker.address, events, expect=1)
    assert orjson.loads(msg.value()) == event
