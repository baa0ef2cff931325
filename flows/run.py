"""``feblam run``: the long-running job (Kafka in, gateway sinks out), single or cluster.

Before the dataflow starts, everything an operator can get wrong is checked and
reported in one line, within a bounded time: the cluster flags, the recovery
directory (locked, so a second job on it exits at once), the broker (reachable
within ``kafka.start_timeout_seconds``) and every topic the job reads or writes
(a missing sink topic is an error, never auto-created). While it runs,
SIGTERM/SIGINT stop it — also while a cluster is still forming — and a fatal
error (a sink that cannot deliver, a lost peer) is one structured ``job_failed``
event and a non-zero exit, for the supervisor to restart it
(``deploy/feblam.service``).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import signal
import socket
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main

from feblam.config import DEV_HASH_KEY, Settings
from feblam.errors import FeblamError
from feblam.logs import filter_native_stderr, flush_stderr, get_logger
from flows.operations import Operations
from flows.pipeline import FlowStats, build_flow
from matchers.refresh import open_live_index
from sources.changes import start_change_feed
from sources.kafka import KafkaReadSource, SourceMonitor

log = get_logger(__name__)
#: How long a stop may take while the cluster forms (no batch yet) before the process exits anyway.
STOP_GRACE_SECONDS = 5.0


class JobFailed(FeblamError, RuntimeError):
    """The running job stopped on an error (exit status 1: the supervisor restarts it)."""


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


class RecoveryLock:
    """An exclusive lock on the recovery directory (one per cluster process), held while the job runs."""

    def __init__(self, directory: Path, process_id: int | None) -> None:
        self.path = directory / (".lock" if process_id is None else f".lock.{process_id}")
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            msg = (f"{self.path.parent}: recovery directory is in use by {holder}; "
                   "two jobs on one recovery directory would resume the same offsets and duplicate hits")
            raise FeblamError(msg) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"feblam run pid {os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def recovery_config(settings: Settings, partitions: int) -> RecoveryConfig | None:
    """The Bytewax recovery store, initialised on first use."""
    if not settings.recovery.dir:
        return None
    db = Path(settings.recovery.dir)
    if not db.exists() or not any(db.glob("part-*.sqlite3")):
        db.mkdir(parents=True, exist_ok=True)
        init_db_dir(db, partitions)
        log.info("recovery_initialised", dir=str(db), partitions=partitions)
    return RecoveryConfig(db, backup_interval=timedelta(seconds=settings.recovery.backup_seconds))


def preflight(settings: Settings) -> None:
    """The broker answers and every topic the job uses exists (listed, so nothing is auto-created)."""
    needed = [(s.topic, f"source topic (sources, vendor {s.vendor})") for s in settings.sources]
    needed += [(s.topic, f"sink topic (sinks {s.name!r})") for s in settings.sinks if s.topic]
    if settings.deadletter.topic and not settings.deadletter.path:
        needed.append((settings.deadletter.topic, "dead-letter topic (deadletter.topic)"))
    if settings.hotlists.changes_topic:
        needed.append((settings.hotlists.changes_topic, "change topic (hotlists.changes_topic)"))
    preflight_topics(settings, needed)


def preflight_topics(settings: Settings, needed: list[tuple[str, str]]) -> None:
    """The broker answers within ``kafka.start_timeout_seconds`` and every ``(topic, role)`` exists."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    k = settings.kafka
    try:
        md = AdminClient(k.client_config()).list_topics(timeout=k.start_timeout_seconds)
    except KafkaException as exc:
        reason = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
        msg = (f"broker {k.brokers} (kafka.brokers) did not answer within {k.start_timeout_seconds:g} s "
               f"(kafka.start_timeout_seconds): {reason}")
        raise FeblamError(msg) from None
    for topic, role in needed:
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            msg = f"{role} {topic!r} does not exist on {k.brokers}; create it first (it is never auto-created)"
            raise FeblamError(msg)


# ---------------------------------------------------------------- signals and failures


class Stopper(threading.Thread):
    """Takes SIGTERM/SIGINT on a thread of its own (blocked everywhere else: ``feblam run`` blocks
    them before any library starts a thread).

    The main thread sits in Bytewax's Rust code, which runs no Python signal
    handler while a cluster forms; this thread still sees the signal, sets the
    job's stop event and, if the flow has not stopped ``STOP_GRACE_SECONDS``
    later without having processed a batch, ends the process.
    """

    def __init__(self, stop: threading.Event, stats: FlowStats) -> None:
        super().__init__(name="stopper", daemon=True)
        self.stop_event = stop
        self.stats = stats
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # threads started later inherit it

    def run(self) -> None:
        signum = signal.sigwait({signal.SIGTERM, signal.SIGINT})
        log.info("stopping", signal=signal.Signals(signum).name)
        self.stop_event.set()
        time.sleep(STOP_GRACE_SECONDS)
        if self.stats.batches == 0:
            log.warning("stopped_before_start", reason="the flow had not started (cluster forming or broker waiting)")
            flush_stderr()
            os._exit(128 + signum)


