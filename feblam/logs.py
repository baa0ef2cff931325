"""structlog set-up and the keyed plate reference used wherever a plate would be logged."""

from __future__ import annotations

import hashlib
import logging
import sys

import structlog

_state = {"key": b"feblam-development-key-change-me"}


def set_hash_key(key: str) -> None:
    _state["key"] = key.encode()


def plate_ref(plate_key: str) -> str:
    """A keyed hash of a plate key: stable within a deployment, not reversible without the key."""
    return hashlib.blake2b(plate_key.encode(), key=_state["key"][:64], digest_size=8).hexdigest()


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
    return structlog.get_logger(name)  # type: ignore[no-any-return]
