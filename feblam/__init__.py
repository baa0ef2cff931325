"""What every part of FEBLAM shares: model types, errors, configuration, metrics, logging, the CLI.

The names below are the package's public API, imported lazily (importing the
package costs nothing; each name loads its module on first use).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "Read": "feblam.model",
    "Hit": "feblam.model",
    "Match": "feblam.model",
    "HotlistEntry": "feblam.model",
    "DeadLetter": "feblam.model",
    "PayloadBatch": "feblam.model",
    "match_order": "feblam.model",
    "ACTIONS": "feblam.model",
    "VENDOR_NAMES": "feblam.model",
    "EPOCH": "feblam.model",
    "FeblamError": "feblam.errors",
    "DecodeError": "feblam.errors",
    "SnapshotError": "feblam.errors",
    "ConfigError": "feblam.errors",
    "IndexFormatError": "feblam.errors",
    "Settings": "feblam.config",
    "load_settings": "feblam.config",
    "check_config": "feblam.config",
    "replace": "feblam.config",
    "configure": "feblam.logs",
    "get_logger": "feblam.logs",
    "plate_ref": "feblam.logs",
    "main": "feblam.cli",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(import_module(_WHERE[name]), name)
