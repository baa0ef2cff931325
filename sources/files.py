"""File input for replay: one line is one payload.

All inputs are read by one partition, in the order given and line by line, so
a replay is deterministic (duplicate suppression depends on order). The resume
state is (input number, line number), so a replay with a recovery directory
continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from feblam.errors import FeblamError
from feblam.model import PayloadBatch


class InputFileError(FeblamError, FileNotFoundError):
    """An input file is missing or unreadable."""


class _FilesPartition(StatefulSourcePartition[PayloadBatch, tuple[int, int]]):
    def __init__(self, inputs: Sequence[tuple[str, Path]], batch_size: int, resume: tuple[int, int] | None) -> None:
        self._inputs = list(inputs)
        self._batch_size = batch_size
        self._file_no, self._line_no = resume or (0, 0)
        self._fh: BinaryIO | None = None
        self._open()

    def _open(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._file_no < len(self._inputs):
            self._fh = self._inputs[self._file_no][1].open("rb")
            for _ in range(self._line_no):
                self._fh.readline()

    def next_batch(self) -> list[PayloadBatch]:
        """Up to ``batch_size`` lines of the current file as one batch (a batch never spans two files)."""
        while self._fh is not None:
            payloads: list[bytes] = []
            lines: list[int] = []
            while len(payloads) < self._batch_size:
                line = self._fh.readline()
                if not line:
                    break
                self._line_no += 1
                payload = line.rstrip(b"\r\n")
                if payload.strip():  # blank lines carry no read
                    payloads.append(payload)
                    lines.append(self._line_no)
            vendor, path = self._inputs[self._file_no]
            if len(payloads) < self._batch_size:  # the file is done
                self._file_no += 1
                self._line_no = 0
                self._open()
            if payloads:
                return [PayloadBatch(vendor, str(path), None, payloads, lines, by_line=True)]
        raise StopIteration

    def snapshot(self) -> tuple[int, int]:
        return (self._file_no, self._line_no)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class FilesSource(FixedPartitionedSource[PayloadBatch, tuple[int, int]]):
    """Reads ``(vendor, path)`` inputs one after the other."""

    def __init__(self, inputs: Sequence[tuple[str, str | Path]], batch_size: int = 2000) -> None:
        self.inputs = [(vendor, Path(path)) for vendor, path in inputs]
        for _vendor, path in self.inputs:
            if not path.is_file():
                msg = f"{path}: input file not found"
                raise InputFileError(msg)
        self.batch_size = batch_size

    def list_parts(self) -> list[str]:
        return ["files"]

    def build_part(self, step_id: str, for_part: str, resume_state: tuple[int, int] | None) -> _FilesPartition:
        return _FilesPartition(self.inputs, self.batch_size, resume_state)
