"""Hit sinks from the settings: a Kafka topic, a JSONL file or a Parquet audit folder per sink."""

from __future__ import annotations

from typing import Any

from bytewax.outputs import Sink

from feblam.config import Settings
from sinks.audit import ParquetAuditSink
from sinks.files import JsonlSink, Rotation


def build_sinks(settings: Settings) -> dict[str, Sink[Any]]:
    """The hit sinks of the settings, by name."""
    out: dict[str, Sink[Any]] = {}
    for s in settings.sinks:
        if s.path:
            out[s.name] = JsonlSink(s.path, Rotation(s.rotate_bytes, s.rotate_daily, s.keep))
        elif s.parquet_dir:
            out[s.name] = ParquetAuditSink(s.parquet_dir)
        else:
            from sinks.kafka import KafkaHitSink

            out[s.name] = KafkaHitSink(settings.kafka, s.topic, s.name)
    return out


def build_deadletter_sink(settings: Settings) -> Sink[Any]:
    """The dead-letter output of the settings (topic or file)."""
    if settings.deadletter.path:
        return JsonlSink(settings.deadletter.path)
    from sinks.kafka import KafkaDeadletterSink

    return KafkaDeadletterSink(settings.kafka, settings.deadletter.topic, "deadletter")
