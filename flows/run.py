"""``feblam run``: the long-running job (Kafka in, hit sinks out), single or cluster.

Before the dataflow starts, everything an operator can get wrong is checked and
reported in one line, within a bounded time: the cluster flags, the recovery
directory (locked, so a second job on it exits at once), the broker (reachable
within ``kafka.start_timeout_seconds``) and every topic the job reads or writes
(a missing sink topic is an error, never auto-created). While it runs,
SIGTERM/SIGINT stop it — also while a cluster is still forming — and a fatal
error (a sink that cannot deliver, a lost peer) is one structured ``job_failed``
event and a non-zero exit, for the supervisor to restart it
(``deploy/feblam.service``). What it shares with ``feblam gateway`` (the lock,
the signals, the failure line) is :mod:`flows.service`.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import time
from typing import Any

from feblam.config import Settings
from feblam.errors import FeblamError
from feblam.logs import flush_stderr, get_logger
from feblam.topics import job_topics, require_topics
from flows.operations import Operations
from flows.pipeline import FlowStats, build_flow
from flows.service import peer_answers, run_dataflow, service
from matchers.refresh import open_live_index
from sinks.deadletters import DeadletterWriter
from sinks.outputs import check_outputs
from sources.changes import start_change_feed
from sources.kafka import KafkaReadSource, SourceMonitor

log = get_logger(__name__)


# ---------------------------------------------------------------- checks before start


def retro_hook(settings: Settings) -> Any:
    """What the change feed calls when a swap added entries: a retro-scan of the window before it."""
    from flows.retro import scan_in_background

    def on_added(added: Any, entries: list[tuple[str, str]], before: Any, version: str) -> None:
        scan_in_background(settings, added, entries, before, version)

    return on_added


def parse_cluster(workers: int, process_id: int | None, addresses: str | None) -> list[str]:
    """The peer addresses of a cluster run (empty: one process); a bad flag is one clear error."""
    if workers < 1:
        msg = f"-w/--workers {workers}: must be at least 1"
        raise FeblamError(msg)
    if addresses is None:
        if process_id is not None:
            msg = f"-i/--process-id {process_id} needs -a/--addresses (host:port;host:port of every process)"
            raise FeblamError(msg)
        return []
    peers = [a.strip() for a in addresses.split(";") if a.strip()]
    if not peers:
        msg = f"-a/--addresses {addresses!r}: no address (expected host:port;host:port)"
        raise FeblamError(msg)
    for peer in peers:
        host, sep, port = peer.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            msg = f"-a/--addresses: {peer!r} is not host:port"
            raise FeblamError(msg)
    if len(set(peers)) != len(peers):
        msg = f"-a/--addresses {addresses!r}: an address is listed twice"
        raise FeblamError(msg)
    if process_id is None:
        msg = f"-a/--addresses given without -i/--process-id (this process's index, 0..{len(peers) - 1})"
        raise FeblamError(msg)
    if not 0 <= process_id < len(peers):
        msg = f"-i/--process-id {process_id}: not an index of the {len(peers)} addresses in -a (0..{len(peers) - 1})"
        raise FeblamError(msg)
    return peers


def preflight(settings: Settings) -> None:
    """The broker answers and every topic the job uses exists (listed, so nothing is auto-created)."""
    check_outputs(settings)
    require_topics(settings, job_topics(settings))


# ---------------------------------------------------------------- signals and failures


def cluster_watchdog(peers: list[str], me: int, stats: FlowStats, stop: threading.Event, timeout: float) -> None:
    """Ends the process, naming the peers that do not answer, when the cluster has not formed in ``timeout``."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stats.batches or stop.is_set():
                return
            time.sleep(0.2)
        missing = [p for i, p in enumerate(peers) if i != me and not peer_answers(p)]
        log.error("job_failed", reason="cluster_not_formed", peers_not_answering=missing, timeout_seconds=timeout)
        print(
            f"feblam: error: the cluster did not form within {timeout:g} s (kafka.start_timeout_seconds x 3); "
            f"peers not answering: {', '.join(missing) or 'none (they answer, but did not join)'}",
            file=sys.stderr,
            flush=True,
        )
        flush_stderr()
        os._exit(1)

    threading.Thread(target=watch, name="cluster-watchdog", daemon=True).start()


# ---------------------------------------------------------------- the job


def run_job(
    settings: Settings,
    *,
    workers: int = 1,
    process_id: int | None = None,
    addresses: str | None = None,
    stop: threading.Event | None = None,
    stats: FlowStats | None = None,
) -> int:
    """Run ``feblam run``: checks, then the dataflow until stopped; returns the exit status."""
    peers = parse_cluster(workers, process_id, addresses)
    stats = stats or FlowStats()
    me = process_id if peers else None
    with service(settings, stats, stop, started="starting", lock_id=me, workers=workers, process_id=process_id) as stop:
        monitor = SourceMonitor(settings.kafka)
        ops = Operations(settings, monitor, stop, me).start()
        try:
            return _run_flow(settings, workers, process_id, peers, stop, stats, monitor, ops)
        finally:
            ops.close()


def _run_flow(
    settings: Settings,
    workers: int,
    process_id: int | None,
    peers: list[str],
    stop: threading.Event,
    stats: FlowStats,
    monitor: SourceMonitor,
    ops: Operations,
) -> int:
    preflight(settings)
    live = open_live_index(settings.hotlists, on_added=retro_hook(settings))
    holder = live.holder
    if settings.hotlists.change_topics():
        start_change_feed(settings, holder, stop, DeadletterWriter(settings).write, on_added=retro_hook(settings))
    ops.attach(holder, stats)
    gc.collect()
    gc.freeze()  # start-up objects (index metadata, modules) are never garbage: keep full collections short
    if peers:
        cluster_watchdog(peers, process_id or 0, stats, stop, settings.kafka.start_timeout_seconds * 3)
    source = KafkaReadSource(settings.kafka, settings.sources, stop, monitor=monitor)
    flow = build_flow(settings, source, holder=holder, stats=stats, clone_shards=workers * max(1, len(peers)))
    try:
        run_dataflow(flow, settings, failed="job_failed", workers=workers, process_id=process_id, peers=peers)
    finally:
        live.close()
        with contextlib.suppress(Exception):
            del flow
    log.info("stopped")
    return 0
