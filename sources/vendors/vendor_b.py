"""vendor-b: flat JSON, epoch milliseconds, ISO 3166 alpha-3 country, confidence 0..1.

```json
{"ReadId":"b-77","CameraId":"E40-KM12-N","Plate":"1ABC123","Country":"BEL","Conf":0.93,
 "TimestampMs":1764331200123,"Lat":50.9,"Lon":4.1,"Direction":"N"}
```
"""

from __future__ import annotations

from feblam.model import Read
from sources.vendors._fields import (
    ReadTuple,
    epoch_ms,
    json_object,
    make_read,
    opt_float,
    opt_lane,
    opt_str,
    req_str,
)

VENDOR = "vendor-b"


def parse(payload: bytes) -> ReadTuple:
    get = json_object(payload).get
    return (
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
    return make_read(parse(payload))
