"""Where reads come from: vendor decoders, the Kafka and file sources, the embedded broker, the simulator."""

from __future__ import annotations

from feblam.lazy import lazy_api

__all__, __getattr__ = lazy_api(
    __name__,
    {
        "decode": "sources.vendors",
        "Vendor": "sources.vendors",
        "VENDORS": "sources.vendors",
        "make_read": "sources.vendors",
        "KafkaReadSource": "sources.kafka",
        "SourceMonitor": "sources.kafka",
        "FilesSource": "sources.files",
        "EmbeddedBroker": "sources.broker",
        "create_topics": "sources.broker",
        "free_port": "sources.broker",
    },
)
