"""Plate keys as 64-bit integers, so the index can hold them in flat numpy arrays.

A key of at most :data:`PACKED_MAX_LEN` characters (every real plate) is packed
exactly: ``int("1" + key, 36)``; the leading ``1`` keeps lengths apart, so the
packing is injective and collision free. Longer keys get a 62-bit BLAKE2b hash
with bit 62 set, a range disjoint from packed codes; the index confirms those by
comparing the key strings.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from matchers.normalize import OCR_FROM, OCR_TO

PACKED_MAX_LEN = 11
_LONG_FLAG = 1 << 62
_LONG_MASK = _LONG_FLAG - 1


def key_code(key: str) -> int:
    """64-bit code of a plate key (or fuzzy key); exact for keys up to 11 characters."""
    if len(key) <= PACKED_MAX_LEN:
        return int("1" + key, 36)
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") & _LONG_MASK) | _LONG_FLAG


def is_exact_code(code: int) -> bool:
    """True when the code packs the key itself (not a hash of a long key)."""
    return code < _LONG_FLAG


_DIGIT = np.full(256, 255, dtype=np.uint8)
for _i, _ch in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
    _DIGIT[ord(_ch)] = _i


_DIGIT_PAD = _DIGIT.copy()
_DIGIT_PAD[ord(" ")] = 0
_POW36 = np.array([36**i for i in range(PACKED_MAX_LEN + 1)], dtype=np.int64)

_FUZZY_LUT = np.arange(256, dtype=np.uint8)
for _src, _dst in zip(OCR_FROM, OCR_TO, strict=True):
    _FUZZY_LUT[ord(_src)] = ord(_dst)


def key_and_fuzzy_codes(keys: object) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Codes of the keys and of their fuzzy keys in one pass over the characters.

    Only keys longer than :data:`PACKED_MAX_LEN` (rare) are handled one by one in Python.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from matchers.normalize import fuzzy_key

    arr = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    if not isinstance(arr, pa.Array):
        msg = f"expected an Arrow string array, got {type(keys).__name__}"
        raise TypeError(msg)
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    arr = pc.fill_null(arr, "")
    lengths = pc.utf8_length(arr).to_numpy(zero_copy_only=False).astype(np.int64)
    too_long = lengths > PACKED_MAX_LEN
    short = pc.if_else(pa.array(too_long), "", arr) if too_long.any() else arr
    padded_text = pc.ascii_rpad(short, width=PACKED_MAX_LEN, padding=" ")
    offsets = np.frombuffer(padded_text.buffers()[1], dtype=np.int32, count=n + 1, offset=padded_text.offset * 4)
    mat = np.frombuffer(padded_text.buffers()[2], dtype=np.uint8, count=n * PACKED_MAX_LEN, offset=int(offsets[0]))
    mat_t = np.ascontiguousarray(mat.reshape(n, PACKED_MAX_LEN).T)  # one row per character position
    lengths_c = np.minimum(lengths, PACKED_MAX_LEN)
    divisor = _POW36[PACKED_MAX_LEN - lengths_c]
    marker = _POW36[lengths_c]

    def pack(lut: npt.NDArray[np.uint8] | None) -> npt.NDArray[np.int64]:
        # Horner over the padded width (padding is digit 0), then drop the padding
        # and add the length marker: code = 36**len + value(key).
        acc = np.zeros(n, dtype=np.int64)
        for col in range(PACKED_MAX_LEN):
            row = mat_t[col] if lut is None else lut[mat_t[col]]
            acc *= 36
            acc += _DIGIT_PAD[row]
        return acc // divisor + marker

    plain = pack(None)
    fuzzy_codes = pack(_FUZZY_LUT)
    for row in np.nonzero(too_long)[0]:
        key = arr[int(row)].as_py()
        plain[row] = key_code(key)
        fuzzy_codes[row] = key_code(fuzzy_key(key))
    return plain, fuzzy_codes


def decode_code(code: int) -> str | None:
    """The key a packed code stands for (None for a hashed long key)."""
    if not is_exact_code(code):
        return None
    return np.base_repr(code, 36)[1:]
