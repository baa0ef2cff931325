from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from feblam.errors import DecodeError
from feblam.serde import read_to_dict
from sources.vendors import VENDORS, decode, vendor_c
from sources.vendors._fields import MAX_PAYLOAD_BYTES, derived_read_id

PARSERS = {name: v.parse for name, v in VENDORS.items()}
DECODERS = {name: v.decode for name, v in VENDORS.items()}

GOLDEN = Path(__file__).parent / "golden"
GOOD = sorted(GOLDEN.glob("*/good/*.payload"))
BAD = sorted(GOLDEN.glob("*/bad/*.payload"))


@pytest.mark.parametrize("path", GOOD, ids=lambda p: f"{p.parts[-3]}/{p.stem}")
def test_golden_good_payloads(path: Path) -> None:
    vendor = path.parts[-3]
    expected = orjson.loads(path.with_suffix(".expected.json").read_bytes())
    assert read_to_dict(decode(vendor, path.read_bytes())) == expected


@pytest.mark.parametrize("path", BAD, ids=lambda p: f"{p.parts[-3]}/{p.stem}")
def test_golden_bad_payloads(path: Path) -> None:
    vendor = path.parts[-3]
    reason = path.with_suffix(".error").read_text().strip()
    with pytest.raises(DecodeError) as exc:
        decode(vendor, path.read_bytes())
    assert reason in str(exc.value)
    assert isinstance(exc.value, ValueError)  # builtin-compatible leaf


def test_every_vendor_has_golden_files() -> None:
    assert {p.parts[-3] for p in GOOD} == set(DECODERS) == {p.parts[-3] for p in BAD}


@pytest.mark.parametrize("vendor", sorted(PARSERS))
def test_oversized_payload_is_rejected(vendor: str) -> None:
    with pytest.raises(DecodeError, match="over the 16384-byte limit"):
        decode(vendor, b" " * (MAX_PAYLOAD_BYTES + 1))


@pytest.mark.parametrize("vendor", sorted(PARSERS))
@given(payload=st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_decode_error(vendor: str, payload: bytes) -> None:
    try:
        read = decode(vendor, payload)
    except DecodeError:
        return
    assert read.ts.tzinfo is not None


def test_unknown_vendor() -> None:
    with pytest.raises(DecodeError, match="unknown vendor 'vendor-z'"):
        decode("vendor-z", b"{}")


@pytest.mark.parametrize(
    ("local", "utc"),
    [
        ("20260329015959999", datetime(2026, 3, 29, 0, 59, 59, 999000, tzinfo=UTC)),  # last winter instant
        ("20260329030000000", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),  # first summer instant
        ("20261025015959000", datetime(2026, 10, 24, 23, 59, 59, tzinfo=UTC)),
        ("20261025023000000", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # repeated hour: first occurrence
        ("20261025030000000", datetime(2026, 10, 25, 2, 0, tzinfo=UTC)),  # winter again
        ("20261231235959999", datetime(2026, 12, 31, 22, 59, 59, 999000, tzinfo=UTC)),
        ("20270328010000000", datetime(2027, 3, 28, 0, 0, tzinfo=UTC)),
        ("20270328030000000", datetime(2027, 3, 28, 1, 0, tzinfo=UTC)),
    ],
)
def test_vendor_c_brussels_time_across_daylight_saving(local: str, utc: datetime) -> None:
    assert vendor_c.local_to_utc(local) == utc


@pytest.mark.parametrize("local", ["20260329020000000", "20260329025959999", "20270328021500000"])
def test_vendor_c_spring_gap_does_not_exist(local: str) -> None:
    with pytest.raises(DecodeError, match="daylight-saving gap"):
        vendor_c.local_to_utc(local)


def test_derived_read_id_is_deterministic_and_distinct() -> None:
    ts = datetime(2026, 11, 28, 12, tzinfo=UTC)
    a = derived_read_id("CAM-1", ts, "AB-12")
    assert a == derived_read_id("CAM-1", ts, "AB-12")
    assert a != derived_read_id("CAM-2", ts, "AB-12")
    assert a != derived_read_id("CAM-1", ts, "AB-13")
    one = decode("vendor-c", b"CAM-1;20261128130000000;AB-12;BE;0.5")
    two = decode("vendor-c", b"CAM-1;20261128130000000;AB-12;BE;0.9")
    assert one.read_id == two.read_id


def test_vendor_a_confidence_is_scaled_from_percent() -> None:
    payload = {
        "id": "x",
        "camera": {"id": "C"},
        "plate": {"text": "A1", "confidence": 50},
        "captured_at": "2026-11-28T12:00:00Z",
    }
    assert decode("vendor-a", orjson.dumps(payload)).confidence == 0.5
