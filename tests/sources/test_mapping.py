"""A vendor as a mapping file: the four built-in vendors as mappings agree with their hand-written decoders
(every golden file, any document built from a valid one), and a mapping's mistakes are one line each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feblam.errors import ConfigError, DecodeError
from feblam.serde import read_to_dict
from sources.mapping import SHIPPED, compile_mapping, load_mapping, shipped
from sources.vendors import VENDORS
from tests.sources.test_fast_path import VALID, documents
from tests.sources.test_vendors import BAD, GOOD

BUILT_IN = sorted(VENDORS)
MAPPED = {name: shipped(name) for name in BUILT_IN}


def outcome(parse: Any, payload: bytes) -> Any:
    try:
        return parse(payload)
    except DecodeError as exc:
        return f"refused: {exc}"


@pytest.mark.parametrize("path", GOOD, ids=lambda p: f"{p.parts[-3]}/{p.stem}")
def test_every_golden_read_of_a_built_in_vendor_comes_out_of_its_mapping(path: Path) -> None:
    vendor = path.parts[-3]
    expected = orjson.loads(path.with_suffix(".expected.json").read_bytes())
    assert read_to_dict(MAPPED[vendor].decode(path.read_bytes())) == expected
    assert MAPPED[vendor].screen(path.read_bytes()) in ("", expected["plate_raw"])


@pytest.mark.parametrize("path", BAD, ids=lambda p: f"{p.parts[-3]}/{p.stem}")
def test_every_golden_refusal_of_a_built_in_vendor_is_its_mappings_with_the_same_words(path: Path) -> None:
    vendor = path.parts[-3]
    payload = path.read_bytes()
    with pytest.raises(DecodeError) as exc:
        MAPPED[vendor].decode(payload)
    assert path.with_suffix(".error").read_text().strip() in str(exc.value)
    assert outcome(MAPPED[vendor].parse, payload) == outcome(VENDORS[vendor].parse, payload)
    assert MAPPED[vendor].screen(payload) == ""


@pytest.mark.parametrize("vendor", sorted(VALID))
def test_a_mapped_json_vendor_and_its_hand_written_decoder_agree_on_any_document(vendor: str) -> None:
    mapped, hand = MAPPED[vendor], VENDORS[vendor]

    @settings(max_examples=400, deadline=None)
    @given(documents(VALID[vendor]))
    def check(doc: dict[str, Any]) -> None:
        payload = orjson.dumps(doc)
        mine, theirs = outcome(mapped.parse, payload), outcome(hand.parse, payload)
        if isinstance(theirs, str):  # both refuse (the words may differ when several fields are wrong)
            assert isinstance(mine, str), (doc, mine)
        else:
            assert mine == theirs, doc
        plate = mapped.screen(payload)
        assert plate in ("", getattr(theirs, "plate_raw", None)), doc

    check()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=10),
            st.sampled_from(["20261128130000123", "20260329023000000", "20261025023000000", "0.7", "FR", " CAM-1 "]),
        ),
        min_size=0,
        max_size=7,
    )
)
def test_the_mapped_delimited_vendor_agrees_with_vendor_c_on_any_line(parts: list[str]) -> None:
    line = ";".join(parts).encode()
    mine, theirs = outcome(MAPPED["vendor-c"].parse, line), outcome(VENDORS["vendor-c"].parse, line)
    assert mine == theirs, line


def test_a_new_json_vendor_is_a_mapping_file_only(tmp_path: Path) -> None:
    f = tmp_path / "acme.toml"
    f.write_text(
        """
name = "acme-lpr"
format = "json"
documentation = "ACME LPR interface guide 2.1, section 5 (push notifications)"
[fields]
camera_id = { path = "device.serial" }
ts = { path = "event.time", time = "epoch_s" }
plate_raw = { path = "event.plate.number" }
country_raw = { path = "event.plate.state", table = { BEL = "BE", NLD = "NL" } }
confidence = { path = "event.plate.score", max = 100 }
direction = { path = "event.heading", table = { "0" = "N", "1" = "S" } }
"""
    )
    acme = compile_mapping(load_mapping(f))
    payload = orjson.dumps(
        {
            "device": {"serial": "ACME-77"},
            "event": {"time": 1764331200, "plate": {"number": "1ABC123", "state": "BEL", "score": 90}, "heading": 1},
        }
    )
    read = read_to_dict(acme.decode(payload))
    assert read["camera_id"] == "ACME-77" and read["vendor"] == "acme-lpr" and read["plate_raw"] == "1ABC123"
    assert read["country_raw"] == "BE" and read["confidence"] == 0.9 and read["direction"] == "S"
    assert read["ts"] == "2025-11-28T12:00:00.000Z"
    assert acme.screen(payload) == "1ABC123"
    with pytest.raises(DecodeError, match=r"event.plate.score 150 is outside 0..100"):
        acme.decode(payload.replace(b"90", b"150"))
    with pytest.raises(DecodeError, match="device is missing"):
        acme.decode(b'{"event": {}}')


def test_mapping_mistakes_are_one_line_each_naming_file_and_key(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(
        """