def cluster_watchdog(peers: list[str], me: int, stats: FlowStats, stop: threading.Event, timeout: float) -> None:
    """Ends the process, naming the peers that do not answer, when the cluster has not formed in ``timeout``."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stats.batches or stop.is_set():
                return
            time.sleep(0.2)
        missing = [p for i, p in enumerate(peers) if i != me and not _answers(p)]
        log.error("job_failed", reason="cluster_not_formed", peers_not_answering=missing, timeout_seconds=timeout)
        print(f"feblam: error: the cluster did not form within {timeout:g} s (kafka.start_timeout_seconds x 3); "
              f"peers not answering: {', '.join(missing) or 'none (they answer, but did not join)'}", file=sys.stderr, flush=True)
        flush_stderr()
        os._exit(1)

    threading.Thread(target=watch, name="cluster-watchdog", daemon=True).start()


def _answers(peer: str) -> bool:
    host, _, port = peer.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def failure_message(exc: BaseException, peers: list[str], me: int | None) -> str:
    """One line for a failed run: our own error from the exception chain, or what a lost peer means."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, FeblamError):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if peers and ("Send thread" in text or "panic" in text.lower() or "connection" in text.lower()):
        gone = [p for i, p in enumerate(peers) if i != me and not _answers(p)]
        return (f"lost contact with cluster peer(s) {', '.join(gone) or '(unknown)'}: a process of the cluster stopped; "
                "restart every process (they resume from the recovery store)")
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


# ---------------------------------------------------------------- the job


def run_job(
    settings: Settings, *, workers: int = 1, process_id: int | None = None, addresses: str | None = None,
    stop: threading.Event | None = None, stats: FlowStats | None = None,
) -> int:
    """Run ``feblam run``: checks, then the dataflow until stopped; returns the exit status."""
    peers = parse_cluster(workers, process_id, addresses)
    lock = RecoveryLock(Path(settings.recovery.dir), process_id if peers else None) if settings.recovery.dir else None
    if lock is not None:
        lock.acquire()
    try:
        return _run(settings, workers, process_id, peers, stop, stats)
    finally:
        if lock is not None:
            lock.release()


def _run(
    settings: Settings, workers: int, process_id: int | None, peers: list[str],
    stop: threading.Event | None, stats: FlowStats | None,
) -> int:
    from feblam.cli import versions

    log.info("starting", versions=versions(), settings=settings.redacted(), workers=workers, process_id=process_id)
    if settings.privacy.hash_key == DEV_HASH_KEY:
        log.warning("development_hash_key", key="privacy.hash_key",
                    hint="set privacy.hash_key (or FEBLAM_PRIVACY_HASH_KEY) to a secret of this deployment")
    stats = stats or FlowStats()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        Stopper(stop, stats).start()
    monitor = SourceMonitor(settings.kafka)
    ops = Operations(settings, monitor, stop, process_id if peers else None).start()
    try:
        return _run_flow(settings, workers, process_id, peers, stop, stats, monitor, ops)
    finally:
        ops.close()


def _run_flow(
    settings: Settings, workers: int, process_id: int | None, peers: list[str], stop: threading.Event,
    stats: FlowStats, monitor: SourceMonitor, ops: Operations,
) -> int:
    preflight(settings)
    live = open_live_index(settings.hotlists, on_added=retro_hook(settings))
    holder = live.holder
    start_change_feed(settings, holder, stop, on_added=retro_hook(settings))
    ops.attach(holder, stats)
    gc.collect()
    gc.freeze()  # start-up objects (index metadata, modules) are never garbage: keep full collections short
    if peers:
        cluster_watchdog(peers, process_id or 0, stats, stop, settings.kafka.start_timeout_seconds * 3)
    source = KafkaReadSource(settings.kafka, settings.sources, stop, monitor=monitor)
    flow = build_flow(settings, source, holder=holder, stats=stats)
    os.environ["RUST_BACKTRACE"] = "0"  # a failure is reported below, in one line
    filter_native_stderr()
    try:
        cli_main(
            flow,
            workers_per_process=workers,
            process_id=process_id if peers else None,
            addresses=peers or None,
            epoch_interval=timedelta(seconds=settings.recovery.snapshot_seconds),
            recovery_config=recovery_config(settings, workers * max(1, len(peers))),
        )
    except BaseException as exc:  # a Rust panic (a lost peer) is a BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        message = failure_message(exc, peers, process_id)
        log.error("job_failed", error=message, error_type=type(exc).__name__)
        raise JobFailed(message) from None
    finally:
        live.close()
        with contextlib.suppress(Exception):
            del flow
    log.info("stopped")
    return 0
