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

from collections.abc import Callable
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


# ---------------------------------------------------------------- plates

_UPPER, _LOWER = ord("#"), ord("~")  # a letter or digit of the key in a plate's shape ('~': lower case)


def _classes(d: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Which bytes are upper-case letters or digits, and which lower-case letters (comparisons on the bytes,
    which numpy runs in SIMD; a table lookup would first widen every byte to an 8-byte index)."""
    upper_or_digit = ((d >= 48) & (d <= 57)) | ((d >= 65) & (d <= 90))
    lower = (d >= 97) & (d <= 122)
    return upper_or_digit, lower


_BLOCK = 1 << 20  # rows a block of the running count


def plate_shapes(
    plates: pa.Array, key_lengths: npt.NDArray[Any], literal: npt.NDArray[np.bool_]
) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """Each plate's shape (``1-abc-123`` -> ``#-~~~-###``) and which plates are kept as written instead.

    A shape with the plate's key gives the plate back (:meth:`Plates.at`) when the plate is ASCII, holds
    neither shape mark, and has as many letters and digits as its key has characters (the key is the
    plate's letters and digits in upper case: :func:`matchers.normalize.plate_key`). Any other plate, and
    the rows ``literal`` (patterns, keys too long to pack), is literal: its "shape" is the plate itself.
    Column operations a block of rows at a time, on the Arrow buffers: no Python step a plate.
    """
    n = len(plates)
    if isinstance(plates, pa.ChunkedArray):
        plates = plates.combine_chunks()
    if plates.offset or plates.null_count:
        plates = pa.concat_arrays([pc.fill_null(plates, "")])  # offset 0, no nulls (a null plate: literal)
    offsets_buf, data_buf = plates.buffers()[1], plates.buffers()[2]
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    data = data[: int(offsets[-1])]
    lengths = np.diff(offsets)
    upper_or_digit, lower = _classes(data)
    out = np.where(upper_or_digit, np.uint8(_UPPER), np.where(lower, np.uint8(_LOWER), data))
    literal = literal | (lengths == 0)
    odd = (data >= 128) | (data == _UPPER) | (data == _LOWER)  # not ASCII, or a shape's own mark
    if odd.any():  # rare: the rows holding such a byte
        literal[np.searchsorted(offsets, np.flatnonzero(odd), side="right") - 1] = True
    key_byte = upper_or_digit | lower
    del odd, upper_or_digit, lower
    for a in range(0, n, _BLOCK):  # letters and digits a row, from a running count (a block's: bounded memory)
        b = min(n, a + _BLOCK)
        lo = int(offsets[a])
        counted = np.zeros(int(offsets[b]) - lo + 1, dtype=np.int32)
        np.cumsum(key_byte[lo : int(offsets[b])], out=counted[1:])
        slots = counted[offsets[a + 1 : b + 1] - lo] - counted[offsets[a:b] - lo]
        literal[a:b] |= slots != key_lengths[a:b]
    if literal.any():
        out = np.where(np.repeat(literal, lengths), data, out)
    shapes = pa.StringArray.from_buffers(n, offsets_buf, pa.py_buffer(out))
    return shapes, literal


class Plates:
    """The entries' plates as written, kept as a shape a row (a code into the few shapes a list has) and the
    key the index keeps anyway: ``1-ABC-123`` is shape ``#-###-###`` with key ``1ABC123``. Literal plates
    (:func:`plate_shapes`) are kept whole, beside (``literal_rows`` sorted, ``literal_plates``)."""

    __slots__ = ("codes", "literal_plates", "literal_rows", "shapes")

    def __init__(
        self,
        shapes: list[str],
        codes: npt.NDArray[Any],
        literal_rows: npt.NDArray[np.int64],
        literal_plates: pa.Array,
    ) -> None:
        self.shapes = shapes
        self.codes = codes  # len(shapes): the row's plate is literal
        self.literal_rows = literal_rows
        self.literal_plates = literal_plates

    @classmethod
    def of(cls, plates: pa.Array, key_lengths: npt.NDArray[Any], literal: npt.NDArray[np.bool_]) -> Plates:
        shapes, lit = plate_shapes(plates, key_lengths, literal)
        rows = np.flatnonzero(lit)
        enc = pc.dictionary_encode(pc.if_else(pa.array(lit), "", shapes) if rows.shape[0] else shapes)
        names = enc.dictionary.to_pylist()
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(_code_type(len(names) + 1))
        codes[rows] = len(names)
        if isinstance(plates, pa.ChunkedArray):
            plates = plates.combine_chunks()
        return cls(names, codes, rows.astype(np.int64), pc.take(plates, pa.array(rows)))

    def at(self, row: int, key: Callable[[int], str]) -> str:
        """The plate of ``row`` as written; ``key`` gives a row's key (not called for a literal plate)."""
        code = int(self.codes[row])
        if code == len(self.shapes):
            i = int(np.searchsorted(self.literal_rows, row))
            return str(self.literal_plates[i].as_py())
        chars = iter(key(row))
        out = []
        for ch in self.shapes[code]:
            if ch == "#":
                out.append(next(chars))
            elif ch == "~":
                out.append(next(chars).lower())
            else:
                out.append(ch)
        return "".join(out)

    def identity(self) -> pa.Array:
        """Each row's shape, a literal plate in its place: with the key, what tells two plates apart (diffs of
        whole versions)."""
        names = pa.array([*self.shapes, None], pa.string())
        out = pc.take(names, pa.array(self.codes.astype(np.int64)))
        if self.literal_rows.shape[0]:
            mask = np.zeros(len(self.codes), dtype=bool)
            mask[self.literal_rows] = True
            out = pc.replace_with_mask(out, pa.array(mask), self.literal_plates)
        return out

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.literal_rows.nbytes + self.literal_plates.nbytes) + sum(
            len(s) + 8 for s in self.shapes
        )
