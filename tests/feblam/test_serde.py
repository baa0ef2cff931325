from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from feblam.model import DeadLetter, Hit, Match, Read
from feblam.serde import deadletter_to_dict, format_ts, hit_to_dict, hit_to_json
from tests.support.outputs import deadletter_from_dict, hit_from_json
from tests.support.strategies import times

text = st.text(max_size=20)
opt_text = st.one_of(st.none(), text)
opt_float = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64))
reads = st.builds(
    Read,
    read_id=text,
    camera_id=text,
    vendor=st.sampled_from(["vendor-a", "vendor-b", "vendor-c", "canonical"]),
    ts=times,
    plate_raw=text,
    country_raw=opt_text,
    confidence=opt_float,
    lat=opt_float,
    lon=opt_float,
    lane=st.one_of(st.none(), text, st.integers(-5, 50)),
    direction=st.one_of(st.none(), text, st.integers(0, 360)),
    image_ref=opt_text,
)
matches = st.builds(
    Match,
    list_id=text,
    entry_id=text,
    category=text,
    priority=st.integers(1, 5),
    action=st.sampled_from(["intercept", "observe", "inform"]),
    match_kind=st.sampled_from(["exact", "ocr_equivalent", "pattern"]),
    owner=opt_text,
    note=opt_text,
)
hits = st.builds(
    Hit,
    hit_id=text,
    index_version=text,
    priority=st.integers(1, 5),
    emitted_at=times,
    read=reads,
    plate=text,
    country=opt_text,
    matches=st.lists(matches, max_size=4).map(tuple),
    routes=st.lists(text, max_size=3).map(tuple),
    retro=st.booleans(),
    retro_of=opt_text,
)


@given(hits)
def test_hit_json_round_trips(hit: Hit) -> None:
    assert hit_from_json(hit_to_json(hit)) == hit


def test_hit_json_shape_follows_the_contract() -> None:
    read = Read("a-1", "CAM", "vendor-a", datetime(2026, 11, 28, 12, 0, 0, 130000, tzinfo=UTC), "1-abc-123", "B")
    hit = Hit(
        "h",
        "v",
        1,
        datetime(2026, 11, 28, 12, 0, 0, 130000, tzinfo=UTC),
        read,
        "1ABC123",
        "BE",
        (Match("BE-STOLEN", "S-1", "stolen_vehicle", 1, "intercept", "exact", "o", "n"),),
        ("hits.p1",),
    )
    doc = hit_to_dict(hit)
    assert list(doc) == [
        "hit_id",
        "index_version",
        "priority",
        "emitted_at",
        "read",
        "matches",
        "routes",
        "retro",
        "retro_of",
    ]
    assert doc["retro"] is False and doc["retro_of"] is None  # a live hit (DESIGN section 6)
    assert doc["emitted_at"] == "2026-11-28T12:00:00.130Z"
    assert doc["read"]["plate"] == "1ABC123" and doc["read"]["country"] == "BE"
    assert doc["read"]["ts"] == "2026-11-28T12:00:00.130Z"
    assert list(doc["matches"][0]) == [
        "list_id",
        "entry_id",
        "category",
        "priority",
        "action",
        "match_kind",
        "owner",
        "note",
        "entry_plate",  # DESIGN 6: why the hit matched
        "entry_country",
        "valid_from",
        "valid_until",
    ]


@given(times)
def test_timestamps_format_with_z(ts: datetime) -> None:
    s = format_ts(ts)
    assert s.endswith("Z")
    assert datetime.fromisoformat(s) == ts


@given(st.binary(max_size=64), opt_text, st.one_of(st.none(), st.integers(0, 10**6)))
def test_deadletter_round_trips_any_bytes(payload: bytes, vendor: str | None, line: int | None) -> None:
    dl = DeadLetter("src", "why", payload, vendor, line, None, None)
    doc = deadletter_to_dict(dl)
    assert deadletter_from_dict(doc) == dl
    try:
        payload.decode("utf-8")
        assert doc["payload_encoding"] == "utf-8"
    except UnicodeDecodeError:
        assert doc["payload_encoding"] == "base64"
