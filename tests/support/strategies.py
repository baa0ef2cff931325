"""Shared hypothesis strategies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#: Latin letter -> Cyrillic / Greek look-alike capitals.
LOOKALIKES = {
    "A": "АΑ",
    "B": "ВΒ",
    "E": "ЕΕ",
    "K": "КΚ",
    "M": "МΜ",
    "H": "НΗ",
    "O": "ОΟ",
    "P": "РΡ",
    "C": "С",
    "T": "ТΤ",
    "X": "ХΧ",
    "Y": "УΥ",
    "Z": "Ζ",
    "I": "Ι",
    "N": "Ν",
}
DIACRITICS = {"A": "ÄÁÀÂ", "E": "ÉÈÊË", "O": "ÖÓÔ", "U": "ÜÚÙ", "I": "ÍÏ", "C": "Ç", "N": "Ñ"}
SEPARATORS = ["", " ", "-", ".", "·", "  ", "_", "/"]

keys = st.text(alphabet=ALNUM, min_size=1, max_size=10)
long_keys = st.text(alphabet=ALNUM, min_size=12, max_size=16)
any_keys = st.one_of(keys, keys, long_keys)
countries = st.sampled_from([None, "BE", "NL", "DE", "FR", "LU", "GB", "PL"])
times = st.datetimes(  # hypothesis wants naive bounds and attaches the zone itself
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001
    max_value=datetime(2030, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@st.composite
def display_forms(draw: st.DrawFn, key: str) -> str:
    """A way a camera or a clerk might write the plate ``key``."""
    out = [draw(st.sampled_from(["", " "]))]
    for ch in key:
        choices = [ch, ch.lower()]
        if ch in LOOKALIKES:
            choices.extend(LOOKALIKES[ch])
            choices.extend(c.lower() for c in LOOKALIKES[ch])
        if ch in DIACRITICS:
            choices.extend(DIACRITICS[ch])
            choices.extend(c.lower() for c in DIACRITICS[ch])
        out.append(draw(st.sampled_from(choices)))
        out.append(draw(st.sampled_from(SEPARATORS)))
    out.append(draw(st.sampled_from(["", " "])))
    return "".join(out)


@st.composite
def validity(draw: st.DrawFn) -> tuple[datetime | None, datetime | None]:
    start = draw(st.one_of(st.none(), times))
    if start is None:
        end = draw(st.one_of(st.none(), times))
    else:
        end = draw(st.one_of(st.none(), st.integers(1, 10**6).map(lambda s: start + timedelta(seconds=s))))
    return start, end
