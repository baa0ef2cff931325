"""Bloom filter back-ends for the index pre-check.

``rbloom`` (Rust, ~60 ns a probe) is the default; ``pybloom-live`` (pure
Python, ~1.3 us a probe) is kept so the benchmark can compare them. Both hold
the 64-bit key codes of :mod:`matchers.keycode`. rbloom filters hash a code
with ``int`` (the code is its own hash) rather than the built-in ``hash``:
rbloom only saves and loads filters with an explicit hash function, and the
builder process saves them so a job loads a version's filters instead of
rebuilding them (about 30 ns more a probe, measured).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt
import rbloom

BACKENDS = ("rbloom", "pybloom")
#: rbloom's hash function for codes: the same in every process, so filters can be saved.
CODE_HASH = int


class BloomFilter(Protocol):
    """What the index needs of a Bloom filter (rbloom or pybloom-live)."""

    def __contains__(self, item: object) -> bool: ...


def build_bloom(codes: npt.NDArray[np.int64], fp_rate: float, backend: str = "rbloom") -> BloomFilter:
    """A filter holding ``codes`` with the given false-positive rate."""
    capacity = max(int(codes.shape[0]), 1)
    if backend == "rbloom":
        bf = new_rbloom(capacity, fp_rate)
        bf.update(codes.tolist())
        return bf
    if backend == "pybloom":
        from pybloom_live import BloomFilter as PyBloom

        pbf = PyBloom(capacity=capacity + 1, error_rate=fp_rate)
        for code in codes.tolist():
            pbf.add(code)
        return pbf  # type: ignore[no-any-return]
    msg = f"unknown Bloom backend {backend!r} (one of {', '.join(BACKENDS)})"
    raise ValueError(msg)


def new_rbloom(capacity: int, fp_rate: float) -> rbloom.Bloom:
    """An empty rbloom filter of integer codes."""
    return rbloom.Bloom(max(capacity, 1), fp_rate, CODE_HASH)


def load_rbloom(data: bytes) -> rbloom.Bloom:
    """A filter saved with ``save_bytes`` (by the builder process)."""
    return rbloom.Bloom.load_bytes(data, CODE_HASH)


def bloom_bytes(bf: object) -> int:
    """Size of a filter's bit array in bytes."""
    if isinstance(bf, rbloom.Bloom):
        return int(bf.size_in_bits // 8)
    bits = getattr(bf, "num_bits", 0)
    return int(bits // 8)


# ---------------------------------------------------------------- the batch filter

#: Bits set per code, all in one 64-bit word (a register-blocked Bloom filter: one memory access a probe).
WORD_BITS_PER_CODE = 5
_MUL_WORD = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the word
_MUL_BITS = np.uint64(0xC2B2AE3D27D4EB4F)  # another odd constant: the bits within the word


def word_filter_size(n: int) -> int:
    """Words of the filter for ``n`` codes: a power of two, 24 to 48 bits a code (about 0.1 % false positives)."""
    words = 1
    while words * 64 < max(n, 1) * 24:
        words *= 2
    return words


def _word_and_mask(codes: npt.NDArray[np.int64], words: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    shift = np.uint64(64 - max(words.bit_length() - 1, 0)) if words > 1 else np.uint64(63)
    c = codes.astype(np.uint64, copy=False)
    with np.errstate(over="ignore"):
        where = ((c * _MUL_WORD) >> shift).astype(np.int64) if words > 1 else np.zeros(c.shape[0], dtype=np.int64)
        h = c * _MUL_BITS
    mask = np.zeros(c.shape[0], dtype=np.uint64)
    one = np.uint64(1)
    for i in range(WORD_BITS_PER_CODE):
        mask |= one << ((h >> np.uint64(58 - 6 * i)) & np.uint64(63))
    return where, mask


def build_word_filter(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """The batch filter of ``codes``: :func:`word_filter_has` answers for a whole batch of codes at once."""
    words = word_filter_size(int(codes.shape[0]))
    table = np.zeros(words, dtype=np.uint64)
    if codes.shape[0]:
        where, mask = _word_and_mask(codes, words)
        np.bitwise_or.at(table, where, mask)
    return table


def word_filter_has(table: npt.NDArray[np.uint64], codes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """For each code: False when it is certainly not in the filter (no false negative; about 0.1 % false positives)."""
    where, mask = _word_and_mask(codes, int(table.shape[0]))
    return (table[where] & mask) == mask
