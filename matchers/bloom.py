"""The shards' Bloom filters: the per-read pre-check of a probe (the batch filter is :mod:`matchers.wordfilter`).

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