name = "bad"
format = "json"
[fields]
camera_id = { path = "cam" }
ts = { path = "t" }
lat = { path = "lat", max = 5 }
"""
    )
    with pytest.raises(ConfigError) as err:
        load_mapping(f)
    lines = str(err.value).splitlines()
    assert all(line.startswith(f"{f}: ") for line in lines)
    text = str(err.value)
    assert "fields.plate_raw: required" in text and "fields.ts: time = " in text and "fields.lat.max" in text
    f.write_text('name = "x"\nformat = "xml-ish"\n')
    with pytest.raises(ConfigError, match="format"):
        load_mapping(f)
    f.write_text("name = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_mapping(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_mapping(tmp_path / "none.toml")


def test_every_shipped_mapping_names_its_source() -> None:
    for f in SHIPPED.glob("*.toml"):
        m = load_mapping(f)
        assert m.documentation and f.read_text().startswith("#"), f
        assert m.name == f.stem


def test_two_fields_on_one_path_are_refused() -> None:
    from sources.mapping import FieldSpec, Mapping

    for paths in (("camera", "camera.id"), ("camera.id", "camera")):
        m = Mapping(
            name="clash",
            format="json",
            fields={
                "camera_id": FieldSpec(path=paths[1]),
                "image_ref": FieldSpec(path=paths[0]),
                "ts": FieldSpec(path="t", time="iso"),
                "plate_raw": FieldSpec(path="p"),
            },
        )
        with pytest.raises(ConfigError, match="is also another field's"):
            compile_mapping(m)


# ---------------------------------------------------------------- XML: the two real-world formats, hostile input

INPUT = Path(__file__).resolve().parents[2] / "examples" / "input"


def sample_lines(name: str) -> list[bytes]:
    return [x for x in (INPUT / f"{name}.txt").read_bytes().splitlines() if x.strip()]


def test_the_hikvision_isapi_samples_give_their_reads() -> None:
    hik = shipped("hikvision-isapi")
    first, second, inactive, no_plate = sample_lines("hikvision-isapi")
    read = read_to_dict(hik.decode(first))
    assert (read["camera_id"], read["plate_raw"], read["country_raw"]) == ("CAM-BXL-0101", "1ABC123", "BE")
    assert read["ts"] == "2026-11-28T12:00:00.000Z"  # local time with its offset, to UTC
    assert (read["confidence"], read["lane"], read["direction"]) == (0.87, "2", "approaching")
    assert read["image_ref"] == "licensePlatePicture.jpg" and read["vendor"] == "hikvision-isapi"
    assert read_to_dict(hik.decode(second))["ts"] == "2026-11-28T12:00:07.000Z"
    from feblam.errors import Skipped

    with pytest.raises(Skipped, match="eventState = 'inactive'"):
        hik.decode(inactive)
    with pytest.raises(DecodeError, match="hik:ANPR/hik:licensePlate is missing") as exc:
        hik.decode(no_plate)
    assert not isinstance(exc.value, Skipped)
    with pytest.raises(Skipped, match="eventType"):
        hik.decode(first.replace(b"<eventType>ANPR", b"<eventType>VMD"))


def test_the_axis_lpv_samples_take_new_and_update_and_skip_lost() -> None:
    axis = shipped("axis-lpv")
    new, update, lost = sample_lines("axis-lpv")
    a, b = read_to_dict(axis.decode(new)), read_to_dict(axis.decode(update))
    assert (a["camera_id"], a["plate_raw"], a["country_raw"], a["direction"]) == (
        "CAM-ANT-0207",
        "1ABC123",
        "BEL",
        "unknown",
    )
    assert a["ts"] == "2026-11-28T12:00:00.123Z" and b["ts"] == "2026-11-28T12:00:00.400Z"
    assert b["plate_raw"] == "1ABC128" and b["direction"] == "in"  # the update: its plate text changed
    assert a["read_id"] != b["read_id"]  # carID names the vehicle, not the read
    from feblam.errors import Skipped

    with pytest.raises(Skipped, match="'lost'"):
        axis.decode(lost)


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
    + b']><EventNotificationAlert xmlns="http://www.hikvision.com/ver20/XMLSchema"><channelName>&lol9;</channelName></EventNotificationAlert>'
)


def test_hostile_xml_is_a_dead_letter_with_no_expansion_no_file_read_and_no_memory_growth(tmp_path: Path) -> None:
    import tracemalloc

    from feblam.errors import Skipped

    secret = tmp_path / "secret.txt"
    secret.write_text("the-content-of-a-local-file")
    external = (
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<EventNotificationAlert xmlns="http://www.hikvision.com/ver20/XMLSchema"><channelName>&xxe;</channelName>'
        "</EventNotificationAlert>"
    ).encode()
    deep = b"<a>" * 1000 + b"</a>" * 1000
    hik = shipped("hikvision-isapi")
    tracemalloc.start()
    try:
        for _ in range(50):
            for payload, reason in ((BOMB, "XML refused"), (external, "XML refused"), (deep, "deeper than")):
                with pytest.raises(DecodeError, match=reason) as exc:
                    hik.decode(payload)
                assert not isinstance(exc.value, Skipped)
                assert "the-content-of-a-local-file" not in str(exc.value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, f"{peak} bytes at the peak: an expansion"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"<",
                b">",
                b"</",
                b"/>",
                b"a",
                b"hik:",
                b"&amp;",
                b"&x;",
                b"<!DOCTYPE a>",
                b"<![CDATA[x]]>",
                b'="1"',
                b' xmlns="http://www.hikvision.com/ver20/XMLSchema"',
                b"<channelName>",
                b"</channelName>",
                b"\xff",
                b"<?xml?>",
            ]
        ),
        max_size=40,
    )
)
def test_any_xml_like_bytes_decode_or_are_refused_never_crash(parts: list[bytes]) -> None:
    for name in ("hikvision-isapi", "axis-lpv"):
        try:
            shipped_vendors[name].decode(b"".join(parts))
        except DecodeError:
            pass


shipped_vendors = {name: shipped(name) for name in ("hikvision-isapi", "axis-lpv")}


def test_a_mapping_may_require_an_optional_field_and_read_a_local_time_of_any_format(tmp_path: Path) -> None:
    f = tmp_path / "gate.toml"
    f.write_text(
        """
