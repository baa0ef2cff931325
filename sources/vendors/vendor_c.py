"""vendor-c: one semicolon-separated text line in Europe/Brussels local time.

``CAM-LIE-0042;20261128130000123;AB-123-CD;FR;0.71``
(camera_id; yyyyMMddHHmmssfff local time; plate; country ISO alpha-2 or empty;
confidence). No read id: one is derived from camera, time and plate.

Local time is converted with the IANA rules for Europe/Brussels. A time inside
the spring-forward gap (02:00-03:00 on the last Sunday of March) does not exist
and is rejected; a time in the repeated autumn hour is taken as its first
occurrence (summer time, UTC+2), since the camera gives no offset to tell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from feblam.errors import DecodeError
from feblam.model import Read
from sources.timecols import days_from_civil
from sources.vendors._fields import (
    MAX_PAYLOAD_BYTES,
    ReadFields,
    make_read,
    opt_float,
    req_str,
    text_line,
)
from sources.vendors.sightings import Sightings

VENDOR = "vendor-c"
LOCAL_ZONE = ZoneInfo("Europe/Brussels")


@lru_cache(maxsize=4096)
def _hour_offset(y: int, mo: int, d: int, h: int) -> timedelta | None:
    """UTC offset of a local hour in Brussels, or None when that hour does not exist.

    Brussels changes offset only on whole hours, so the offset of an hour holds
    for each of its minutes.
    """
    local = datetime(y, mo, d, h, 30, tzinfo=LOCAL_ZONE)  # fold=0: first occurrence
    back = local.astimezone(UTC).astimezone(LOCAL_ZONE)
    if (back.year, back.month, back.day, back.hour) != (y, mo, d, h):
        return None
    return local.utcoffset()


_MINUTES: dict[str, datetime | None] = {}
#: The ``yyyyMMddHHmm`` prefixes (bytes) of :data:`_MINUTES` that are possible local minutes (for :func:`screen`).
_VALID_MINUTES: set[bytes] = set()
#: The ASCII characters ``str.strip()`` removes (``bytes.strip()`` alone leaves 0x1c-0x1f).
_STR_SPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def _minute_start(prefix: str) -> datetime | None:
    """UTC start of the local minute ``yyyyMMddHHmm``; None when it is impossible or in the DST gap."""
    try:
        y, mo, d = int(prefix[0:4]), int(prefix[4:6]), int(prefix[6:8])
        h, mi = int(prefix[8:10]), int(prefix[10:12])
        naive = datetime(y, mo, d, h, mi, tzinfo=UTC)
        offset = _hour_offset(y, mo, d, h)
    except (ValueError, OverflowError):
        return None
    if offset is None:
        return None
    try:
        return naive - offset
    except OverflowError:
        return None


def _minute(prefix: str) -> datetime | None:
    """:func:`_minute_start`, remembered (and, when possible, in :data:`_VALID_MINUTES` for the screen)."""
    try:
        return _MINUTES[prefix]
    except KeyError:
        if len(_MINUTES) > 100_000:
            _MINUTES.clear()
            _VALID_MINUTES.clear()
        start = _MINUTES[prefix] = _minute_start(prefix)
        if start is not None:
            _VALID_MINUTES.add(prefix.encode("ascii"))
        return start


def local_to_utc(text: str) -> datetime:
    """``yyyyMMddHHmmssfff`` in Brussels local time -> aware UTC datetime."""
    if len(text) != 17 or not text.isdigit() or not text.isascii():
        msg = f"time {text!r} is not yyyyMMddHHmmssfff"
        raise DecodeError(msg)
    start = _minute(text[:12])
    if start is not None:
        try:
            return start.replace(second=int(text[12:14]), microsecond=int(text[14:17]) * 1000)
        except ValueError:
            pass
    else:
        in_gap = False
        try:
            y, mo, d, h = int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10])
            datetime(y, mo, d, h, int(text[10:12]), tzinfo=UTC)
            in_gap = _hour_offset(y, mo, d, h) is None
        except (ValueError, OverflowError):
            pass
        if in_gap:
            msg = f"time {text!r} does not exist in Europe/Brussels (daylight-saving gap)"
            raise DecodeError(msg)
    msg = f"time {text!r} is not a possible time"
    raise DecodeError(msg)


def parse(payload: bytes) -> ReadFields:
    """The decoded fields of a vendor-c line (Brussels local time to UTC)."""
    parts = text_line(payload).split(";")
    n = len(parts)
    if n != 5:
        if not 3 <= n <= 5:
            msg = f"expected 5 fields separated by ';', got {n}"
            raise DecodeError(msg)
        parts += [""] * (5 - n)
    camera, when, plate, country, conf = parts
    return ReadFields(
        None,
        req_str(camera.strip(), "camera_id"),
        VENDOR,
        local_to_utc(req_str(when.strip(), "time")),
        req_str(plate.strip(), "plate"),
        country.strip() or None,
        opt_float(conf.strip(), "confidence", 0.0, 1.0),
        None,
        None,
        None,
        None,
        None,
    )


def screen(payload: bytes) -> str:
    """The raw plate of a line :func:`parse` accepts, without building its fields; "": only parse can tell.

    On the bytes, for ASCII lines whose time, plate and camera carry no surrounding
    whitespace (every camera's usual form); the time is checked against its local
    minute, converted once a minute (a possible minute, a second of 0-59).
    """
    if len(payload) > MAX_PAYLOAD_BYTES or not payload.isascii():
        return ""
    parts = payload.split(b";")
    if len(parts) != 5:
        return ""
    camera, when, plate, _country, conf = parts
    if (
        len(when) != 17
        or not when.isdigit()
        or when[12] > 53  # 53: "5", the tens of the second
        or not plate
        or plate[0] <= 32
        or plate[-1] <= 32
        or not camera
        or (camera[0] <= 32 and not camera.strip(_STR_SPACE))
    ):
        return ""
    if when[:12] not in _VALID_MINUTES and _minute(when[:12].decode("ascii")) is None:  # once a minute
        return ""
    conf = conf.strip(_STR_SPACE)
    if conf:
        try:
            c = float(conf)
        except ValueError:
            return ""
        if not 0.0 <= c <= 1.0:  # NaN too
            return ""
    return plate.decode("ascii")


def sightings(payloads: Sequence[bytes]) -> Sightings:
    """The sightings of a batch of lines (the clone check, sources.vendors.sightings), for the lines :func:`parse`
    certainly accepts: as the screen, ASCII lines of five fields whose camera and plate carry no surrounding
    whitespace; the times converted in numpy (local minutes to UTC once an hour of the batch)."""
    n = len(payloads)
    if n == 0:
        return Sightings.empty()
    sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=n)
    good = (sizes <= MAX_PAYLOAD_BYTES) & np.fromiter(map(bytes.isascii, payloads), dtype=bool, count=n)
    splits = [p.split(b";") for p in payloads]
    good &= np.fromiter(map(len, splits), dtype=np.int64, count=n) == 5
    rows = np.flatnonzero(good)
    if not rows.shape[0]:
        return Sightings.empty()
    fields = splits if rows.shape[0] == n else [splits[i] for i in rows.tolist()]
    cams_b, whens, plates_b, countries_b, confs_b = zip(*fields, strict=True)
    k = rows.shape[0]
    timed = np.fromiter(map(len, whens), dtype=np.int64, count=k) == 17
    timed &= np.fromiter(map(bytes.isdigit, whens), dtype=bool, count=k)
    cams = _texts(cams_b)
    plates = _texts(plates_b)
    countries: list[str | None] = [c or None for c in map(str.strip, _texts(countries_b))]
    ok = timed & _bare(cams) & _bare(plates)
    conf, conf_ok = _confidences(list(map(str.strip, _texts(confs_b))))
    ok &= conf_ok
    ts = np.zeros(k, dtype=np.int64)
    if timed.any():
        blank = b"0" * 17
        digits = np.frombuffer(
            b"".join(w if t else blank for w, t in zip(whens, timed.tolist(), strict=True)), np.uint8
        )
        ts, time_ok = _local_micros(digits.reshape(k, 17).astype(np.int64) - 48)
        ok &= time_ok
    none = np.full(k, np.nan)
    found = Sightings(rows, plates, cams, [VENDOR] * k, ts, none, none.copy(), conf, [None] * k, [None] * k, countries)
    return found if ok.all() else found.take(np.flatnonzero(ok))


def _texts(parts: Sequence[bytes]) -> list[str]:
    """ASCII byte strings as text, in one decode for all."""
    texts = b"\x00".join(parts).decode("ascii").split("\x00") if parts else []
    return texts if len(texts) == len(parts) else [p.decode("ascii") for p in parts]  # a NUL within a field


def _bare(texts: list[str]) -> npt.NDArray[np.bool_]:
    """Which texts are non-empty with no surrounding whitespace (as parse would keep them)."""
    if list(map(str.strip, texts)) == texts:
        return np.fromiter(map(bool, texts), dtype=bool, count=len(texts))
    return np.fromiter((bool(t) and t.strip() == t for t in texts), dtype=bool, count=len(texts))


def _confidences(texts: list[str]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Confidences as parse takes them (empty: none, NaN here), and which are valid numbers in 0..1."""
    empty = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) == 0
    filled = texts if not empty.any() else ["nan" if e else t for t, e in zip(texts, empty.tolist(), strict=True)]
    try:
        values = np.array(filled, dtype=np.float64)
    except ValueError:  # one is not a number: each on its own
        values = np.array([_float_or_bad(t) for t in texts], dtype=np.float64)
    return values, empty | ((values >= 0.0) & (values <= 1.0))


