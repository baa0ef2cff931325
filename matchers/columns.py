"""Compact per-entry columns of an index version: each one as narrow as its values allow, exactly.

At national scale every byte an entry is 10 MB a version, in every process that
maps it. Most per-entry columns hold few distinct values: a handful of lists,
owners, categories and countries; validity times that are absent from most lists
or a few thousand dates; notes that are mostly empty. Here each is stored in the
least room that gives back the same value for every row:

* small codes (:func:`narrow`): the smallest integer type that holds them;
* times (:class:`Times`): one value for all rows, or a dictionary of the distinct
  values with 1-, 2- or 4-byte codes, or the 8-byte values themselves when a
  sample shows they are mostly distinct (a dictionary would not be smaller, and
  hashing 10M distinct values costs seconds);
* text (:func:`compact_text`): a column of nulls takes no room, a column of few
  distinct strings is dictionary-encoded with 1- or 2-byte indices, any other
  stays as it is.

All three read back with ``column[row]`` (``Times.at``), so the probe does not
care which form a column took.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

#: Rows sampled to decide whether a column is worth a dictionary.
SAMPLE = 65_536
#: A sample with more distinct values than this share of its rows keeps the plain values.
MOSTLY_DISTINCT = 0.25


def narrow(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``values`` (integers) in the smallest signed integer type that holds all of them."""
    if values.shape[0] == 0:
        return values.astype(np.int8)
    lo, hi = int(values.min()), int(values.max())
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return values.astype(dtype)
    return values.astype(np.int64)


def _code_type(distinct: int) -> type[np.unsignedinteger[Any]]:
    if distinct <= 1 << 8:
        return np.uint8
    if distinct <= 1 << 16:
        return np.uint16
    return np.uint32


def _mostly_distinct(values: npt.NDArray[Any] | pa.Array) -> bool:
    """Whether an evenly spread sample of ``values`` is mostly distinct (then a dictionary saves little)."""
    n = len(values)
    if n <= SAMPLE:
        return False  # small: the dictionary is cheap to try whatever it holds
    step = n // SAMPLE
    if isinstance(values, np.ndarray):
        sample = values[::step]
        return int(np.unique(sample).shape[0]) > MOSTLY_DISTINCT * sample.shape[0]
    sample_arr = pc.take(values, pa.array(np.arange(0, n, step)))
    return len(pc.unique(sample_arr)) > MOSTLY_DISTINCT * len(sample_arr)


class Times:
    """A per-entry column of 64-bit times (microseconds), coded: ``values[codes[row]]``; without codes, one value
    for every row (``values`` of length 1) or the plain values (``values`` of the column's length)."""

    __slots__ = ("codes", "n", "values")

    def __init__(self, values: npt.NDArray[np.int64], codes: npt.NDArray[Any] | None, n: int) -> None:
        self.values = values
        self.codes = codes
        self.n = n

    @classmethod
    def of(cls, col: npt.NDArray[np.int64]) -> Times:
        n = int(col.shape[0])
        if n == 0:
            return cls(np.zeros(0, dtype=np.int64), None, 0)
        first = col[0]
        if (col == first).all():  # no validity in any list, the usual case: nothing a row
            return cls(np.array([first], dtype=np.int64), None, n)
        if _mostly_distinct(col):
            return cls(col, None, n)
        enc = pc.dictionary_encode(pa.array(col))
        values = enc.dictionary.to_numpy(zero_copy_only=False).astype(np.int64)
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(_code_type(values.shape[0]))
        return cls(values, codes, n)

    @property
    def kind(self) -> str:
        """ "one", "coded" or "plain": the form the column took (stats, tests)."""
        if self.codes is not None:
            return "coded"
        return "one" if self.values.shape[0] == 1 and self.n != 1 else "plain"

    def at(self, row: int) -> int:
        if self.codes is not None:
            return int(self.values[self.codes[row]])
        return int(self.values[row if self.values.shape[0] == self.n else 0])

    def full(self) -> npt.NDArray[np.int64]:
        """Every row's value (a new array of 8 bytes a row: for diffs of whole versions, not the probe)."""
        if self.codes is not None:
            return self.values[self.codes]
        if self.values.shape[0] == self.n:
            return np.asarray(self.values)
        return np.full(self.n, self.values[0] if self.n else 0, dtype=np.int64)

    def take(self, rows: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        """The values of ``rows``."""
        if self.codes is not None:
            return self.values[self.codes[rows]]
        if self.values.shape[0] == self.n:
            return np.asarray(self.values[rows])
        return np.full(len(rows), self.values[0], dtype=np.int64)

    def __len__(self) -> int:
        return self.n

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes + (0 if self.codes is None else self.codes.nbytes))


def compact_text(col: pa.Array) -> pa.Array:
    """A string column in the least room that reads back the same: nulls only -> a null column (no bytes);
    few distinct values -> dictionary-encoded with 1- or 2-byte indices; else ``col`` itself."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    if n and col.null_count == n:
        return pa.nulls(n)
    if pa.types.is_dictionary(col.type) or _mostly_distinct(col):
        return col
    enc = pc.dictionary_encode(col)
    distinct = len(enc.dictionary)
    if distinct > 1 << 15:
        return col
    index_type = pa.int8() if distinct <= 1 << 7 else pa.int16()
    compact = pa.DictionaryArray.from_arrays(enc.indices.cast(index_type), enc.dictionary)
    return compact if compact.nbytes < col.nbytes else col


def plain_text(col: pa.Array) -> pa.Array:
    """A column of :func:`compact_text` back as plain strings (for joins and tables of whole versions)."""
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), pa.string())
    if pa.types.is_dictionary(col.type):
        return col.dictionary_decode()
    return col
