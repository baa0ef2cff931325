"""vendor-a: nested JSON, confidence in percent, IVC country code, time with UTC offset.

```json
{"id":"a-000123","camera":{"id":"CAM-BXL-0001","lat":50.85,"lon":4.35,"lane":2},
 "plate":{"text":"1-abc-123","country":"B","confidence":87},
 "captured_at":"2026-11-28T13:00:00.123+01:00","image":"s3://anpr/a/000123.jpg"}
```
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import msgspec

from feblam.errors import DecodeError
from feblam.model import Read
from sources.vendors._fields import (
    AwareTime,
    Lane,
    Lat,
    Lon,
    Percent,
    ReadFields,
    Text,
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
)
from sources.vendors.batchjson import JsonScreen
from sources.vendors.sightings import JsonSighting

VENDOR = "vendor-a"


class _Camera(msgspec.Struct, gc=False):
    id: Text
    lat: Lat | None = None
    lon: Lon | None = None
    lane: Lane | None = None
    direction: Lane | None = None


class _Plate(msgspec.Struct, gc=False):
    text: Text
    country: str | None = None
    confidence: Percent | None = None


class _Payload(msgspec.Struct, gc=False):
    camera: _Camera
    plate: _Plate
    captured_at: AwareTime
    id: str | None = None
    image: str | None = None


_decode = msgspec.json.Decoder(_Payload).decode
#: The batch decoding of the clone check (sources.vendors.sightings): the same struct, field by field as parse takes them.
SIGHTING = JsonSighting(
    VENDOR,
    _Payload,
    plate="plate.text",
    camera="camera.id",
    time="captured_at",
    time_kind="iso_zoned",
    read_id="id",
    lat="camera.lat",
    lon="camera.lon",
    confidence="plate.confidence",
    confidence_divisor=100.0,
    image="image",
    country="plate.country",
)


def parse(payload: bytes) -> ReadFields:
    """The decoded fields of a vendor-a payload (DecodeError with the field path when invalid)."""
    d = fast(_decode, payload)
    if d is None:
        return _checked(payload)
    cam, plate, conf = d.camera, d.plate, d.plate.confidence
    return ReadFields(
        d.id or None,
        cam.id,
        VENDOR,
        d.captured_at.astimezone(UTC),
        plate.text,
        plate.country or None,
        None if conf is None else conf / 100.0,
        cam.lat,
        cam.lon,
        blank_none(cam.lane),
        blank_none(cam.direction),
        d.image or None,
    )


def screen(payload: bytes) -> str:
    """The raw plate of a payload :func:`parse` accepts, without building its fields; "": only parse can tell."""
    d = screen_struct(_decode, payload)
    return (
        d.plate.text if d is not None and 1 < d.captured_at.year < 9999 else ""
    )  # astimezone may overflow at the ends


#: The screen over a whole batch (the hot path): one msgspec call, equal to ``screen`` payload by payload.
SCREEN = JsonScreen(_Payload, "plate.text", screen, time="captured_at")


def _obj(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        msg = f"{name} is missing" if value is None else f"{name} is not an object"
        raise DecodeError(msg)
    return value


def _checked(payload: bytes) -> ReadFields:
    """Field by field: the lenient forms, and the error message for anything else."""
    doc = json_object(payload)
    camera = _obj(doc.get("camera"), "camera")
    plate = _obj(doc.get("plate"), "plate")
    conf = opt_float(plate.get("confidence"), "plate.confidence", 0.0, 100.0)
    return ReadFields(
        opt_str(doc.get("id"), "id"),
        req_str(camera.get("id"), "camera.id"),
        VENDOR,
        iso_time(doc.get("captured_at"), "captured_at", naive_is_utc=False),
        req_str(plate.get("text"), "plate.text"),
        opt_str(plate.get("country"), "plate.country"),
        None if conf is None else conf / 100.0,
        opt_float(camera.get("lat"), "camera.lat", -90.0, 90.0),
        opt_float(camera.get("lon"), "camera.lon", -180.0, 180.0),
        opt_lane(camera.get("lane"), "camera.lane"),
        opt_lane(camera.get("direction"), "camera.direction"),
        opt_str(doc.get("image"), "image"),
    )


def decode(payload: bytes) -> Read:
    """A vendor-a payload as a Read."""
    return make_read(parse(payload))


#: Where the plate sits in the raw payload (the retro-scan's pre-check; None: decode to know).
plate_at = json_plate_at(rb'"plate"\s*:\s*\{[^{}]*?"text"\s*:\s*"([^"\\]*)"', b'"plate"')
