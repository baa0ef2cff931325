from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from sources.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The bundled Kafka-compatible broker on a free loopback port, for the whole session."""
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def topic_prefix() -> str:
    """A uuid-named topic set per test."""
    return f"t{uuid.uuid4().hex[:10]}"
