"""ISO 8601 times of a whole batch to microseconds since the epoch, in numpy (no datetime object a read).

The clone check (:mod:`flows.clones`) needs the capture time of every read;
``datetime.timestamp()`` costs about a microsecond a read, more than decoding
the payload. Here the times of a batch are parsed column by column: grouped by
length (each length has one layout), the characters of a group as one matrix,
the separators and digit ranges checked and the fields computed for all rows at
once.

Only the strict forms are taken: ``YYYY-MM-DDTHH:MM:SS``, an optional fraction
of 3 or 6 digits, then ``Z`` or ``±HH:MM`` (or, where ``naive_utc``, nothing:
UTC). A row outside them, an impossible date or a year at the ends of the
calendar (1 and 9999, where a zone shift overflows) is not parsed (``ok`` False):
its caller then decodes that payload the usual way, which decides and words the
error. So whatever this accepts, the vendors' msgspec time types accept as the
same instant (a property test holds it to that).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_ZERO = ord("0")
# length -> (fraction digits, zone: "" none, "Z", "+" an offset)
_LAYOUTS = {19: (0, ""), 20: (0, "Z"), 23: (3, ""), 24: (3, "Z"), 25: (0, "+"), 26: (6, ""), 27: (6, "Z")}
_LAYOUTS |= {29: (3, "+"), 32: (6, "+")}
_US = 1_000_000


def days_from_civil(
    y: npt.NDArray[np.int64], mo: npt.NDArray[np.int64], d: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm, for arrays)."""
    y = y - (mo <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (mo + np.where(mo > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _layout(
    length: int, frac: int, zone: str
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16], npt.NDArray[np.float64]]:
    """A layout's bounds per position (a digit: 0..9; a separator: itself, as a digit's offset from "0") and the
    weights that make each field of the digits in one matrix product: year, month, day, hour, minute, second,
    fraction, offset hours, offset minutes."""
    template = bytearray(b"0000-00-00T00:00:00")
    fields = [(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2)]
    end = 19
    if frac:
        template += b"." + b"0" * frac
        fields.append((20, frac))
        end = 20 + frac
    else:
        fields.append((end, 0))
    if zone == "Z":
        template += b"Z"
    elif zone == "+":
        template += b"+00:00"
        fields += [(end + 1, 2), (end + 4, 2)]
    if len(fields) < 9:
        fields += [(end, 0), (end, 0)]
    assert len(template) == length  # noqa: S101 - the table above and the layouts agree
    code = np.frombuffer(bytes(template), dtype=np.uint8).astype(np.int16) - _ZERO
    digit = code == 0
    lo = np.where(digit, 0, code).astype(np.int16)
    hi = np.where(digit, 9, code).astype(np.int16)
    if zone == "+":  # the sign: "+" or "-" (and "," between them, refused apart)
        lo[end], hi[end] = ord("+") - _ZERO, ord("-") - _ZERO
    weights = np.zeros((length, 9), dtype=np.float64)
    for k, (at, width) in enumerate(fields):
        for i in range(width):
            weights[at + i, k] = 10 ** (width - 1 - i)
    return lo, hi, weights


_LAYOUT_CACHE = {length: _layout(length, *layout) for length, layout in _LAYOUTS.items()}
_YEARS = np.arange(10_000, dtype=np.int64)
#: year -> leap (0/1), and the days from 1970-01-01 to its 1 January (every year four digits can write)
_LEAP = (((_YEARS % 4 == 0) & (_YEARS % 100 != 0)) | (_YEARS % 400 == 0)).astype(np.int64)
_YEAR_DAYS = days_from_civil(_YEARS, np.ones_like(_YEARS), np.ones_like(_YEARS))
#: [leap, month] -> days in the month, and days of the year before it (month 0 and 13+: none)
_DIM = np.zeros((2, 100), dtype=np.int64)
_BEFORE = np.zeros((2, 100), dtype=np.int64)
for _leap in (0, 1):
    _dim = [31, 28 + _leap, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    _DIM[_leap, 1:13] = _dim
    _BEFORE[_leap, 1:13] = np.cumsum([0, *_dim[:-1]])


def _parse_layout(
    raw: npt.NDArray[np.uint8], length: int, frac: int, zone: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    lo, hi, weights = _LAYOUT_CACHE[length]
    m = raw.astype(np.int16) - _ZERO
    good = ((m >= lo) & (m <= hi)).all(axis=1)
    if not good.all():
        m[~good] = 0  # the digits of the rows refused: every field then indexes the tables
    v = np.ascontiguousarray((m.astype(np.float64) @ weights).T).astype(np.int64)
    year, month, day, hour, minute, second, fraction, oh, om = v
    if frac == 3:
        fraction = fraction * 1000
    offset = 0
    if zone == "+":
        sign = raw[:, length - 6]
        good &= (sign != ord(",")) & (oh <= 23) & (om <= 59)
        offset = np.where(sign == ord("-"), -1, 1) * (oh * 3600 + om * 60)
    leap = _LEAP[year]
    good &= (year > 1) & (year < 9999) & (day >= 1) & (day <= _DIM[leap, month])  # month 0 or 13+: no days
    good &= (hour <= 23) & (minute <= 59) & (second <= 59)
    days = _YEAR_DAYS[year] + _BEFORE[leap, month] + day - 1
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * _US + fraction, good


def iso_micros(texts: Sequence[str], *, naive_utc: bool) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Each text's instant in microseconds since 1970 (UTC), and which texts were parsed (see the module)."""
    n = len(texts)
    us = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    if n == 0:
        return us, ok
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    for length in np.unique(lengths).tolist():
        layout = _LAYOUTS.get(length)
        if layout is None:
            continue
        frac, zone = layout
        if not zone and not naive_utc:
            continue
        rows = np.flatnonzero(lengths == length)
        group = texts if rows.shape[0] == n else [texts[i] for i in rows.tolist()]
        joined = "".join(group)
        if not joined.isascii():  # rare: the non-ASCII rows are left out, the others parsed
            keep = np.fromiter(map(str.isascii, group), dtype=bool, count=len(group))
            rows = rows[keep]
            joined = "".join(t for t, k in zip(group, keep.tolist(), strict=True) if k)
            if not rows.shape[0]:
                continue
        raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(-1, length)
        us[rows], ok[rows] = _parse_layout(raw, length, frac, zone)
    us[~ok] = 0
    return us, ok
