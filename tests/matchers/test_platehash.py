"""The keyed plate hash: SipHash-2-4 as its reference gives it, the same for a batch as for one key."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers.normalize import plate_key
from matchers.platehash import PlateHasher, siphash_u64


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & 0xFFFFFFFFFFFFFFFF


def reference_siphash24(key: bytes, msg: bytes) -> int:
    """SipHash-2-4 over any message, written from the paper (one word at a time, plain integers)."""
    mask = 0xFFFFFFFFFFFFFFFF
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rounds(n: int) -> None:
        for _ in range(n):
            v[0] = (v[0] + v[1]) & mask
            v[1] = _rotl(v[1], 13) ^ v[0]
            v[0] = _rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & mask
            v[3] = _rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & mask
            v[3] = _rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & mask
            v[1] = _rotl(v[1], 17) ^ v[2]
            v[2] = _rotl(v[2], 32)

    whole = len(msg) - len(msg) % 8
    for i in range(0, whole, 8):
        m = int.from_bytes(msg[i : i + 8], "little")
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    last = (len(msg) & 0xFF) << 56 | int.from_bytes(msg[whole:], "little")
    v[3] ^= last
    rounds(2)
    v[0] ^= last
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def test_the_reference_gives_the_papers_test_vector() -> None:
    # SipHash paper, appendix A: key 00..0f, message 00..0e
    assert reference_siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5


@given(st.binary(min_size=16, max_size=16), st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50))
def test_the_batch_hash_is_siphash_of_each_word(key: bytes, words: list[int]) -> None:
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    got = siphash_u64(k0, k1, np.array(words, dtype=np.uint64)).tolist()
    assert got == [reference_siphash24(key, w.to_bytes(8, "little")) for w in words]


plates = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -.", min_size=1, max_size=20),
    st.sampled_from(["1-ABC-123", "1abc123", "ÄBC-123", "1АВС123", "x" * 30, "123456789012"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(plates, min_size=1, max_size=30))
def test_a_plate_hashes_by_its_key_alone_and_the_same_in_a_batch(batch: list[str]) -> None:
    hasher = PlateHasher("a-test-key-of-enough-length-for-the-check")
    got = hasher.of_plates(batch).tolist()
    for plate, h in zip(batch, got, strict=True):
        key = plate_key(plate)
        assert h == (hasher.of_key(key) if 0 < len(key) <= 16 else 0)
        assert h == 0 or h >= 2
    # one key, one hash, whatever its separators and case; another key, another hash
    by_key: dict[str, int] = {}
    for plate, h in zip(batch, got, strict=True):
        key = plate_key(plate)
        if 0 < len(key) <= 16:
            assert by_key.setdefault(key, h) == h
    assert len(set(by_key.values())) == len(by_key)


def test_another_deployment_key_gives_other_hashes() -> None:
    a, b = PlateHasher("key-one-key-one-key-one-key-one"), PlateHasher("key-two-key-two-key-two-key-two")
    assert a.of_key("1ABC123") != b.of_key("1ABC123")
    assert a.of_key("1ABC123") == PlateHasher("key-one-key-one-key-one-key-one").of_key("1ABC123")