name = "gate-cam"
format = "json"
documentation = "a parking operator's gate camera, manual 3.2"
[fields]
camera_id = { path = "cam" }
ts = { path = "when", time = "local", format = "%d/%m/%Y %H:%M:%S", zone = "Europe/Paris" }
plate_raw = { path = "plate" }
lat = { path = "pos.lat", required = true }
lon = { path = "pos.lon", required = true }
"""
    )
    gate = compile_mapping(load_mapping(f))
    doc = {"cam": "G-1", "when": "28/11/2026 13:00:00", "plate": "AB123CD", "pos": {"lat": 48.8, "lon": 2.3}}
    read = read_to_dict(gate.decode(orjson.dumps(doc)))
    assert read["ts"] == "2026-11-28T12:00:00.000Z" and read["lat"] == 48.8
    summer = read_to_dict(gate.decode(orjson.dumps({**doc, "when": "28/06/2026 13:00:00"})))
    assert summer["ts"] == "2026-06-28T11:00:00.000Z"  # CEST
    with pytest.raises(DecodeError, match="does not exist in Europe/Paris"):
        gate.decode(orjson.dumps({**doc, "when": "29/03/2026 02:30:00"}))
    with pytest.raises(DecodeError, match="when '2026-11-28' is not a possible time"):
        gate.decode(orjson.dumps({**doc, "when": "2026-11-28"}))
    for missing in ({"pos": {"lat": 48.8}}, {"pos": None}, {"pos": {"lat": 48.8, "lon": ""}}):
        with pytest.raises(DecodeError, match="is missing"):
            gate.decode(orjson.dumps({**doc, **missing}))
