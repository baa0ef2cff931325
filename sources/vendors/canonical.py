"""canonical: one JSON object per read with exactly the field names of DESIGN section 2."""

from __future__ import annotations

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

VENDOR = "canonical"


def parse(payload: bytes) -> ReadTuple:
    get = json_object(payload).get
    return (
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
    return make_read(parse(payload))
