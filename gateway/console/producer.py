"""What a desk does in the console or through the API, produced to ``[gateway] actions_topic`` and confirmed
by the broker.

The console answers an action only once the broker has it, so an action the
dispatcher saw accepted is read back by the gateway's flow even across a crash.
"""

from __future__ import annotations

from feblam.config import KafkaSettings
from feblam.kafka import ConfirmedProducer
from feblam.kafka import NotConfirmed as ActionNotDelivered
from gateway.actions import DeskAction, encode_action

__all__ = ["ActionNotDelivered", "ActionWriter"]


class ActionWriter:
    """One producer for every console and API request; a thread serves its delivery reports."""

    def __init__(self, settings: KafkaSettings, topic: str, key: bytes) -> None:
        """``key``: the gateway's action key; every action is signed with it."""
        self.topic = topic
        self._key = key
        self._producer = ConfirmedProducer(settings, topic, "console-actions", "action")

    def write(self, action: DeskAction) -> None:
        """Produce one action keyed by its hit id and wait for the broker (blocking: call it off the event loop)."""
        self._producer.send(encode_action(action, self._key), action.hit_id.encode())

    def close(self) -> None:
        self._producer.close()
