from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matchers.countries import CODES, IVC
from matchers.normalize import country_code, fuzzy_key, pattern_key, plate_key
from tests.support.strategies import ALNUM, display_forms, keys


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (" 1-аbc-123 ", "1ABC123"),  # Cyrillic а
        ("1-ABC-123", "1ABC123"),
        ("1.abc.123", "1ABC123"),
        ("B-MW 1234", "BMW1234"),
        ("ΑΒΕ-123", "ABE123"),  # Greek capitals
        ("Müller 1", "MULLER1"),
        ("Ö-É-Ä 9", "OEA9"),
        ("ＡＢ１２", "AB12"),  # full-width forms (NFKC)
        ("Ø-Łk", "OLK"),
        ("---", ""),
    ],
)
def test_plate_key_examples(raw: str, key: str) -> None:
    assert plate_key(raw) == key


@given(st.text(max_size=30))
def test_plate_key_is_idempotent(raw: str) -> None:
    once = plate_key(raw)
    assert plate_key(once) == once
    assert set(once) <= set(ALNUM)


@given(st.data(), keys)
def test_every_display_form_has_the_same_key(data: st.DataObject, key: str) -> None:
    form = data.draw(display_forms(key))
    assert plate_key(form) == key


@pytest.mark.parametrize(
    ("a", "b"),
    [("0", "O"), ("O", "Q"), ("Q", "D"), ("1", "I"), ("2", "Z"), ("5", "S"), ("8", "B"), ("6", "G")],
)
def test_fuzzy_classes(a: str, b: str) -> None:
    assert fuzzy_key(f"X{a}7") == fuzzy_key(f"X{b}7")


@given(keys, st.data())
def test_fuzzy_key_is_equal_under_class_swaps(key: str, data: st.DataObject) -> None:
    classes = ["0OQD", "1I", "2Z", "5S", "8B", "6G"]
    swapped = []
    for ch in key:
        cls = next((c for c in classes if ch in c), ch)
        swapped.append(data.draw(st.sampled_from(cls)))
    assert fuzzy_key("".join(swapped)) == fuzzy_key(key)
    assert fuzzy_key(fuzzy_key(key)) == fuzzy_key(key)


def test_fuzzy_keeps_other_characters_apart() -> None:
    assert fuzzy_key("A") != fuzzy_key("4")
    assert fuzzy_key("1ABC123") == "1A8C123"


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("B", "BE"),
        ("BE", "BE"),
        ("BEL", "BE"),
        ("bel", "BE"),
        (" b ", "BE"),
        ("D", "DE"),
        ("DEU", "DE"),
        ("F", "FR"),
        ("FRA", "FR"),
        ("L", "LU"),
        ("NL", "NL"),
        ("NLD", "NL"),
        ("GB", "GB"),
        ("UK", "GB"),
        ("GBR", "GB"),
        ("CH", "CH"),
        ("A", "AT"),
        ("I", "IT"),
        ("E", "ES"),
        ("P", "PT"),
        ("S", "SE"),
        ("SLO", "SI"),
        ("SRB", "RS"),
        ("RKS", "XK"),
        ("FL", "LI"),
        ("EL", "GR"),
        ("MNE", "ME"),
        ("NMK", "MK"),
        ("RSM", "SM"),
        ("V", "VA"),
        ("IRL", "IE"),
    ],
)
def test_country_code_forms(raw: str, iso: str) -> None:
    assert country_code(raw) == iso


@pytest.mark.parametrize("raw", [None, "", "XX", "ZZZ", "BELG"])
def test_unknown_country_is_none(raw: str | None) -> None:
    assert country_code(raw) is None


EUROPE = (
    "AD AL AT BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GI GR HR HU IE IM IS IT JE LI LT LU LV "
    "MC MD ME MK MT NL NO PL PT RO RS RU SE SI SK SM TR UA VA XK"
).split()


@pytest.mark.parametrize("iso", EUROPE)
def test_every_european_country_is_covered_in_every_form(iso: str) -> None:
    import pycountry

    assert country_code(iso) == iso
    if iso != "XK":
        alpha3 = pycountry.countries.get(alpha_2=iso).alpha_3
        assert country_code(alpha3) == iso
    assert iso in IVC.values() or iso in {"GI", "IM", "JE"} or any(v == iso for v in IVC.values())


def test_ivc_codes_never_shadow_another_iso_code() -> None:
    for code, iso in IVC.items():
        assert CODES[code] == iso


def test_pattern_key_keeps_wildcards() -> None:
    assert pattern_key("1-ab?-12**") == "1AB?12*"
    assert pattern_key("*zz 77") == "*ZZ77"


def test_every_ocr_table_derives_from_the_one_rule() -> None:
    """DESIGN section 4's classes, and the byte and code tables of the index, agree character by character."""
    from matchers.index import _FUZZY_BYTES
    from matchers.keycode import _FUZZY_LUT
    from matchers.normalize import OCR_CLASSES, fuzzy_key

    assert OCR_CLASSES == ("0OQD", "1I", "2Z", "5S", "8B", "6G")
    for cls in OCR_CLASSES:
        assert {fuzzy_key(ch) for ch in cls} == {cls[0]}
    for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
        assert ch.encode().translate(_FUZZY_BYTES).decode() == fuzzy_key(ch)
        assert chr(_FUZZY_LUT[ord(ch)]) == fuzzy_key(ch)
