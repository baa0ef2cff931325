"""Format-aware OCR matching (DESIGN 4): a country's plate formats, and which OCR substitutions they justify.

An OCR-equivalent match (:data:`matchers.normalize.OCR_CLASSES`) says the read and
the entry differ only by characters of one class (0/O/Q/D, 1/I, 2/Z, 5/S, 8/B,
6/G). Where the country's plate formats are known, the format tells a misread from
another car:

- the entry must be a plate of the format (else it is personalised, or of a country
  not in the table: the classes' rule of today applies, ``ocr_equivalent``);
- a read that is itself a plate of the format is another car's plate: not a hit;
- every substitution must be needed: undoing any one of them must leave a string
  the format refuses (a ``0`` where the format wants a letter is an ``O``; a ``B``
  where it wants a digit is an ``8``). A read that breaks its format and conforms
  through the substitutions is ``ocr_format``, a stronger candidate.

The formats are regular expressions over the plate key (letters and digits, no
separators), one table, each country's source cited. :func:`verdict` is the one rule;
the job applies it when ``[hotlists] ocr_rule = "format"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from feblam.model import Match
from matchers.normalize import plate_key

#: Plate formats by ISO country, over the plate key. Sources: BE: FOD Mobiliteit/DIV, the plate series of
#: 1973 (ABC123), 2008 (123ABC) and 2010 (1ABC123); NL: RDW, "sidecodes" 1 to 14 (letters L, digits 9); FR:
#: ANTS, SIV since 2009 (AB123CD) and the FNI series before it (123AB45, 1234AB12); DE: FZV Anlage 4
#: (district 1-3 letters, 1-2 letters, 1-4 digits, E or H); LU: SNCA (AB1234, and the numeric 1-6 digits).
FORMATS: dict[str, tuple[str, ...]] = {
    "BE": (r"[1-9][A-Z]{3}[0-9]{3}", r"[A-Z]{3}[0-9]{3}", r"[0-9]{3}[A-Z]{3}"),
    "NL": (
        r"[A-Z]{2}[0-9]{4}",  # 1  XX-99-99
        r"[0-9]{4}[A-Z]{2}",  # 2  99-99-XX
        r"[0-9]{2}[A-Z]{2}[0-9]{2}",  # 3  99-XX-99
        r"[A-Z]{2}[0-9]{2}[A-Z]{2}",  # 4  XX-99-XX
        r"[A-Z]{4}[0-9]{2}",  # 5  XX-XX-99
        r"[0-9]{2}[A-Z]{4}",  # 6  99-XX-XX
        r"[0-9]{2}[A-Z]{3}[0-9]",  # 7  99-XXX-9
        r"[0-9][A-Z]{3}[0-9]{2}",  # 8  9-XXX-99
        r"[A-Z]{2}[0-9]{3}[A-Z]",  # 9  XX-999-X
        r"[A-Z][0-9]{3}[A-Z]{2}",  # 10 X-999-XX
        r"[A-Z]{3}[0-9]{2}[A-Z]",  # 11 XXX-99-X
        r"[A-Z][0-9]{2}[A-Z]{3}",  # 12 X-99-XXX
        r"[0-9][A-Z]{2}[0-9]{3}",  # 13 9-XX-999
        r"[0-9]{3}[A-Z]{2}[0-9]",  # 14 999-XX-9
    ),
    "FR": (r"[A-Z]{2}[0-9]{3}[A-Z]{2}", r"[0-9]{1,4}[A-Z]{1,3}[0-9]{2}"),
    "DE": (r"[A-Z]{2,5}[1-9][0-9]{0,3}[EH]?",),
    "LU": (r"[A-Z]{2}[0-9]{4}", r"[0-9]{1,6}"),
}
_COMPILED = {c: re.compile("|".join(f"(?:{p})" for p in pats)) for c, pats in FORMATS.items()}

Verdict = Literal["ocr_format", "ocr_equivalent"]


def conforms(key: str, country: str) -> bool:
    """Whether a plate key is a plate of one of ``country``'s formats."""
    pattern = _COMPILED.get(country)
    return pattern is not None and pattern.fullmatch(key) is not None


def verdict(read_key: str, entry_key: str, country: str | None) -> Verdict | None:
    """What an OCR-equivalent pair of keys is under the country's formats: ``ocr_format`` (the format explains
    every substitution), ``ocr_equivalent`` (no format to judge by: the classes' rule), or None (not a hit: the
    read is a plate of its own, or a substitution the format does not need)."""
    pattern = _COMPILED.get(country or "")
    if pattern is None or len(read_key) != len(entry_key) or pattern.fullmatch(entry_key) is None:
        return "ocr_equivalent"
    if pattern.fullmatch(read_key) is not None:
        return None
    for i, (r, e) in enumerate(zip(read_key, entry_key, strict=True)):
        if r != e and pattern.fullmatch(entry_key[:i] + r + entry_key[i + 1 :]) is not None:
            return None  # this substitution is not needed: the format allows the read's character here
    return "ocr_format"


def judged(matches: Sequence[Match], read_key: str, country: str | None) -> list[Match]:
    """A read's matches with every OCR-equivalent one judged by :func:`verdict` (kept, made ``ocr_format``,
    or left out); exact and pattern matches are never touched."""
    out: list[Match] = []
    for m in matches:
        if m.match_kind != "ocr_equivalent":
            out.append(m)
            continue
        v = verdict(read_key, plate_key(m.entry_plate or ""), country or m.entry_country)
        if v == "ocr_equivalent":
            out.append(m)
        elif v == "ocr_format":
            out.append(replace(m, match_kind="ocr_format"))
    return out
