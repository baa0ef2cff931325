"""structlog set-up and the keyed plate reference used wherever a plate would be logged."""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import sys
import threading
import time

import structlog

_state = {"key": b"feblam-development-key-change-me"}


def set_hash_key(key: str) -> None:
    """The key of :func:`plate_ref` (``privacy.hash_key``)."""
    _state["key"] = key.encode()


def plate_ref(plate_key: str, key: str | None = None) -> str:
    """A keyed hash of a plate key: stable within a deployment, not reversible without the key (``key``: another
    deployment's ``privacy.hash_key`` instead of this process's)."""
    secret = key.encode() if key is not None else _state["key"]
    return hashlib.blake2b(plate_key.encode(), key=secret[:64], digest_size=8).hexdigest()


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing (it may be replaced after set-up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", fmt: str = "auto") -> None:
    """JSON lines in production, coloured console in a terminal (``fmt="auto"``)."""
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger named for its module."""
    return structlog.get_logger(name)  # type: ignore[no-any-return]


class RateLimitedKafkaLog(logging.Handler):
    """librdkafka's messages as structured ``librdkafka`` events, at most one per kind every ``every`` seconds.

    A kind is the facility and the first words of the message with digits removed
    (``FAIL Connect to ipv4#127.0.0.1:1 failed``); the next event of a kind says
    how many were suppressed since. A broker cut that makes librdkafka write
    thousands of lines gives a handful of events.
    """

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._log = get_logger("librdkafka")

    @staticmethod
    def kind(record: logging.LogRecord) -> str:
        text = record.getMessage()
        fac = getattr(record, "fac", None) or text.split(" ", 1)[0]
        words = re.sub(r"[\d.:#]+", "", text).split()[:6]
        return f"{fac} {' '.join(words)}"

    def emit(self, record: logging.LogRecord) -> None:
        kind = self.kind(record)
        now = time.monotonic()
        with self._lock:
            last, suppressed = self._last.get(kind, (-1e9, 0))
            if now - last < self.every:
                self._last[kind] = (last, suppressed + 1)
                return
            self._last[kind] = (now, 0)
        level = (
            "error" if record.levelno >= logging.ERROR else "warning" if record.levelno >= logging.WARNING else "info"
        )
        getattr(self._log, level)("librdkafka", message=record.getMessage(), suppressed_before=suppressed)


_kafka_logger: dict[str, logging.Logger] = {}


def kafka_logger() -> logging.Logger:
    """The logger given to every Kafka client (confluent-kafka's ``logger`` setting)."""
    if "logger" not in _kafka_logger:
        logger = logging.getLogger("feblam.librdkafka")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(RateLimitedKafkaLog())
        _kafka_logger["logger"] = logger
    return _kafka_logger["logger"]


class _NativeStderr:
    """Lines written to file descriptor 2 pass through here; Rust panic reports of Bytewax are dropped.

    A failure inside the dataflow reaches ``feblam run`` as an exception, which it
    reports as one ``job_failed`` event and one line; Bytewax's Rust runtime also
    prints ``thread '…' panicked at …`` to the descriptor directly. Those lines
    (up to the ``note: run with RUST_BACKTRACE`` line) are left out; every other
    line is passed on unchanged.
    """

    def __init__(self) -> None:
        self.saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self.reader = threading.Thread(target=self._pump, args=(read_end,), name="stderr-filter", daemon=True)
        self.reader.start()

    def _pump(self, fd: int) -> None:
        skipping = False
        with os.fdopen(fd, "rb") as src:
            for line in src:
                if b"panicked at " in line and line.startswith(b"thread '"):
                    skipping = True
                    continue
                if skipping:
                    if line.startswith((b"{", b"feblam:")):
                        skipping = False
                    else:
                        if line.startswith(b"note: run with `RUST_BACKTRACE"):
                            skipping = False
                        continue
                os.write(self.saved, line)

    def restore(self) -> None:
        """Back to the real descriptor; waits until what was written before is passed on."""
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        self.reader.join(timeout=2.0)


_native: dict[str, _NativeStderr] = {}


def filter_native_stderr() -> None:
    """Route file descriptor 2 through :class:`_NativeStderr` until :func:`flush_stderr` (or exit)."""
    if "filter" not in _native:
        _native["filter"] = _NativeStderr()
        atexit.register(flush_stderr)


def flush_stderr() -> None:
    """Pass on every line written so far and stop filtering (call before ``os._exit``)."""
    f = _native.pop("filter", None)
    if f is not None:
        f.restore()
