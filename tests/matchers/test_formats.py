"""Format-aware OCR matching: the country's plate format tells a misread from another car's plate."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from feblam.model import Match
from matchers.formats import FORMATS, conforms, judged, verdict
from matchers.normalize import OCR_CLASSES, fuzzy_key


def test_the_format_says_which_character_a_misread_stands_for() -> None:
    assert verdict("1A8C123", "1ABC123", "BE") == "ocr_format"  # an 8 where a letter must be: a B
    assert verdict("1ABC12B", "1ABC128", "BE") == "ocr_format"  # a B where a digit must be: an 8
    assert verdict("10BC123", "1OBC123", "BE") == "ocr_format"
    assert verdict("1ADC123", "1AOC123", "BE") is None  # both plates of the format: another car
    assert verdict("MA8123", "MAB123", "DE") is None  # M-A 8123 is a German plate of its own
    assert verdict("AB123CD", "A8123CD", "FR") == "ocr_equivalent"  # the entry is no FR plate: today's rule
    assert verdict("1A8C123", "1ABC123", None) == "ocr_equivalent"  # no country: today's rule
    assert verdict("1A8C123", "1ABC123", "IT") == "ocr_equivalent"  # no format known: today's rule
    assert verdict("FEB1AM", "FEBLAM", "BE") == "ocr_equivalent"  # a personalised entry: today's rule
    # one needed substitution does not carry an unneeded one with it
    assert verdict("1A8D123", "1ABO123", "BE") is None


def match(kind: str, plate: str) -> Match:
    return Match(
        list_id="L",
        entry_id=plate,
        category="stolen_vehicle",
        priority=2,
        action="intercept",
        match_kind=kind,  # type: ignore[arg-type]
        owner=None,
        note=None,
        entry_plate=plate,
        entry_country="BE",
        valid_from=None,
        valid_until=datetime(2030, 1, 1, tzinfo=UTC),
    )


def test_judged_keeps_exact_and_pattern_relabels_and_drops_ocr() -> None:
    ms = [match("exact", "1ABC123"), match("pattern", "1AB?123"), match("ocr_equivalent", "1-ABC-123")]
    assert [m.match_kind for m in judged(ms, "1A8C123", "BE")] == ["exact", "pattern", "ocr_format"]
    assert [m.match_kind for m in judged([match("ocr_equivalent", "1AOC123")], "1ADC123", "BE")] == []


SWAPS = {c: [o for o in cls if o != c] for cls in OCR_CLASSES for c in cls}
LETTERS, DIGITS = "ABCDEFGHJKLMNOPRSTUVWXYZ", "0123456789"


@st.composite
def plate_and_read(draw: st.DrawFn) -> tuple[str, str, str]:
    country = draw(st.sampled_from(sorted(FORMATS)))
    shape = draw(st.sampled_from(["1LLL999", "LLL999", "999LLL", "LL9999", "99LL99", "LL999LL", "LLL999", "LL99LL"]))
    entry = "".join(draw(st.sampled_from(DIGITS[1:] if (s == "1") else DIGITS if s == "9" else LETTERS)) for s in shape)
    read = list(entry)
    for i in draw(st.lists(st.integers(0, len(entry) - 1), max_size=3)):
        if SWAPS.get(read[i]):
            read[i] = draw(st.sampled_from(SWAPS[read[i]]))
    return country, entry, "".join(read)


@settings(max_examples=500, deadline=None)
@given(plate_and_read())
def test_never_a_substitution_the_format_forbids(case: tuple[str, str, str]) -> None:
    country, entry, read = case
    assert fuzzy_key(read) == fuzzy_key(entry)
    v = verdict(read, entry, country)
    if v == "ocr_format":
        assert conforms(entry, country) and not conforms(read, country)
        for i, (r, e) in enumerate(zip(read, entry, strict=True)):
            if r != e:  # undo any one substitution: the format refuses the result
                assert not conforms(entry[:i] + r + entry[i + 1 :], country)
    if conforms(entry, country) and conforms(read, country) and read != entry:
        assert v is None  # another car's plate is no hit
    if not conforms(entry, country):
        assert v == "ocr_equivalent"  # personalised or another format: today's rule


@settings(max_examples=200, deadline=None)
@given(plate_and_read(), st.sampled_from(["exact", "pattern"]))
def test_format_aware_matching_never_loses_an_exact_or_pattern_match(case: tuple[str, str, str], kind: str) -> None:
    country, entry, read = case
    assert judged([match(kind, entry)], read, country) == [match(kind, entry)]
