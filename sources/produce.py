"""``feblam produce``: camera reads from a file or stdin onto a vendor's topic, as the cameras would.

One line is one payload (as ``feblam replay`` reads files); blank lines are
skipped. Each payload is also decoded by the vendor's decoder, so the summary
says how many the job will take as reads and how many it will send to the dead
letters (with the first reason): an integrator sees a bad sample before the
job does. Nothing is held back: a payload the job would refuse is still sent,
since that is what the operator asked for.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from feblam.config import Settings
from feblam.errors import FeblamError
from feblam.kafka import Deliveries, produce_waiting, producer_config, topic_partitions
from sources.vendors import decode


@dataclass(slots=True)
class Produced:
    topic: str
    sent: int = 0
    refused: int = 0
    first_refusal: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        rate = self.sent / self.seconds if self.seconds > 0 else 0.0
        text = f"produced {self.sent} payloads to {self.topic} in {self.seconds:.1f} s ({rate:.0f}/s)"
        if self.refused:
            text += f"; {self.refused} will be dead letters (first: {self.first_refusal})"
        return text


def vendor_topic(settings: Settings, vendor: str, topic: str | None) -> str:
    """The topic ``vendor``'s reads go to: the one ``[[sources]]`` of that vendor, or ``topic`` if it is one."""
    topics = [s.topic for s in settings.sources if s.vendor == vendor]
    if topic is not None:
        if topic not in topics:
            msg = f"--topic {topic!r} is not a [[sources]] topic of vendor {vendor} (those: {', '.join(topics) or 'none'})"
            raise FeblamError(msg)
        return topic
    if not topics:
        known = sorted({s.vendor for s in settings.sources})
        msg = f"--vendor {vendor}: no [[sources]] of that vendor in the configuration (it has {', '.join(known) or 'none'})"
        raise FeblamError(msg)
    if len(topics) > 1:
        msg = f"--vendor {vendor} reads from {', '.join(topics)}: say which with --topic"
        raise FeblamError(msg)
    return topics[0]


def produce_lines(
    settings: Settings, vendor: str, topic: str, lines: Iterable[bytes], rate: float | None, name: str
) -> Produced:
    """Send each non-blank line of ``lines`` (from ``name``) to ``topic``, at most ``rate`` a second."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer(producer_config(settings.kafka))
    topic_partitions(producer, topic, settings.kafka.brokers, timeout=settings.kafka.start_timeout_seconds)
    done = Produced(topic)
    deliveries = Deliveries(settings.kafka, topic, "payloads")
    started = time.monotonic()
    for number, raw in enumerate(lines, 1):
        payload = raw.rstrip(b"\r\n")
        if not payload.strip():
            continue
        try:
            decode(vendor, payload)
        except ValueError as exc:
            done.refused += 1
            done.first_refusal = done.first_refusal or f"{name}:{number}: {exc}"
        if rate:
            ahead = started + done.sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        try:
            produce_waiting(producer, topic, payload, on_delivery=deliveries)
        except KafkaException as exc:  # a payload over the broker's message size, say
            msg = f"{name}:{number}: the producer refused the payload for {topic}: {exc}"
            raise FeblamError(msg) from None
        done.sent += 1
        producer.poll(0)
    deliveries.settle(producer, done.sent)
    done.seconds = time.monotonic() - started
    return done
