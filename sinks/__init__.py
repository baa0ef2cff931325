"""The hit sinks: where the job's hits go (routing rules, Kafka topics, JSONL files, the Parquet audit)."""

from __future__ import annotations

from feblam.lazy import lazy_api

__all__, __getattr__ = lazy_api(
    __name__,
    {
        "Router": "sinks.routing",
        "build_sinks": "sinks.build",
        "build_deadletter_sink": "sinks.build",
        "KafkaHitSink": "sinks.kafka",
        "KafkaDeadletterSink": "sinks.kafka",
        "JsonlSink": "sinks.files",
        "Rotation": "sinks.files",
        "ParquetAuditSink": "sinks.audit",
        "KafkaEventSink": "sinks.kafka",
        "DeadletterWriter": "sinks.deadletters",
    },
)
