"""The one error hierarchy of FEBLAM, and the exit status of each command error.

Every leaf is also a builtin exception, so callers may catch either
(``except DecodeError`` or ``except ValueError``). A command that ends on a
:class:`FeblamError` prints its message as one line and exits with its
:attr:`~FeblamError.exit_status`: 2 for what an operator must fix before a start
(a bad flag, key, file, topic or port: a supervisor's restart would fail the
same way), 1 for a service that stopped on an error while running
(:class:`ServiceFailed`: the supervisor restarts it).
"""

from __future__ import annotations

#: The exit status of a command whose input or set-up is wrong.
EXIT_USAGE = 2
#: The exit status of a service that stopped on an error while running.
EXIT_FAILED = 1


class FeblamError(Exception):
    """Root of every error FEBLAM raises on purpose."""

    exit_status = EXIT_USAGE


class DecodeError(FeblamError, ValueError):
    """A payload could not be decoded into a valid read (goes to the dead-letter output)."""


class Skipped(DecodeError):
    """A payload that is an event its vendor's mapping skips (an Axis ``lost``, an ISAPI ``inactive``): not a
    read, and not a dead letter either; counted (``feblam_reads_skipped_total``)."""


class SnapshotError(FeblamError, ValueError):
    """A hotlist snapshot failed validation; the message names file, row and column."""


class ConfigError(FeblamError, ValueError):
    """The configuration file or an environment override is invalid."""


class IndexFormatError(FeblamError, ValueError):
    """A built index directory is missing, incomplete or from another format version."""


class OutputError(FeblamError, OSError):
    """A file output cannot be written (a folder not writable, a full disk): a person must act, so the
    status is 2 (a supervisor's restart would fail the same way; the units do not restart on it)."""


class ServiceFailed(FeblamError, RuntimeError):
    """A running dataflow (``feblam run``, ``feblam gateway``) stopped on an error; the supervisor restarts it."""

    exit_status = EXIT_FAILED
