"""Each vendor's screen over a whole batch (the JSON vendors: one msgspec call; vendor-c: numpy over the lines
joined) gives exactly what its per-payload screen gives, payload by payload, on any mix of good and bad
payloads: a bad payload costs the batch its speed, never a read or a dead letter."""

from __future__ import annotations

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.vendors import VENDORS, vendor_c
from sources.vendors.batchjson import decode_whole
from tests.sources.test_fast_path import VALID, documents
from tests.sources.test_screen import parts, times

JSON_VENDORS = sorted(VALID)
TIME = {"vendor-a": "captured_at", "canonical": "ts"}


def payloads_of(vendor: str) -> st.SearchStrategy[bytes]:
    good = documents(VALID[vendor]).map(orjson.dumps)
    valid = orjson.dumps(VALID[vendor])
    odd = [
        b"",
        b" ",
        b"\n",
        b"{}",
        b"null",
        b"{" * 40,
        b'{"x":"\xff"}',
        valid + valid,  # two objects on one line: with an empty payload beside it, the lines still count right
        valid + b" " + valid,
        b" " + valid,
        valid + b"\r",
        valid + b"\n" + valid,
        valid[:-1],
    ]
    if vendor in TIME:  # the year ends the screen leaves to parse, and an escaped time
        doc = dict(VALID[vendor])
        for ts in ("0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "\u0032026-11-28T12:00:00Z"):
            doc[TIME[vendor]] = ts
            odd.append(orjson.dumps(doc))
        odd.append(valid.replace(b'"2026-', b'"\\u0032026-'))
    return st.one_of(good, good, st.sampled_from(odd), st.binary(max_size=30))


@pytest.mark.parametrize("vendor", JSON_VENDORS)
def test_the_batch_screen_and_the_per_payload_screen_agree_on_any_mix(vendor: str) -> None:
    record = VENDORS[vendor]
    assert record.screens is not None, "a JSON vendor screens a batch at a time"
    seen = {"vouched": 0, "batches_whole": 0}

    @settings(max_examples=300, deadline=None)
    @given(st.lists(payloads_of(vendor), max_size=12))
    def check(payloads: list[bytes]) -> None:
        got = record.screens(payloads)  # type: ignore[misc]
        assert got == [record.screen(p) for p in payloads]
        seen["vouched"] += sum(1 for g in got if g)

    check()
    # a batch of good payloads takes the one call, and agrees
    many = [orjson.dumps(VALID[vendor])] * 50
    assert record.screens(many) == [record.screen(p) for p in many]  # type: ignore[misc]
    assert seen["vouched"] > 100


def test_a_line_of_two_objects_beside_an_empty_payload_is_not_taken_whole() -> None:
    class S(msgspec.Struct):
        a: int

    decoder = msgspec.json.Decoder(S)
    assert decoder.decode_lines(b'{"a":1}{"a":2}\n') == [S(1), S(2)], "why the guard is needed"
    assert decode_whole(decoder, [b'{"a":1}{"a":2}', b""]) is None
    assert decode_whole(decoder, [b'{"a":1}{"a":2}', b"  "]) is None
    assert decode_whole(decoder, [b'{"a":1}', b'{"a":2}']) == [S(1), S(2)]
    assert decode_whole(decoder, [b'{"a":1}', b'{"a":"x"}']) is None
    assert decode_whole(decoder, [b'{"a":1}', b'{"a":\n2}']) == [S(1), S(2)], "a line break as whitespace"
    assert decode_whole(decoder, [b'{"a":1}\n{"a":2}', b'{"a":3}']) is None, "a line break between values"
    assert decode_whole(decoder, [b'{"a":1}', b' {"a":2}']) is None
    assert decode_whole(decoder, []) == []


def _line(camera: str, when: str, plate: str, country: str, conf: str) -> bytes:
    return ";".join((camera, when, plate, country, conf)).encode()


good_lines = st.builds(
    _line,
    st.sampled_from(["CAM-LIE-0042", "E40-KM0012", "C"]),
    st.sampled_from(["20261128130000123", "20261128130159999", "20261128235959000", "20270101000000000"]),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=9),
    st.sampled_from(["", "BE", "FR"]),
    st.sampled_from(["", "0.71", "1", "0", "1.0", ".5", "5.", "0.999999999999999999999"]),
)
odd_lines = st.one_of(
    st.lists(st.one_of(parts, times), min_size=0, max_size=7).map(lambda f: ";".join(f).encode()),
    st.sampled_from(
        [
            b"",
            b";;;;",
            b"CAM;20261128130000123;AB-1;BE;0.5;",  # five ";"
            b"CAM;20261128130000123;AB-1;BE",  # three
            b"CAM;20261128130000123;AB-1;BE;0.5\n",
            b"CAM;20261128130000123;AB\n1;BE;0.5",  # a line break inside a field
            b"CAM;20261128130000123;AB-1;BE;0.5\x00",
            b"CAM;20261128130000123;\xc3\xa9;BE;0.5",
            b" CAM;20261128130000123;AB-1;BE;0.5",
            b" ;20261128130000123;AB-1;BE;0.5",
            b"CAM;20261128130000123; AB-1;BE;0.5",
            b"CAM;20261128130000123;AB-1\x1f;BE;0.5",
            b"CAM;20260329023000000;AB-1;BE;0.5",  # the daylight-saving gap
            b"CAM;20261128130060000;AB-1;BE;0.5",  # second 60
            b"CAM;2026112813000012/;AB-1;BE;0.5",
            b"CAM;20261128130000123;AB-1;BE; 0.25 ",
            b"CAM;20261128130000123;AB-1;BE;1.5",
            b"CAM;20261128130000123;AB-1;BE;1.2.3",
            b"CAM;20261128130000123;AB-1;BE;nan",
            b"CAM;20261128130000123;AB-1;BE;1_0",
            b"CAM;20261128130000123;AB-1;BE;0." + b"0" * 40,
            b"CAM;20261128130000123;AB-1;BE;0.5" + b" " * 20_000,
        ]
    ),
    st.binary(max_size=40),
)


def test_the_vendor_c_batch_screen_and_its_per_payload_screen_agree_on_any_mix() -> None:
    seen = {"vouched": 0, "odd": 0}

    @settings(max_examples=600, deadline=None)
    @given(st.lists(st.one_of(good_lines, good_lines, odd_lines), max_size=14))
    def check(payloads: list[bytes]) -> None:
        got = vendor_c.screens(payloads)
        assert got == [vendor_c.screen(p) for p in payloads]
        seen["vouched"] += sum(1 for g in got if g)
        seen["odd"] += sum(1 for g in got if not g)

    check()
    assert seen["vouched"] > 500
    assert seen["odd"] > 200
    assert VENDORS["vendor-c"].screens is vendor_c.screens
