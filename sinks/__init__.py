"""Where hits go: routing rules, Kafka topics, JSONL files, the Parquet audit.

The names below are the package's public API, imported lazily (importing the
package costs nothing; each name loads its module on first use).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "Router": "sinks.routing",
    "build_sinks": "sinks.build",
    "build_deadletter_sink": "sinks.build",
    "KafkaHitSink": "sinks.kafka",
    "KafkaDeadletterSink": "sinks.kafka",
    "JsonlSink": "sinks.files",
    "Rotation": "sinks.files",
    "ParquetAuditSink": "sinks.audit",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(import_module(_WHERE[name]), name)
