"""canonical: one JSON object per read with exactly the field names of DESIGN section 2."""

from __future__ import annotations

from datetime import datetime

import msgspec

from feblam.model import Read
from sources.vendors._fields import (
    Lane,
    Lat,
    Lon,
    ReadFields,
    Text,
    Unit,
    blank_none,
    fast,
    iso_time,
    json_object,
    json_plate_at,
    make_read,
    opt_float,
    opt_lane,
    opt_str,
    req_str,
    screen_struct,
    utc,
)
from sources.vendors.batchjson import JsonScreen
from sources.vendors.sightings import JsonSighting

VENDOR = "canonical"


class _Payload(msgspec.Struct, gc=False):
    camera_id: Text
    ts: datetime  # a naive time is UTC
    plate_raw: Text
    read_id: str | None = None
    vendor: str | None = None
    country_raw: str | None = None
    confidence: Unit | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    lane: Lane | None = None
    direction: Lane | None = None
    image_ref: str | None = None


_decode = msgspec.json.Decoder(_Payload).decode
#: The batch decoding of the clone check (sources.vendors.sightings): the same struct, field by field as parse takes them.
SIGHTING = JsonSighting(
    VENDOR,
    _Payload,
    plate="plate_raw",
    camera="camera_id",
    time="ts",
    time_kind="iso",
    read_id="read_id",
    lat="lat",
    lon="lon",
    confidence="confidence",
    image="image_ref",
    country="country_raw",
    vendor_field="vendor",
)


def parse(payload: bytes) -> ReadFields:
    """The decoded fields of a canonical JSON read."""
    d = fast(_decode, payload)
    if d is None:
        return _checked(payload)
    return ReadFields(
        d.read_id or None,
        d.camera_id,
        d.vendor or VENDOR,
        utc(d.ts),
        d.plate_raw,
        d.country_raw or None,
        d.confidence,
        d.lat,
        d.lon,
        blank_none(d.lane),
        blank_none(d.direction),
        d.image_ref or None,
    )


def screen(payload: bytes) -> str:
    """The raw plate of a payload :func:`parse` accepts, without building its fields; "": only parse can tell."""
    d = screen_struct(_decode, payload)
    return d.plate_raw if d is not None and 1 < d.ts.year < 9999 else ""  # astimezone may overflow at the ends


#: The screen over a whole batch (the hot path): one msgspec call, equal to ``screen`` payload by payload.
SCREEN = JsonScreen(_Payload, "plate_raw", screen, time="ts")


def _checked(payload: bytes) -> ReadFields:
    """Field by field: the lenient forms, and the error message for anything else."""
    get = json_object(payload).get
    return ReadFields(
        opt_str(get("read_id"), "read_id"),
        req_str(get("camera_id"), "camera_id"),
        opt_str(get("vendor"), "vendor") or VENDOR,
        iso_time(get("ts"), "ts", naive_is_utc=True),
        req_str(get("plate_raw"), "plate_raw"),
        opt_str(get("country_raw"), "country_raw"),
        opt_float(get("confidence"), "confidence", 0.0, 1.0),
        opt_float(get("lat"), "lat", -90.0, 90.0),
        opt_float(get("lon"), "lon", -180.0, 180.0),
        opt_lane(get("lane"), "lane"),
        opt_lane(get("direction"), "direction"),
        opt_str(get("image_ref"), "image_ref"),
    )


def decode(payload: bytes) -> Read:
    """A canonical JSON read as a Read."""
    return make_read(parse(payload))


#: Where the plate sits in the raw payload (the retro-scan's pre-check; None: decode to know).
plate_at = json_plate_at(rb'"plate_raw"\s*:\s*"([^"\\]*)"', b'"plate_raw"')
