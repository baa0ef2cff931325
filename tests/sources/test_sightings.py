"""The batch sightings of the clone check: a payload is in them only when ``parse`` accepts it, with the same
values; a bad payload never costs the batch (the rest are still vouched for)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feblam.errors import DecodeError
from feblam.model import EPOCH
from sources.vendors import VENDORS
from tests.sources.test_fast_path import VALID, documents
from tests.sources.test_screen import parts, times

JSON_VENDORS = sorted(VALID)
raw = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b"\n", b"{}", b'{"a":1}\n{"b":2}', b"[]", b"null", b"{" * 40, b'{"x":"\xff"}']),
)


def _same(a: Any, b: Any) -> bool:
    return (a is None and isinstance(b, float) and math.isnan(b)) or a == b or (a or None) == (b or None)


@pytest.mark.parametrize("vendor", JSON_VENDORS)
def test_batch_sightings_agree_with_parse_on_any_mix(vendor: str) -> None:
    record = VENDORS[vendor]
    assert record.sightings is not None
    seen = {"vouched": 0, "left": 0}

    doubled = documents(VALID[vendor]).map(lambda d: orjson.dumps(d) * 2)  # two objects on one line

    good = documents(VALID[vendor]).map(orjson.dumps)

    # 800 examples: 400 vouched for as few as 99 payloads of one vendor in a run (a bound of 100 below)
    @settings(max_examples=800, deadline=None)
    @given(st.lists(st.one_of(good, good, raw, doubled), max_size=12))
    def check(payloads: list[bytes]) -> None:
        s = record.sightings(payloads)  # type: ignore[misc]
        vouched = set(s.rows.tolist())
        assert len(vouched) == len(s)
        for j, i in enumerate(s.rows.tolist()):
            try:
                f = record.parse(payloads[i])
            except DecodeError as exc:
                msg = f"{vendor}: sightings vouched for a payload parse refuses: {payloads[i]!r}: {exc}"
                raise AssertionError(msg) from None
            assert s.plates[j] == f.plate_raw
            assert s.cameras[j] == f.camera_id
            assert s.vendors[j] == f.vendor
            assert s.ts_us[j] == (f.ts - EPOCH) // timedelta(microseconds=1)
            for got, want in ((s.lat[j], f.lat), (s.lon[j], f.lon), (s.confidence[j], f.confidence)):
                assert _same(want, float(got)), (got, want)
            assert (s.read_ids[j] or None) == f.read_id
            assert (s.images[j] or None) == f.image_ref
            assert (s.countries[j] or None) == f.country_raw
            seen["vouched"] += 1
        for i, p in enumerate(payloads):
            if i not in vouched:
                seen["left"] += 1
                # what is left is parsed one by one: it may be good (a lenient form), or a dead letter
                try:
                    record.parse(p)
                except DecodeError:
                    pass

    check()
    assert seen["vouched"] > 100
    assert seen["left"] > 50


@pytest.mark.parametrize("vendor", JSON_VENDORS)
def test_one_bad_payload_leaves_the_rest_of_the_batch_vouched(vendor: str) -> None:
    good = orjson.dumps(VALID[vendor])
    s = VENDORS[vendor].sightings([good, b"{not json", good, good + b"\n" + good, good])  # type: ignore[misc]
    assert s.rows.tolist() == [0, 2, 4]


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.one_of(parts, times), min_size=2, max_size=6), st.sampled_from(["", "\n", "\r\n"])),
        max_size=10,
    ),
    st.lists(raw, max_size=2),
)
def test_vendor_c_batch_sightings_agree_with_parse(lines: list[tuple[list[str], str]], junk: list[bytes]) -> None:
    payloads = [(";".join(fields) + end).encode() for fields, end in lines] + junk
    payloads.append(b"CAM\x00X;20261128130000123;AB\x00-1;F\x00R;0.71")
    payloads.append(b"CAM-LIE-0042;20261128130000123;AB-123-CD;FR;0.71")
    record = VENDORS["vendor-c"]
    s = record.sightings(payloads)  # type: ignore[misc]
    assert s.rows.tolist()[-1] == len(payloads) - 1, "a good line is vouched for whatever the batch holds"
    for j, i in enumerate(s.rows.tolist()):
        try:
            f = record.parse(payloads[i])
        except DecodeError as exc:
            msg = f"sightings vouched for a line parse refuses: {payloads[i]!r}: {exc}"
            raise AssertionError(msg) from None
        assert (s.plates[j], s.cameras[j], s.countries[j]) == (f.plate_raw, f.camera_id, f.country_raw)
        assert s.ts_us[j] == (f.ts - EPOCH) // timedelta(microseconds=1)
        assert _same(f.confidence, float(s.confidence[j]))
        assert s.read_ids[j] is None and f.read_id is None


def test_vendor_c_sightings_take_the_screens_lines_and_convert_local_time() -> None:
    lines = [
        b"CAM-LIE-0042;20261128130000123;AB-123-CD;FR;0.71",  # winter: UTC+1
        b"CAM-LIE-0042;20260628130000000;AB-123-CD;;",  # summer: UTC+2, no country, no confidence
        b"CAM-LIE-0042;20260329023000000;AB-123-CD;FR;0.71",  # the gap: parse refuses it
        b"CAM-LIE-0042;20261025023000000;AB-123-CD;FR;0.71",  # the repeated hour: its first occurrence
    ]
    s = VENDORS["vendor-c"].sightings(lines)  # type: ignore[misc]
    assert s.rows.tolist() == [0, 1, 3]
    for j, i in enumerate(s.rows.tolist()):
        assert s.ts_us[j] == (VENDORS["vendor-c"].parse(lines[i]).ts - EPOCH) // timedelta(microseconds=1)
