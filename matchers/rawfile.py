"""A snapshot file as read, before it is mapped and validated: an Arrow table of its columns and where each
row came from, so that every message names the file, row, line and column."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from feblam.errors import SnapshotError


class RawFile:
    """A snapshot file as an Arrow table of its columns, with row -> line mapping.

    ``source`` names, for each of our columns that a mapping renamed, the
    source's column: messages name the column as the file has it.
    """

    def __init__(self, path: Path, table: pa.Table, line_of: Callable[[int], int | None]) -> None:
        self.path = path
        self.table = table
        self.line_of = line_of
        self.source: dict[str, str] = {}

    def column_name(self, column: str) -> str:
        theirs = self.source.get(column)
        return repr(column) if theirs is None else f"{theirs!r} ({column})"

    def where(self, row: int, column: str | None = None) -> str:
        line = self.line_of(row)
        text = f"{self.path}: row {row + 1}"
        if line is not None:
            text += f" (line {line})"
        if column is not None:
            text += f": column {self.column_name(column)}"
        return text


def first_true(flags: pa.Array | pa.ChunkedArray, within: pa.Array | None = None) -> int | None:
    """The first row where ``flags`` is true, counting only rows that are also in ``within``."""
    if within is not None:
        flags = pc.and_(flags, within)
    idx = pc.index(flags, True).as_py()
    return None if idx is None or idx < 0 else int(idx)


def as_string(raw: RawFile, name: str) -> pa.Array:
    col = raw.table.column(name).combine_chunks()
    if pa.types.is_string(col.type):
        return col
    if pa.types.is_large_string(col.type) or pa.types.is_dictionary(col.type):
        return pc.cast(col, pa.string())
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        return pc.cast(col, pa.string())
    msg = f"{raw.path}: column {name!r}: type {col.type} is not text"
    raise SnapshotError(msg)
