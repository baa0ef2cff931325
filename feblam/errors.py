"""The one error hierarchy of FEBLAM.

Every leaf is also a builtin exception, so callers may catch either
(``except DecodeError`` or ``except ValueError``).
"""

from __future__ import annotations


class FeblamError(Exception):
    """Root of every error FEBLAM raises on purpose."""


class DecodeError(FeblamError, ValueError):
    """A payload could not be decoded into a valid read (goes to the dead-letter output)."""


class SnapshotError(FeblamError, ValueError):
    """A hotlist snapshot failed validation; the message names file, row and column."""


class ConfigError(FeblamError, ValueError):
    """The configuration file or an environment override is invalid."""


class IndexFormatError(FeblamError, ValueError):
    """A built index directory is missing, incomplete or from another format version."""
