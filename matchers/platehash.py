"""A keyed hash of plate keys for a whole batch at once: SipHash-2-4 over numpy arrays.

State that outlives a read (the clone check's window, :mod:`flows.clones`) is
keyed by this hash, never by the plate. SipHash is a pseudo-random function
keyed by 128 secret bits (Aumasson and Bernstein, 2012): without the key, the
hash of a plate tells nothing of the plate, and one plate's hash does not give
another's. The key is derived from ``privacy.hash_key``, so every process of a
deployment gives a plate the same hash (a cluster routes the state by it).

A plate key of up to :data:`~matchers.keycode.PACKED_MAX_LEN` characters is one
64-bit code (:func:`matchers.batch.exact_codes`), hashed as one 8-byte block in
about twenty numpy operations over the batch; a longer or non-ASCII key (rare)
is hashed by keyed BLAKE2b on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from matchers.batch import exact_codes
from matchers.normalize import MAX_KEY_LENGTH, plate_key

_C = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)
_LAST_BLOCK = np.uint64(8 << 56)  # an 8-byte message: its length in the top byte of the last block
_FF = np.uint64(0xFF)


def hash_keys(hash_key: str) -> tuple[int, int, bytes]:
    """The SipHash key (two 64-bit halves) and the BLAKE2b key this deployment's ``privacy.hash_key`` gives."""
    derived = hashlib.blake2b(hash_key.encode(), digest_size=48, person=b"feblam-plates").digest()
    return int.from_bytes(derived[:8], "little"), int.from_bytes(derived[8:16], "little"), derived[16:]


_SHIFTS = {b: (np.uint64(b), np.uint64(64 - b)) for b in (13, 16, 17, 21, 32)}


def _rotl(x: npt.NDArray[np.uint64], b: int, tmp: npt.NDArray[np.uint64]) -> None:
    """``x`` rotated left by ``b`` bits, in place (``tmp``: scratch of x's shape)."""
    left, right = _SHIFTS[b]
    np.right_shift(x, right, out=tmp)
    np.left_shift(x, left, out=x)
    np.bitwise_or(x, tmp, out=x)


def _rounds(v: list[npt.NDArray[np.uint64]], n: int) -> None:
    v0, v1, v2, v3 = v
    tmp = np.empty_like(v0)
    for _ in range(n):
        v0 += v1
        _rotl(v1, 13, tmp)
        v1 ^= v0
        _rotl(v0, 32, tmp)
        v2 += v3
        _rotl(v3, 16, tmp)
        v3 ^= v2
        v0 += v3
        _rotl(v3, 21, tmp)
        v3 ^= v0
        v2 += v1
        _rotl(v1, 17, tmp)
        v1 ^= v2
        _rotl(v2, 32, tmp)


def siphash_u64(k0: int, k1: int, words: npt.NDArray[np.uint64] | npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """SipHash-2-4 of each 64-bit word taken as its 8 little-endian bytes (the reference's byte order)."""
    m = words.astype(np.uint64, copy=False)
    n = m.shape[0]
    v = [np.full(n, np.uint64(k ^ c)) for k, c in zip((k0, k1, k0, k1), _C, strict=True)]
    v[3] ^= m
    _rounds(v, 2)
    v[0] ^= m
    v[3] ^= _LAST_BLOCK
    _rounds(v, 2)
    v[0] ^= _LAST_BLOCK
    v[2] ^= _FF
    _rounds(v, 4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


class PlateHasher:
    """Plates (as the camera read them) -> the keyed hash of their plate keys, a batch at a time."""

    def __init__(self, hash_key: str) -> None:
        self._k0, self._k1, self._long = hash_keys(hash_key)

    def of_key(self, key: str) -> int:
        """The hash of one plate key (the slow path of :meth:`of_plates`, and its reference)."""
        codes, other = exact_codes([key])
        if not other[0]:
            h = int(siphash_u64(self._k0, self._k1, codes)[0])
        else:
            h = int.from_bytes(hashlib.blake2b(key.encode(), key=self._long, digest_size=8).digest(), "little")
        return h + 2 if h < 2 else h

    def of_plates(self, plates: Sequence[str]) -> npt.NDArray[np.uint64]:
        """The hash of each plate's key; a plate with no key or one over ``MAX_KEY_LENGTH`` gets 0 (such a
        read is a dead letter).
        Every other hash is 2 or more (0 and 1 mark the free slots of a table of hashes)."""
        codes, other = exact_codes(plates)
        return self.of_codes(codes, other, plates.__getitem__)

    def of_codes(
        self, codes: npt.NDArray[np.int64], other: npt.NDArray[np.bool_], plate_of: Callable[[int], str]
    ) -> npt.NDArray[np.uint64]:
        """:meth:`of_plates` of key codes already made (:func:`matchers.batch.exact_codes`); ``plate_of(i)``:
        the plate of code ``i`` (asked only for a plate the codes do not cover)."""
        hashed = siphash_u64(self._k0, self._k1, codes)
        if other.any():
            for i in np.flatnonzero(other).tolist():
                key = plate_key(plate_of(i))
                hashed[i] = self.of_key(key) if 0 < len(key) <= MAX_KEY_LENGTH else 0
        hashed[(hashed < 2) & ~other] += np.uint64(2)
        return hashed
