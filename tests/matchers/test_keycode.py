from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from matchers.keycode import PACKED_MAX_LEN, decode_code, key_and_fuzzy_codes, key_code
from matchers.normalize import fuzzy_key
from tests.support.strategies import any_keys, keys


@given(st.lists(any_keys, max_size=40))
def test_vectorised_codes_equal_the_scalar_ones(ks: list[str]) -> None:
    plain, fuzzy = key_and_fuzzy_codes(pa.array(ks, pa.string()))
    assert plain.tolist() == [key_code(k) for k in ks]
    assert fuzzy.tolist() == [key_code(fuzzy_key(k)) for k in ks]


@given(keys, keys)
def test_packed_codes_never_collide_and_decode_back(a: str, b: str) -> None:
    assert (key_code(a) == key_code(b)) == (a == b)
    assert decode_code(key_code(a)) == a


def test_long_keys_are_hashed_outside_the_packed_range() -> None:
    long = "A" * (PACKED_MAX_LEN + 1)
    assert decode_code(key_code(long)) is None
    assert key_code(long) > key_code("Z" * PACKED_MAX_LEN)


def test_vectorised_codes_hold_across_the_blocks_of_rows() -> None:
    import random

    from matchers.keycode import _BLOCK

    rng = random.Random(3)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ks = ["".join(rng.choices(alphabet, k=rng.randint(1, 13))) for _ in range(2 * _BLOCK + 7)]
    plain, fuzzy = key_and_fuzzy_codes(pa.array(ks, pa.string()).slice(5))  # an offset into the buffers too
    assert plain.tolist() == [key_code(k) for k in ks[5:]]
    assert fuzzy.tolist() == [key_code(fuzzy_key(k)) for k in ks[5:]]
