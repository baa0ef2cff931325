from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under ``tests/system/`` runs FEBLAM as an operator would (subprocesses, the broker, a browser):
    marked ``system``, so that ``make unit`` leaves them out."""
    system = Path(__file__).parent / "system"
    for item in items:
        if system in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.system)
