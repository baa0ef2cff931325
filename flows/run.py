"""``feblam run``: the long-running job (Kafka in, gateway sinks out), single or cluster."""

from __future__ import annotations

import gc
import signal
import threading
from datetime import timedelta
from pathlib import Path
from types import FrameType

from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main

from feblam.config import Settings
from feblam.logs import get_logger
from flows.pipeline import FlowStats, build_flow
from matchers.index import IndexHolder
from matchers.refresh import HotlistWatcher, default_builder
from sources.kafka import KafkaReadSource

log = get_logger(__name__)


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


def install_stop_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_job(
    settings: Settings, *, workers: int = 1, process_id: int | None = None, addresses: str | None = None,
    stop: threading.Event | None = None, stats: FlowStats | None = None,
) -> int:
    log.info("starting", settings=settings.redacted(), workers=workers, process_id=process_id)
    holder = IndexHolder(default_builder(settings.hotlists)(settings.hotlists, None))
    watcher = HotlistWatcher(settings.hotlists, holder)
    watcher.start()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        install_stop_handlers(stop)
    gc.collect()
    gc.freeze()  # start-up objects (index metadata, modules) are never garbage: keep full collections short
    addr_list = [a for a in (addresses or "").split(";") if a]
    processes = max(1, len(addr_list))
    flow = build_flow(
        settings, KafkaReadSource(settings.kafka, settings.sources, stop), holder=holder, stats=stats or FlowStats(),
    )
    try:
        cli_main(
            flow,
            workers_per_process=workers,
            process_id=process_id if addr_list else None,
            addresses=addr_list or None,
            epoch_interval=timedelta(seconds=settings.recovery.snapshot_seconds),
            recovery_config=recovery_config(settings, workers * processes),
        )
    finally:
        watcher.stop()
    log.info("stopped")
    return 0
