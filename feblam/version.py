"""FEBLAM's version with those of the libraries that decide its behaviour (``feblam --version``, start-up events)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def _of(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def versions() -> dict[str, str]:
    """FEBLAM's, bytewax's, confluent-kafka's and librdkafka's versions."""
    import confluent_kafka

    return {
        "feblam": _of("feblam"),
        "bytewax": _of("bytewax"),
        "confluent-kafka": _of("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
    }
