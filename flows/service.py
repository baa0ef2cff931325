"""A dataflow run as a service: what ``feblam run`` and ``feblam gateway`` share around their flows.

- the recovery directory is locked (:class:`RecoveryLock`), so a second process
  on it exits at once instead of resuming the same offsets;
- every topic is checked before start (:func:`feblam.topics.require_topics`: a broker
  that does not answer within ``kafka.start_timeout_seconds``, a missing topic: one line);
- SIGTERM/SIGINT are taken on a thread of their own (:class:`Stopper`), also
  while Bytewax's Rust code forms a cluster;
- a fatal error in the flow is one structured event and a
  :class:`~feblam.errors.ServiceFailed` whose message is one line
  (:func:`failure_message`): exit status 1, for the supervisor to restart it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir

from feblam.config import Settings
from feblam.errors import FeblamError, OutputError, ServiceFailed
from feblam.logs import filter_native_stderr, flush_stderr, get_logger
from feblam.version import versions
from flows.pipeline import FlowStats

log = get_logger(__name__)
#: How long a stop may take while the cluster forms (no batch yet) before the process exits anyway.
STOP_GRACE_SECONDS = 5.0


#: How often a standby tries the recovery lock.
LOCK_POLL_SECONDS = 0.2


class Stopped(Exception):  # noqa: N818 - not an error: a standby told to stop before it took over
    """A standby was stopped while it waited for the recovery lock."""


class RecoveryLock:
    """An exclusive lock on the recovery directory (one per cluster process), held while the service runs."""

    def __init__(self, directory: Path, process_id: int | None) -> None:
        self.path = directory / (".lock" if process_id is None else f".lock.{process_id}")
        self._fh: IO[str] | None = None

    def acquire(
        self, wait: threading.Event | None = None, on_busy: Callable[[str], None] | None = None, name: str = "run"
    ) -> None:
        """Take the lock. Held by another process: one clear error; or, with ``wait`` (a standby), call
        ``on_busy`` with the holder and wait until the lock is free (:class:`Stopped` when ``wait`` is set first)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        busy = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not busy:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    if wait is None:
                        fh.close()
                        msg = (
                            f"{self.path.parent}: recovery directory is in use by {holder}; "
                            "two jobs on one recovery directory would resume the same offsets and duplicate hits"
                        )
                        raise FeblamError(msg) from None
                    busy = True
                    if on_busy is not None:
                        on_busy(holder)
                if wait is not None and wait.wait(LOCK_POLL_SECONDS):
                    fh.close()
                    raise Stopped from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"feblam {name} pid {os.getpid()} on {socket.gethostname()}\n")
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


class Stopper(threading.Thread):
    """Takes SIGTERM/SIGINT on a thread of its own (blocked everywhere else: the CLI blocks them before
    any library starts a thread).

    The main thread sits in Bytewax's Rust code, which runs no Python signal
    handler while a cluster forms; this thread still sees the signal, sets the
    service's stop event and, if the flow has not stopped ``STOP_GRACE_SECONDS``
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


def peer_answers(peer: str) -> bool:
    """Whether a cluster peer's ``host:port`` accepts a connection within a second."""
    host, _, port = peer.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def failure_message(exc: BaseException, peers: Sequence[str], me: int | None) -> str:
    """One line for a failed run: our own error from the exception chain, or what a lost peer means."""
    for cause in _chain(exc):
        if isinstance(cause, FeblamError):
            return str(cause)
    text = str(exc)
    if peers and ("Send thread" in text or "panic" in text.lower() or "connection" in text.lower()):
        gone = [p for i, p in enumerate(peers) if i != me and not peer_answers(p)]
        return (
            f"lost contact with cluster peer(s) {', '.join(gone) or '(unknown)'}: a process of the cluster stopped; "
            "restart every process (they resume from the recovery store)"
        )
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


@contextlib.contextmanager
def service(
    settings: Settings,
    stats: FlowStats,
    stop: threading.Event | None,
    *,
    started: str,
    lock_id: int | None = None,
    standby: Callable[[str], None] | None = None,
    command: str = "run",
    **fields: Any,
) -> Iterator[threading.Event]:
    """Lock the recovery directory, log ``started`` with the versions and the redacted settings, take the
    signals; yields the service's stop event, and releases the lock however the service ends.

    ``lock_id``: a cluster process's index (each process of a cluster locks its own file). ``standby``: when
    another process holds the lock, it is called with the holder and the service waits for the lock as a
    standby (:class:`Stopped` when stopped first) instead of exiting. ``command``: how the lock file names
    its holder (``feblam run``, ``feblam gateway``)."""
    lock = RecoveryLock(Path(settings.recovery.dir), lock_id) if settings.recovery.dir else None
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        Stopper(stop, stats).start()
    if lock is not None:
        lock.acquire(stop if standby is not None else None, standby, name=command)
    try:
        log.info(started, versions=versions(), settings=settings.redacted(), **fields)
        yield stop
    finally:
        if lock is not None:
            lock.release()


def run_dataflow(
    flow: Dataflow,
    settings: Settings,
    *,
    failed: str,
    workers: int = 1,
    process_id: int | None = None,
    peers: Sequence[str] = (),
) -> None:
    """Run ``flow`` with the recovery store until it stops; a failure is the event ``failed`` and a
    :class:`~feblam.errors.ServiceFailed` with one line."""
    from bytewax.run import cli_main

    os.environ["RUST_BACKTRACE"] = "0"  # a failure is reported below, in one line
    filter_native_stderr()
    try:
        cli_main(
            flow,
            workers_per_process=workers,
            process_id=process_id if peers else None,
            addresses=list(peers) or None,
            epoch_interval=timedelta(seconds=settings.recovery.snapshot_seconds),
            recovery_config=recovery_config(settings, workers * max(1, len(peers))),
        )
    except BaseException as exc:  # a Rust panic (a lost peer) is a BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        message = failure_message(exc, peers, process_id)
        log.error(failed, error=message, error_type=type(exc).__name__)
        if _caused_by(exc, OutputError):  # a person must free the disk or fix the folder: no restart loop
            raise OutputError(message) from None
        raise ServiceFailed(message) from None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it, outermost first (each once)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__ or cause.__context__


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(c, kind) for c in _chain(exc))
