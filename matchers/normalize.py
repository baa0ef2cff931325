"""Plate and country normalisation (DESIGN section 4), and nothing else."""

from __future__ import annotations

import re
import unicodedata

from matchers.countries import CODES

#: The longest plate key any country issues (DESIGN 4); a longer one is bad input.
MAX_KEY_LENGTH = 16
#: Cyrillic and Greek capitals that look like Latin ones.
_HOMOGLYPHS = {
    # Cyrillic
    "А": "A",
    "В": "B",
    "Е": "E",
    "К": "K",
    "М": "M",
    "Н": "H",
    "О": "O",
    "Р": "P",
    "С": "C",
    "Т": "T",
    "Х": "X",
    "У": "Y",
    "Ѕ": "S",
    "І": "I",
    "Ј": "J",
    # Greek
    "Α": "A",
    "Β": "B",
    "Ε": "E",
    "Ζ": "Z",
    "Η": "H",
    "Ι": "I",
    "Κ": "K",
    "Μ": "M",
    "Ν": "N",
    "Ο": "O",
    "Ρ": "P",
    "Τ": "T",
    "Υ": "Y",
    "Χ": "X",
}
#: Latin letters with no canonical decomposition.
_LATIN_EXTRA = {
    "Ø": "O",
    "Ł": "L",
    "Đ": "D",
    "Ħ": "H",
    "Ŧ": "T",
    "Æ": "AE",
    "Œ": "OE",
    "Þ": "TH",
    "ẞ": "SS",
    "Ŋ": "N",
}
_FOLD = str.maketrans({**_HOMOGLYPHS, **_LATIN_EXTRA})

#: The OCR equivalence classes of DESIGN section 4, each with its representative first.
#: The one definition: the fuzzy key here, and the byte and code tables of the index, derive from it.
OCR_CLASSES: tuple[str, ...] = ("0OQD", "1I", "2Z", "5S", "8B", "6G")
#: Every character that is not its class's representative, and that representative.
OCR_FROM = "".join(cls[1:] for cls in OCR_CLASSES)
OCR_TO = "".join(cls[0] * (len(cls) - 1) for cls in OCR_CLASSES)
_FUZZY = str.maketrans(OCR_FROM, OCR_TO)

_ASCII_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NOT_KEY = re.compile(r"[^A-Z0-9]+")
_NOT_PATTERN = re.compile(r"[^A-Z0-9?*]+")
_STARS = re.compile(r"\*+")


def _fold(text: str) -> str:
    """NFKC, upper case, look-alikes to Latin, diacritics removed."""
    text = unicodedata.normalize("NFKC", text).upper().translate(_FOLD)
    if not text.isascii():
        decomposed = unicodedata.normalize("NFD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).translate(_FOLD)
    return text


def plate_key(raw: str) -> str:
    """The plate key: only A-Z and 0-9, look-alikes and diacritics folded.

    Returns ``""`` when nothing is left; callers treat that as bad input.
    """
    if raw.isascii():
        if raw.isalnum():
            return raw.upper()
        return _NOT_KEY.sub("", raw.upper())
    return _NOT_KEY.sub("", _fold(raw))


def fuzzy_key(key: str) -> str:
    """The OCR-equivalence key of a plate key: each character replaced by its class."""
    return key.translate(_FUZZY)


def is_pattern(raw: str) -> bool:
    """Whether an entry plate is a partial plate (``?`` or ``*``)."""
    return "?" in raw or "*" in raw


def pattern_key(raw: str) -> str:
    """A partial plate normalised like a key, keeping ``?`` and ``*`` (runs of ``*`` collapse)."""
    return _STARS.sub("*", _NOT_PATTERN.sub("", _fold(raw)))


def country_code(raw: str | None) -> str | None:
    """Any code form (IVC, ISO alpha-2, ISO alpha-3, any case) -> ISO alpha-2; unknown -> None."""
    if not raw:
        return None
    return CODES.get(raw.strip().upper())
