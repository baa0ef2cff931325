"""What the vendor decoders share: the decoded-read type, msgspec field types, and the field checks.

Each decoder has two paths. The fast one decodes the payload with msgspec into
a typed struct whose field types carry the checks (non-empty strings, ranges,
times with an offset): validation happens in C while decoding. Anything that
struct refuses — bad input, but also the lenient forms the contract accepts
(a number in a string, an empty string for "absent") — goes to the checked path,
field by field in Python, which accepts those forms and words the error with
the field's path and value. Both paths give the same :class:`ReadFields`.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
import orjson
from msgspec import Meta

from feblam.errors import DecodeError
from feblam.model import EPOCH, Read

MAX_PAYLOAD_BYTES = 16 * 1024
MAX_EPOCH_MS = 253_402_300_800_000  # 9999-12-31

# Field types of the fast path (msgspec checks them while decoding).
Text = Annotated[str, Meta(min_length=1)]
Lat = Annotated[float, Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, Meta(ge=-180.0, le=180.0)]
Unit = Annotated[float, Meta(ge=0.0, le=1.0)]
Percent = Annotated[float, Meta(ge=0.0, le=100.0)]
AwareTime = Annotated[datetime, Meta(tz=True)]
EpochMs = Annotated[int, Meta(ge=0, lt=MAX_EPOCH_MS)]
Lane = str | int
FAST_PATH_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)


def fast(decode: Any, payload: bytes) -> Any:
    """The fast path: the payload size-checked and decoded into the vendor's typed struct, or None when
    the struct refuses it (then the decoder's checked path decides, and words the error)."""
    check_size(payload)
    return screen_struct(decode, payload)


def screen_struct(decode: Any, payload: bytes) -> Any:
    """For a vendor's ``screen``: the fast path's struct of a payload within the size limit, or None
    (the screen then leaves the payload to ``parse``, which decides and words the error)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        return decode(payload)
    except FAST_PATH_ERRORS:
        return None


def blank_none(value: Any) -> Any:
    """An empty string as absent (the contract's lenient form for optional fields)."""
    return None if value == "" else value


class ReadFields(msgspec.Struct, frozen=True, gc=False):
    """A decoded read on the hot path: the fields of :class:`Read`, by name.

    ``read_id`` is ``None`` when the vendor gives none (see :func:`make_read`).
    """

    read_id: str | None
    camera_id: str
    vendor: str
    ts: datetime
    plate_raw: str
    country_raw: str | None
    confidence: float | None
    lat: float | None
    lon: float | None
    lane: str | int | None
    direction: str | int | None
    image_ref: str | None


def check_size(payload: bytes) -> None:
    """Refuse a payload over the 16 KiB limit."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        msg = f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD_BYTES}-byte limit"
        raise DecodeError(msg)


def text_line(payload: bytes) -> str:
    """A size-checked payload as one line of UTF-8 text (the delimited formats)."""
    check_size(payload)
    try:
        return payload.decode("utf-8").strip("\r\n")
    except UnicodeDecodeError:
        msg = "line is not valid UTF-8"
        raise DecodeError(msg) from None


def json_object(payload: bytes) -> dict[str, Any]:
    """A size-checked payload parsed as one JSON object (the vendor-a, vendor-b and canonical formats)."""
    check_size(payload)
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        msg = f"not valid JSON: {exc}"
        raise DecodeError(msg) from None
    if not isinstance(doc, dict):
        msg = "payload is not an object"
        raise DecodeError(msg)
    return doc


def req_str(value: Any, name: str) -> str:
    """A required, non-empty string field."""
    if type(value) is str and value:
        return value
    if value is None or value == "":
        msg = f"{name} is missing"
        raise DecodeError(msg)
    if not isinstance(value, str):
        msg = f"{name} {value!r} is not a string"
        raise DecodeError(msg)
    return value


def opt_str(value: Any, name: str) -> str | None:
    """An optional string field (empty = absent)."""
    if type(value) is str:
        return value or None
    if value is None:
        return None
    if not isinstance(value, str):
        msg = f"{name} {value!r} is not a string"
        raise DecodeError(msg)
    return value


def opt_float(value: Any, name: str, lo: float, hi: float) -> float | None:
    """An optional number field in lo..hi (a number in a string is accepted)."""
    if value is None:
        return None
    if (type(value) is float or type(value) is int) and lo <= value <= hi:
        return float(value)  # the usual case; NaN and everything else take the checks below
    if value == "":
        return None
    if isinstance(value, bool):
        msg = f"{name} {value!r} is not a number"
        raise DecodeError(msg)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            msg = f"{name} {value!r} is not a number"
            raise DecodeError(msg) from None
    if not isinstance(value, int | float):
        msg = f"{name} {value!r} is not a number"
        raise DecodeError(msg)
    number = float(value)
    if not (lo <= number <= hi) or math.isnan(number):
        msg = f"{name} {value!r} is outside {lo:g}..{hi:g}"
        raise DecodeError(msg)
    return number


def opt_lane(value: Any, name: str) -> str | int | None:
    """An optional lane or direction: a string or an integer."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        msg = f"{name} {value!r} is not a string or an integer"
        raise DecodeError(msg)
    return value


def iso_time(value: Any, name: str, *, naive_is_utc: bool) -> datetime:
    """An ISO 8601 time field as aware UTC."""
    text = value if type(value) is str and value else req_str(value, name)
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        msg = f"{name} {text!r} is not a valid ISO 8601 time"
        raise DecodeError(msg) from None
    if ts.tzinfo is None:
        if not naive_is_utc:
            msg = f"{name} {text!r} has no UTC offset"
            raise DecodeError(msg)
        return ts.replace(tzinfo=UTC)
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        msg = f"{name} {text!r} is out of range"
        raise DecodeError(msg) from None


def epoch_ms(value: Any, name: str) -> datetime:
    """A milliseconds-since-epoch field as aware UTC."""
    if type(value) is int and 0 <= value < MAX_EPOCH_MS:
        return from_epoch_ms(value)
    if value is None or value == "":
        msg = f"{name} is missing"
        raise DecodeError(msg)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        msg = f"{name} {value!r} is not a number of milliseconds"
        raise DecodeError(msg)
    try:
        ms = int(value)
        if isinstance(value, float) and (math.isnan(value) or value != ms):
            raise ValueError
    except (ValueError, OverflowError):
        msg = f"{name} {value!r} is not a whole number of milliseconds"
        raise DecodeError(msg) from None
    try:
        return EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        msg = f"{name} {value!r} is not a possible time"
        raise DecodeError(msg) from None


def derived_read_id(camera_id: str, ts: datetime, plate_raw: str) -> str:
    """Deterministic id for a read whose vendor gives none."""
    text = f"{camera_id}\x1f{ts.isoformat()}\x1f{plate_raw}".encode()
    return "h-" + hashlib.blake2b(text, digest_size=12).hexdigest()


def make_read(f: ReadFields) -> Read:
    """Build the frozen :class:`Read` of decoded fields (deriving the id when missing)."""
    read_id = f.read_id
    if read_id is None:
        read_id = derived_read_id(f.camera_id, f.ts, f.plate_raw)
    return Read(
        read_id,
        f.camera_id,
        f.vendor,
        f.ts,
        f.plate_raw,
        f.country_raw,
        f.confidence,
        f.lat,
        f.lon,
        f.lane,
        f.direction,
        f.image_ref,
    )


def utc(ts: datetime) -> datetime:
    """An aware time in UTC; a naive one is taken as UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def from_epoch_ms(ms: int) -> datetime:
    """Milliseconds since the epoch as aware UTC."""
    return datetime.fromtimestamp(ms / 1000, UTC)  # exact to the millisecond


def json_plate_at(pattern: bytes, name: bytes) -> Callable[[bytes], str | None]:
    """A vendor's ``plate_at`` for JSON: the plate's field once in the payload (``name``), its value a string
    with no escapes (group 1 of ``pattern``); otherwise None, and the caller decodes."""
    regex = re.compile(pattern)

    def plate_at(payload: bytes) -> str | None:
        if payload.count(name) != 1:
            return None
        m = regex.search(payload)
        if m is None:
            return None
        try:
            return m.group(1).decode("utf-8")
        except UnicodeDecodeError:
            return None

    return plate_at
