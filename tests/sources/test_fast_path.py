"""The msgspec fast path of each JSON decoder agrees with the checked path wherever it accepts a payload."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feblam.errors import DecodeError
from sources.vendors import canonical, vendor_a, vendor_b
from sources.vendors._fields import FAST_PATH_ERRORS

# values of every JSON type, including the lenient forms and the bad ones
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.just(""),
    st.text(max_size=8),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-500, max_value=500),
    st.sampled_from(
        [
            "2026-11-28T13:00:00.123+01:00",
            "2026-11-28T12:00:00Z",
            "2026-11-28T12:00:00",
            "2026-03-29 02:30:00+02:00",
            "87",
            "0.5",
            "BEL",
            "1-abc-123",
        ]
    ),
    st.integers(1_700_000_000_000, 1_800_000_000_000),
)
values = st.one_of(
    scalars, st.lists(scalars, max_size=2), st.dictionaries(st.sampled_from(["id", "text"]), scalars, max_size=2)
)


VALID = {
    "vendor-a": {
        "id": "a-1",
        "captured_at": "2026-11-28T13:00:00.123+01:00",
        "image": "s3://x",
        "camera": {"id": "CAM", "lat": 50.8, "lon": 4.3, "lane": 2, "direction": "N"},
        "plate": {"text": "1-abc-123", "country": "B", "confidence": 87},
    },
    "vendor-b": {
        "ReadId": "b-1",
        "CameraId": "CAM",
        "TimestampMs": 1764331200123,
        "Plate": "1ABC123",
        "Country": "BEL",
        "Conf": 0.9,
        "Lat": 50.9,
        "Lon": 4.1,
        "Lane": 1,
        "Direction": "N",
        "Image": "s3://y",
    },
    "canonical": {
        "read_id": "r1",
        "camera_id": "CAM",
        "vendor": "x",
        "ts": "2026-11-28T12:00:00Z",
        "plate_raw": "1ABC123",
        "country_raw": "BE",
        "confidence": 0.5,
        "lat": 1.0,
        "lon": 2.0,
        "lane": "3",
        "direction": 90,
        "image_ref": "s3://z",
    },
}


MISSING = object()


def documents(valid: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The valid document with some fields dropped or replaced by any value (nested objects too)."""

    def field(value: Any) -> st.SearchStrategy[Any]:
        kept = documents(value) if isinstance(value, dict) else st.just(value)
        # mostly the valid value, so that whole documents often pass; else any value, or absent
        return st.integers(0, 11).flatmap(lambda i: kept if i < 10 else values if i == 10 else st.just(MISSING))

    return st.fixed_dictionaries({k: field(v) for k, v in valid.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not MISSING}
    )


CASES = {"vendor-a": vendor_a, "vendor-b": vendor_b, "canonical": canonical}


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_fast_and_checked_paths_agree(vendor: str) -> None:
    module = CASES[vendor]
    accepted = []

    @settings(max_examples=500, deadline=None)
    @given(documents(VALID[vendor]))
    def check(doc: dict[str, Any]) -> None:
        payload = orjson.dumps(doc)
        try:
            fast = module._decode(payload)
        except FAST_PATH_ERRORS:
            return  # the checked path decides (the golden tests pin its messages)
        accepted.append(fast)
        try:
            checked = module._checked(payload)
        except DecodeError as exc:
            msg = f"the fast path accepted what the checked path refuses: {doc!r}: {exc}"
            raise AssertionError(msg) from None
        assert module.parse(payload) == checked

    check()
    assert len(accepted) > 50, "the property saw the fast path accept payloads"


def test_well_formed_payloads_take_the_fast_path() -> None:
    payload = (
        b'{"id":"a-1","camera":{"id":"CAM","lat":50.85,"lon":4.35,"lane":2},'
        b'"plate":{"text":"1-abc-123","country":"B","confidence":87},"captured_at":"2026-11-28T13:00:00.123+01:00"}'
    )
    vendor_a._decode(payload)  # no fallback needed
    assert vendor_a.parse(payload) == vendor_a._checked(payload)


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_the_retro_scans_quick_plate_is_the_decoders_plate_or_nothing(vendor: str) -> None:
    from flows.retro import quick_plate

    module = CASES[vendor]

    @settings(max_examples=300, deadline=None)
    @given(documents(VALID[vendor]), st.sampled_from(["", " ", "\n"]))
    def check(doc: dict[str, Any], spacing: str) -> None:
        payload = orjson.dumps(doc).replace(b'":', b'":' + spacing.encode())
        quick = quick_plate(payload, vendor)
        if quick is None:
            return
        try:
            fields = module.parse(payload)
        except DecodeError:
            return  # a dead letter: the scan skips it either way
        assert quick == fields.plate_raw

    check()


@given(st.text(max_size=12), st.text(alphabet="0123456789", min_size=17, max_size=17), st.text(max_size=12))
def test_the_quick_plate_of_a_vendor_c_line(camera: str, when: str, plate: str) -> None:
    from flows.retro import quick_plate
    from sources.vendors import vendor_c

    payload = f"{camera};{when};{plate};BE;0.5".encode()
    quick = quick_plate(payload, "vendor-c")
    try:
        fields = vendor_c.parse(payload)
    except DecodeError:
        return
    assert quick == fields.plate_raw
