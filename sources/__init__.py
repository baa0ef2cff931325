"""Where reads come from: vendor decoders, the Kafka and file sources, the embedded broker, the simulator.

The names below are the package's public API, imported lazily (importing the
package costs nothing; each name loads its module on first use).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "decode": "sources.vendors",
    "PARSERS": "sources.vendors",
    "DECODERS": "sources.vendors",
    "VENDORS": "sources.vendors",
    "make_read": "sources.vendors",
    "KafkaReadSource": "sources.kafka",
    "SourceMonitor": "sources.kafka",
    "FilesSource": "sources.files",
    "EmbeddedBroker": "sources.broker",
    "create_topics": "sources.broker",
    "free_port": "sources.broker",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(import_module(_WHERE[name]), name)
