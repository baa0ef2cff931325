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
    return plate.decode("ascii") if _confidence_ok(conf) else ""


def _confidence_ok(conf: bytes) -> bool:
    """Whether parse takes a line's confidence text: none, or a number in 0..1."""
    conf = conf.strip(_STR_SPACE)
    if not conf:
        return True
    try:
        c = float(conf)
    except ValueError:
        return False
    return 0.0 <= c <= 1.0  # NaN is not


#: Confidence texts already judged by :func:`_confidence_ok` (the batch screen's cache).
_CONFIDENCE_OK: dict[bytes, bool] = {}
_MINUTE_DIGITS = 10 ** np.arange(11, -1, -1, dtype=np.int64)
_SEVENTEEN = np.arange(17, dtype=np.int64)
#: The longest confidence text the batch screen judges itself (a longer one: the line takes :func:`screen`).
_CONFIDENCE_WIDTH = 24


def screens(payloads: Sequence[bytes]) -> list[str]:
    """:func:`screen` of each line of a batch, in numpy over the lines joined (the hot path): no Python object
    a line but its plate. A line of the usual form (within the size limit, ASCII without NUL, four ``;``, a
    camera and a plate with no surrounding whitespace, a time of 17 digits in a possible local minute with a
    second's tens of 0-5, a confidence :func:`screen` takes) gives its plate; each other line takes
    :func:`screen` on its own, which decides. Equal to ``list(map(screen, payloads))`` on any batch (a
    property test holds that)."""
    n = len(payloads)
    if n == 0:
        return []
    sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=n)
    joined = b"\n".join(payloads)
    raw = np.frombuffer(joined + _PAD, dtype=np.uint8)  # the pad: a gather past the end stays in the buffer
    ends = np.cumsum(sizes + 1) - 1  # each line's end (its line break; the last one's: the end)
    starts = ends - sizes
    semis = np.flatnonzero(raw == 59)
    if semis.shape[0] == 4 * n:  # four a line, in order, when each line's first and fourth are its own
        rows4 = semis.reshape(n, 4)
        ok = (rows4[:, 0] >= starts) & (rows4[:, 3] < ends)
    else:
        ok = np.zeros(n, dtype=bool)
    if not ok.all():
        line_of = np.searchsorted(ends, semis)
        ok = np.bincount(line_of, minlength=n) == 4
        semis = semis[ok[line_of]]
    ok &= sizes <= MAX_PAYLOAD_BYTES
    if not joined.isascii() or b"\x00" in joined:
        ok[np.searchsorted(ends, np.flatnonzero((raw[:-_PAD_BYTES] >= 128) | (raw[:-_PAD_BYTES] == 0)))] = False
    rows = np.flatnonzero(ok)
    quads = semis.reshape(-1, 4)
    if rows.shape[0] < quads.shape[0]:  # some lines of four ";" are too long or not ASCII
        quads = quads[ok[np.searchsorted(ends, quads[:, 0])]]
    good = _usual_lines(raw, starts[rows], ends[rows], quads)
    if not good.all():
        rows, quads = rows[good], quads[good]
    plates = _plates(raw, quads)
    if rows.shape[0] == n:
        return plates
    vouched = np.zeros(n, dtype=bool)
    vouched[rows] = True
    out = [screen(p) if not v else "" for p, v in zip(payloads, vouched.tolist(), strict=True)]
    for i, plate in zip(rows.tolist(), plates, strict=True):
        out[i] = plate
    return out


_PAD_BYTES = 32
_PAD = b"\x00" * _PAD_BYTES


def _usual_lines(
    raw: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64], semis: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Of lines with four ``;`` (at ``semis``, a row a line): which have the usual form :func:`screen` vouches for."""
    k = starts.shape[0]
    if k == 0:
        return np.zeros(0, dtype=bool)
    s0, s1, s2, s3 = semis[:, 0], semis[:, 1], semis[:, 2], semis[:, 3]
    ok = (s0 > starts) & (raw[starts] > 32)  # a camera starting with a printable byte
    ok &= (s2 > s1 + 1) & (raw[s1 + 1] > 32) & (raw[s2 - 1] > 32)  # a plate with none around it
    ok &= s1 - s0 == 18  # a time of 17 bytes
    digits = raw[(s0 + 1)[:, None] + _SEVENTEEN] - np.uint8(48)  # below "0" wraps above 9
    ok &= (digits <= 9).all(axis=1) & (digits[:, 12] <= 5)
    minutes = digits[:, :12].astype(np.int64) @ _MINUTE_DIGITS
    first = int(minutes[0])
    if (minutes == first).all():
        ok &= _possible_minute(first)
    else:
        codes, inverse = np.unique(minutes, return_inverse=True)
        possible = np.fromiter(map(_possible_minute, codes.tolist()), dtype=bool, count=codes.shape[0])
        ok &= possible[inverse.reshape(-1)]
    width = ends - s3 - 1
    ok &= width <= _CONFIDENCE_WIDTH
    w = min(int(width.max()), _CONFIDENCE_WIDTH)
    if w == 0:
        return ok
    span = np.arange(w, dtype=np.int64)
    texts = np.where(span < width[:, None], raw[(s3 + 1)[:, None] + span], np.uint8(0))
    values, inverse = np.unique(np.ascontiguousarray(texts).view(f"S{w}").reshape(-1), return_inverse=True)
    return ok & _plain_confidences(values.tolist())[inverse.reshape(-1)]


def _plates(raw: npt.NDArray[np.uint8], semis: npt.NDArray[np.int64]) -> list[str]:
    """The plate of each line (between its second and third ``;``), in one decode for all."""
    if not semis.shape[0]:
        return []
    first, length = semis[:, 1] + 1, semis[:, 2] - semis[:, 1]  # each plate with the ";" after it
    before = np.cumsum(length) - length
    at = np.arange(int(length.sum()), dtype=np.int64) + np.repeat(first - before, length)
    return raw[at].tobytes().decode("ascii").split(";")[:-1]


def _possible_minute(code: int) -> bool:
    prefix = f"{code:012d}"
    return prefix.encode("ascii") in _VALID_MINUTES or _minute(prefix) is not None


def _plain_confidences(confs: Sequence[bytes]) -> npt.NDArray[np.bool_]:
    """Which confidences :func:`screen` takes (:func:`_confidence_ok`), each distinct text judged once."""
    known = _CONFIDENCE_OK
    if len(known) > 4096:  # a camera with many distinct texts: the memory stays bounded
        known.clear()
    for conf in set(confs).difference(known):
        known[conf] = _confidence_ok(conf)
    return np.fromiter(map(known.__getitem__, confs), dtype=bool, count=len(confs))


#: The screen over a whole batch (the hot path).
SCREEN = screens


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
