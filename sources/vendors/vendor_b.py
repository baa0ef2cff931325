"""vendor-b: flat JSON, epoch milliseconds, ISO 3166 alpha-3 country, confidence 0..1.

```json
{"ReadId":"b-77","CameraId":"E40-KM12-N","Plate":"1ABC123","Country":"BEL","Conf":0.93,
 "TimestampMs":1764331200123,"Lat":50.9,"Lon":4.1,"Direction":"N"}
```
"""

from __future__ import annotations

import msgspec

from feblam.model import Read
from sources.vendors._fields import (
    EpochMs,
    Lane,
    Lat,
    Lon,
    ReadFields,
    Text,
    Unit,
    blank_none,
    epoch_ms,
    fast,
    from_epoch_ms,
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

VENDOR = "vendor-b"


class _Payload(msgspec.Struct, gc=False, rename="pascal"):
    camera_id: Text
    timestamp_ms: EpochMs
    plate: Text
    read_id: str | None = None
    country: str | None = None
    conf: Unit | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    lane: Lane | None = None
    direction: Lane | None = None
    image: str | None = None


_decode = msgspec.json.Decoder(_Payload).decode
#: The batch decoding of the clone check (sources.vendors.sightings): the same struct, field by field as parse takes them.
SIGHTING = JsonSighting(
    VENDOR,
    _Payload,
    plate="plate",
    camera="camera_id",
    time="timestamp_ms",
    time_kind="epoch_ms",
    read_id="read_id",
    lat="lat",
    lon="lon",
    confidence="conf",
    image="image",
    country="country",
)


def parse(payload: bytes) -> ReadFields:
    """The decoded fields of a vendor-b payload (DecodeError with the field name when invalid)."""
    d = fast(_decode, payload)
    if d is None:
        return _checked(payload)
    return ReadFields(
        d.read_id or None,
        d.camera_id,
        VENDOR,
        from_epoch_ms(d.timestamp_ms),
        d.plate,
        d.country or None,
        d.conf,
        d.lat,
        d.lon,
        blank_none(d.lane),
        blank_none(d.direction),
        d.image or None,
    )


def screen(payload: bytes) -> str:
    """The raw plate of a payload :func:`parse` accepts, without building its fields; "": only parse can tell."""
    d = screen_struct(_decode, payload)
    return "" if d is None else d.plate


#: The screen over a whole batch (the hot path): one msgspec call, equal to ``screen`` payload by payload.
SCREEN = JsonScreen(_Payload, "plate", screen)


def _checked(payload: bytes) -> ReadFields:
    """Field by field: the lenient forms, and the error message for anything else."""
    get = json_object(payload).get
    return ReadFields(
        opt_str(get("ReadId"), "ReadId"),
        req_str(get("CameraId"), "CameraId"),
        VENDOR,
        epoch_ms(get("TimestampMs"), "TimestampMs"),
        req_str(get("Plate"), "Plate"),
        opt_str(get("Country"), "Country"),
        opt_float(get("Conf"), "Conf", 0.0, 1.0),
        opt_float(get("Lat"), "Lat", -90.0, 90.0),
        opt_float(get("Lon"), "Lon", -180.0, 180.0),
        opt_lane(get("Lane"), "Lane"),
        opt_lane(get("Direction"), "Direction"),
        opt_str(get("Image"), "Image"),
    )


def decode(payload: bytes) -> Read:
    """A vendor-b payload as a Read."""
    return make_read(parse(payload))


#: Where the plate sits in the raw payload (the retro-scan's pre-check; None: decode to know).
plate_at = json_plate_at(rb'"Plate"\s*:\s*"([^"\\]*)"', b'"Plate"')
