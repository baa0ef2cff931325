"""Dead letters written outside a dataflow (the change feed's), to the flow's own dead-letter output:
the same topic with the same key, or the same file with the same line, as :func:`sinks.build.build_deadletter_sink`."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Producer

from feblam.config import Settings
from feblam.kafka import produce_waiting, producer_config
from feblam.model import DeadLetter
from sinks.files import to_jsonl
from sinks.kafka import KafkaDeadletterSink


class DeadletterWriter:
    """One dead letter at a time, written before :meth:`write` returns (the caller moves on only then)."""

    def __init__(self, settings: Settings, flush_seconds: float = 10.0) -> None:
        self.path = Path(settings.deadletter.path) if settings.deadletter.path else None
        self.topic = settings.deadletter.topic
        self.flush_seconds = flush_seconds
        self._producer = Producer(producer_config(settings.kafka)) if self.path is None else None

    def write(self, dl: DeadLetter) -> None:
        line = to_jsonl(dl)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as fh:  # one write of one line: appends never interleave
                fh.write(line + b"\n")
        elif self._producer is not None:
            key = KafkaDeadletterSink.item_key(dl).encode()
            produce_waiting(self._producer, self.topic, line, key=key)
            self._producer.flush(self.flush_seconds)