def _float_or_bad(text: str) -> float:
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return -1.0  # outside 0..1: not vouched for


def _local_micros(m: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """``yyyyMMddHHmmssfff`` digit rows in Brussels local time -> UTC microseconds, and which are possible
    times (a real date, a second of 0-59, not in the daylight-saving gap), as :func:`local_to_utc` decides."""

    def num(a: int, b: int) -> npt.NDArray[np.int64]:
        out = m[:, a]
        for i in range(a + 1, b):
            out = out * 10 + m[:, i]
        return out

    y, mo, d, h, mi, sec, ms = num(0, 4), num(4, 6), num(6, 8), num(8, 10), num(10, 12), num(12, 14), num(14, 17)
    ok = (y > 1) & (y < 9999) & (mo >= 1) & (mo <= 12) & (d >= 1) & (h <= 23) & (mi <= 59) & (sec <= 59)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    dim = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.where(ok, mo, 1)] + ((mo == 2) & leap)
    ok &= d <= dim
    days = days_from_civil(y, np.where(ok, mo, 1), np.where(ok, d, 1))
    hours = days * 24 + h
    offset = np.zeros(m.shape[0], dtype=np.int64)
    for hour in np.unique(hours[ok]).tolist():
        at = np.flatnonzero(ok & (hours == hour))
        j = int(at[0])
        off = _hour_offset(int(y[j]), int(mo[j]), int(d[j]), int(h[j]))
        if off is None:
            ok[at] = False
        else:
            offset[at] = int(off.total_seconds())
    seconds = hours * 3600 + mi * 60 + sec - offset
    return seconds * 1_000_000 + ms * 1000, ok


def decode(payload: bytes) -> Read:
    """A vendor-c line as a Read."""
    return make_read(parse(payload))


def plate_at(payload: bytes) -> str | None:
    """Where the plate sits in the raw line: its third field (None: fewer than four fields, or not UTF-8)."""
    parts = payload.split(b";", 3)
    if len(parts) < 4:
        return None
    try:
        return parts[2].decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
