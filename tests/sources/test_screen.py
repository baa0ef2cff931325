"""Each vendor's ``screen``: when it vouches for a payload, ``parse`` accepts it with the same plate.

The hot path parses only the reads a screen cannot vouch for and those whose plate
the index may match, so a screen that vouched for a payload ``parse`` refuses would
lose a dead letter, and one that gave another plate could lose a hit.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feblam.errors import DecodeError
from sources.vendors import VENDORS, vendor_c
from tests.sources.test_fast_path import VALID, documents

PARSERS = {name: v.parse for name, v in VENDORS.items()}
SCREENS = {name: v.screen for name, v in VENDORS.items()}


def agree(vendor: str, payload: bytes) -> bool:
    """The property for one payload; True when the screen vouched for it."""
    plate = SCREENS[vendor](payload)
    if not plate:  # "": the screen leaves it to parse
        return False
    try:
        fields = PARSERS[vendor](payload)
    except DecodeError as exc:
        msg = f"{vendor}: the screen vouched for a payload parse refuses: {payload!r}: {exc}"
        raise AssertionError(msg) from None
    assert plate == fields.plate_raw
    return True


@pytest.mark.parametrize("vendor", sorted(VALID))
def test_a_json_screen_vouches_only_for_what_parse_accepts(vendor: str) -> None:
    vouched = []

    @settings(max_examples=500, deadline=None)
    @given(documents(VALID[vendor]))
    def check(doc: dict[str, Any]) -> None:
        if agree(vendor, orjson.dumps(doc)):
            vouched.append(doc)

    check()
    assert len(vouched) > 50, "the property saw the screen vouch for payloads"


@pytest.mark.parametrize("vendor", sorted(VALID))
def test_the_extremes_of_time_and_size_are_left_to_parse(vendor: str) -> None:
    big = dict(VALID[vendor])
    key = {"vendor-a": "image", "vendor-b": "Image", "canonical": "image_ref"}[vendor]
    big[key] = "x" * 20_000
    assert SCREENS[vendor](orjson.dumps(big)) == ""
    assert agree(vendor, orjson.dumps(VALID[vendor]))


parts = st.one_of(st.text(max_size=10), st.sampled_from(["", " ", "BE", "0.5", "1.5", "nan", "-0", " 0.25 ", "1e-1"]))
times = st.one_of(
    st.text(alphabet="0123456789", min_size=17, max_size=17),
    st.sampled_from(
        [
            "20261128130000123",
            "20260329023000000",
            "20261025023000000",
            "20261128136000123",
            "20261128125960000",
            "20261340130000000",
            " 20261128130000123 ",
            "2026112813000012",
        ]
    ),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(parts, times), min_size=2, max_size=6), st.sampled_from(["", "\n", "\r\n"]), st.booleans())
def test_the_vendor_c_screen_vouches_only_for_what_parse_accepts(fields: list[str], end: str, warm: bool) -> None:
    payload = (";".join(fields) + end).encode()
    if warm:  # a minute parse has converted before, or one the screen converts itself
        try:
            vendor_c.parse(payload)
        except DecodeError:
            pass
    agree("vendor-c", payload)


def test_the_vendor_c_screen_vouches_for_a_good_line() -> None:
    line = b"CAM-LIE-0042;20261128130000123;AB-123-CD;FR;0.71"
    assert vendor_c.screen(line) == "AB-123-CD"
    assert vendor_c.screen(b"CAM-LIE-0042;20260329023000000;AB-123-CD;FR;0.71") == ""  # the daylight-saving gap
    assert vendor_c.screen(b"CAM-LIE-0042;20261128130060123;AB-123-CD;FR;0.71") == ""  # second 60
    assert vendor_c.screen(b"CAM-LIE-0042;20261128130000123;AB-123-CD;FR;1.71") == ""
    assert vendor_c.screen(b"CAM-LIE-0042;20261128130000123;AB-123-CD;FR") == ""  # four fields: parse decides
