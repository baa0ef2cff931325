"""Plate and country normalisation (DESIGN section 4), and nothing else."""

from __future__ import annotations

import re
import unicodedata

from matchers.countries import CODES

#: Cyrillic and Greek capitals that look like Latin ones.
_HOMOGLYPHS = {
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O",
    "Р": "P", "С": "C", "Т": "T", "Х": "X", "У": "Y", "Ѕ": "S", "І": "I", "Ј": "J",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}
#: Latin letters with no canonical decomposition.
_LATIN_EXTRA = {
    "Ø": "O", "Ł": "L", "Đ": "D", "Ħ": "H", "Ŧ": "T", "Æ": "AE", "Œ": "OE",
    "Þ": "TH", "ẞ": "SS", "Ŋ": "N",
}
_FOLD = str.maketrans({**_HOMOGLYPHS, **_LATIN_EXTRA})

#: OCR equivalence classes -> representative (fuzzy key).
_FUZZY = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "Z": "2", "S": "5", "B": "8", "G": "6"})

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
    return "?" in raw or "*" in raw


def pattern_key(raw: str) -> str:
    """A partial plate normalised like a key, keeping ``?`` and ``*`` (runs of ``*`` collapse)."""
    return _STARS.sub("*", _NOT_PATTERN.sub("", _fold(raw)))


def country_code(raw: str | None) -> str | None:
    """Any code form (IVC, ISO alpha-2, ISO alpha-3, any case) -> ISO alpha-2; unknown -> None."""
    if not raw:
        return None
    return CODES.get(raw.strip().upper())

