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
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_US = 1_000_000


def _num(m: npt.NDArray[np.int64], start: int, width: int) -> npt.NDArray[np.int64]:
    out = m[:, start]
    for i in range(start + 1, start + width):
        out = out * 10 + m[:, i]
    return out


def _days_from_civil(
    y: npt.NDArray[np.int64], mo: npt.NDArray[np.int64], d: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm, for arrays)."""
    y = y - (mo <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (mo + np.where(mo > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


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
        group = [texts[i] for i in rows.tolist()]
        joined = "".join(group)
        if not joined.isascii():  # rare: the non-ASCII rows are left out, the others parsed
            keep = np.fromiter(map(str.isascii, group), dtype=bool, count=len(group))
            rows = rows[keep]
            joined = "".join(t for t, k in zip(group, keep.tolist(), strict=True) if k)
            if not rows.shape[0]:
                continue
        raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(-1, length).astype(np.int64)
        m = raw - _ZERO
        digit = (m >= 0) & (m <= 9)
        good = np.ones(rows.shape[0], dtype=bool)
        for i in (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18):
            good &= digit[:, i]
        for i, ch in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":")):
            good &= raw[:, i] == ord(ch)
        end = 19
        fraction = np.zeros(rows.shape[0], dtype=np.int64)
        if frac:
            good &= raw[:, 19] == ord(".")
            for i in range(20, 20 + frac):
                good &= digit[:, i]
            fraction = _num(m, 20, frac) * (1000 if frac == 3 else 1)
            end = 20 + frac
        offset = np.zeros(rows.shape[0], dtype=np.int64)
        if zone == "Z":
            good &= raw[:, end] == ord("Z")
        elif zone == "+":
            sign = raw[:, end]
            good &= ((sign == ord("+")) | (sign == ord("-"))) & (raw[:, end + 3] == ord(":"))
            for i in (end + 1, end + 2, end + 4, end + 5):
                good &= digit[:, i]
            oh, om = _num(m, end + 1, 2), _num(m, end + 4, 2)
            good &= (oh <= 23) & (om <= 59)
            offset = np.where(sign == ord("-"), -1, 1) * (oh * 3600 + om * 60)
        year, month, day = _num(m, 0, 4), _num(m, 5, 2), _num(m, 8, 2)
        hour, minute, second = _num(m, 11, 2), _num(m, 14, 2), _num(m, 17, 2)
        month_ok = (month >= 1) & (month <= 12)
        leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
        dim = _DAYS_IN_MONTH[np.where(month_ok, month, 1)] + ((month == 2) & leap)
        good &= (year > 1) & (year < 9999) & month_ok & (day >= 1) & (day <= dim)
        good &= (hour <= 23) & (minute <= 59) & (second <= 59)
        days = _days_from_civil(year, np.where(month_ok, month, 1), day)
        seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
        us[rows] = seconds * _US + fraction
        ok[rows] = good
    us[~ok] = 0
    return us, ok
