"""The batch time parser: whatever it takes, the vendors' msgspec time types take as the same instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from feblam.model import EPOCH
from sources.timecols import iso_micros

Aware = msgspec.json.Decoder(Annotated[datetime, msgspec.Meta(tz=True)])
Any_ = msgspec.json.Decoder(datetime)


def _msgspec_us(text: str, *, naive_utc: bool) -> int | None:
    try:
        dt = (Any_ if naive_utc else Aware).decode(msgspec.json.encode(text))
    except msgspec.ValidationError:
        return None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
    return (dt - EPOCH) // timedelta(microseconds=1)


def _two(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).map(lambda v: f"{v:02d}")


times = st.builds(
    lambda y, mo, d, h, mi, s, frac, zone: f"{y:04d}-{mo}-{d}T{h}:{mi}:{s}{frac}{zone}",
    st.integers(0, 9999),
    _two(0, 13),
    _two(0, 32),
    _two(0, 24),
    _two(0, 60),
    _two(0, 61),
    st.sampled_from(["", ".123", ".000", ".999999", ".5", ".1234"]),
    st.sampled_from(["Z", "", "+01:00", "-05:30", "+23:59", "+24:00", "-00:00", "+0100", "z", "+01:60"]),
)
noisy = st.one_of(
    times,
    times.map(lambda t: t.replace("T", " ")),
    times.map(lambda t: t[:-1]),
    st.text(alphabet="0123456789-:T.Z+ ", max_size=32),
    st.text(max_size=32),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(noisy, max_size=30), st.booleans())
def test_what_the_batch_parser_takes_msgspec_takes_as_the_same_instant(texts: list[str], naive_utc: bool) -> None:
    us, ok = iso_micros(texts, naive_utc=naive_utc)
    for text, got, taken in zip(texts, us.tolist(), ok.tolist(), strict=True):
        if taken:
            assert _msgspec_us(text, naive_utc=naive_utc) == got, text


def test_the_usual_forms_are_taken() -> None:
    texts = ["2026-11-28T13:00:00.123+01:00", "2026-11-28T12:00:00.123Z", "2024-02-29T23:59:59Z", "2026-03-29T01:30:00"]
    us, ok = iso_micros(texts, naive_utc=True)
    assert ok.tolist() == [True, True, True, True]
    expected = [
        datetime(2026, 11, 28, 12, 0, 0, 123000, tzinfo=UTC),
        datetime(2026, 11, 28, 12, 0, 0, 123000, tzinfo=UTC),
    ]
    expected += [datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)]
    assert us.tolist() == [(e - EPOCH) // timedelta(microseconds=1) for e in expected]
    us, ok = iso_micros(["2026-03-29T01:30:00", "2025-02-29T00:00:00Z", "2026-11-28T13:00:00+24:00"], naive_utc=False)
    assert ok.tolist() == [False, False, False]  # naive refused where a zone is required; no 29 Feb 2025
