"""What a desk does in the console, produced to ``[gateway] actions_topic`` and confirmed by the broker.

The console answers an action only once the broker has it, so an action the
dispatcher saw accepted is read back by the gateway's flow even across a crash.
"""

from __future__ import annotations

import threading
from typing import Any

from feblam.config import KafkaSettings
from feblam.errors import FeblamError
from feblam.kafka import ServedProducer, produce_waiting
from gateway.actions import DeskAction, encode_action


class ActionNotDelivered(FeblamError, RuntimeError):
    """The broker did not confirm an action in time."""


class ActionWriter:
    """One producer for every console request; a thread serves its delivery reports."""

    def __init__(self, settings: KafkaSettings, topic: str, key: bytes) -> None:
        """``key``: the gateway's action key; every action is signed with it."""
        self.topic = topic
        self._key = key
        self.timeout = settings.delivery_timeout_seconds
        self._served = ServedProducer(settings, "console-actions")

    def write(self, action: DeskAction) -> None:
        """Produce one action keyed by its hit id and wait for the broker (blocking: call it off the event loop)."""
        done = threading.Event()
        errors: list[Any] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(err)
            done.set()

        produce_waiting(
            self._served.producer,
            self.topic,
            encode_action(action, self._key),
            key=action.hit_id.encode(),
            on_delivery=delivered,
        )
        if not done.wait(self.timeout + 1.0):
            msg = f"{self.topic}: the broker did not confirm the action within {self.timeout:g} s"
            raise ActionNotDelivered(msg)
        if errors:
            msg = f"{self.topic}: action not delivered: {errors[0]}"
            raise ActionNotDelivered(msg)

    def close(self) -> None:
        self._served.close(self.timeout)
