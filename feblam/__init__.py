"""What every part of FEBLAM shares: model types, errors, configuration, metrics, logging, the CLI."""

from __future__ import annotations

from feblam.lazy import lazy_api

__all__, __getattr__ = lazy_api(
    __name__,
    {
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
    },
)
