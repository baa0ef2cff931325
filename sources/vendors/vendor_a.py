"""vendor-a: nested JSON, confidence in percent, IVC country code, time with UTC offset.

```json
{"id":"a-000123","camera":{"id":"CAM-BXL-0001","lat":50.85,"lon":4.35,"lane":2},
 "plate":{"text":"1-abc-123","country":"B","confidence":87},
 "captured_at":"2026-11-28T13:00:00.123+01:00","image":"s3://anpr/a/000123.jpg"}
```
"""

from __future__ import annotations

from typing import Any

from feblam.errors import DecodeError
from feblam.model import Read
from sources.vendors._fields import (
    ReadTuple,
    iso_time,
    json_object,
    make_read,
    opt_float,
    opt_lane,
    opt_str,
    req_str,
)

VENDOR = "vendor-a"


def _obj(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        msg = f"{name} is missing" if value is None else f"{name} is not an object"
        raise DecodeError(msg)
    return value


def parse(payload: bytes) -> ReadTuple:
    doc = json_object(payload)
    camera = _obj(doc.get("camera"), "camera")
    plate = _obj(doc.get("plate"), "plate")
    conf = opt_float(plate.get("confidence"), "plate.confidence", 0.0, 100.0)
    return (
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
    return make_read(parse(payload))
