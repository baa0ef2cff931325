"""The ``ocr-quality`` row: today's OCR-equivalence rule and the format-aware one (matchers.formats) side by
side, on a generated set, as precision and recall.

The set (seeded): ``entries`` hotlist plates of the formats of BE, NL and FR; for each, one **misread** of it
(the vehicle itself, read wrong) and the **look-alikes**: other valid plates of its country that OCR
equivalence takes for it (innocent cars). The OCR confusion model: each character is misread with
probability ``p`` as another member of its class; a digit-letter confusion (0/O, 1/I, 2/Z, 5/S, 8/B, 6/G,
0/D, 0/Q) has weight 1, a letter-letter one (O/D/Q) weight ``letter_letter``; a misread has at least one
substitution (an exact read is no OCR case). Each rule is asked of every pair: recall is the share of
misreads it still matches, false hits the look-alikes it matches.
"""

from __future__ import annotations

import random
from typing import Any

from matchers.formats import FORMATS, conforms, verdict
from matchers.normalize import OCR_CLASSES, fuzzy_key

SHAPES = {"BE": ("1LLL999", "LLL999", "999LLL"), "NL": ("LL9999", "99LL99", "LL99LL", "9LLL99"), "FR": ("LL999LL",)}
LETTERS, DIGITS = "ABCDEFGHJKLMNOPRSTUVWXYZ", "0123456789"
CLASS_OF = {c: cls for cls in OCR_CLASSES for c in cls}


def _plate(rng: random.Random, shape: str) -> str:
    return "".join(
        rng.choice(DIGITS[1:]) if s == "1" else rng.choice(DIGITS) if s == "9" else rng.choice(LETTERS) for s in shape
    )


def _misread(rng: random.Random, plate: str, p: float, letter_letter: float) -> str:
    while True:
        out = []
        for c in plate:
            others = [o for o in CLASS_OF.get(c, "") if o != c]
            if others and rng.random() < p:
                weights = [letter_letter if o.isalpha() == c.isalpha() else 1.0 for o in others]
                c = rng.choices(others, weights)[0]
            out.append(c)
        read = "".join(out)
        if read != plate:
            return read


def _look_alikes(plate: str, country: str) -> list[str]:
    """Every valid plate of the country one or two OCR substitutions from ``plate``."""
    found: set[str] = set()
    frontier = {plate}
    for _ in range(2):
        nxt = set()
        for k in frontier:
            for i, c in enumerate(k):
                for o in CLASS_OF.get(c, ""):
                    if o != c:
                        nxt.add(k[:i] + o + k[i + 1 :])
        found |= nxt
        frontier = nxt
    return sorted(x for x in found if x != plate and conforms(x, country))


def ocr_quality(entries: int = 5_000, seed: int = 7, p: float = 0.08, letter_letter: float = 0.2) -> dict[str, Any]:
    rng = random.Random(seed)
    rules = {
        "classes": lambda r, e, c: fuzzy_key(r) == fuzzy_key(e),
        "format": lambda r, e, c: verdict(r, e, c) is not None,
    }
    counts = {name: {"tp": 0, "fn": 0, "fp": 0} for name in rules}
    misreads = innocents = 0
    for _ in range(entries):
        country = rng.choice(sorted(SHAPES))
        plate = _plate(rng, rng.choice(SHAPES[country]))
        while not any(c in CLASS_OF for c in plate):  # a plate OCR cannot confuse is no OCR case
            plate = _plate(rng, rng.choice(SHAPES[country]))
        read = _misread(rng, plate, p, letter_letter)
        misreads += 1
        alikes = _look_alikes(plate, country)
        innocents += len(alikes)
        for name, rule in rules.items():
            counts[name]["tp" if rule(read, plate, country) else "fn"] += 1
            counts[name]["fp"] += sum(1 for a in alikes if rule(a, plate, country))
    out: dict[str, Any] = {
        "name": "ocr-quality",
        "reads": misreads + innocents,
        "seconds": None,
        "reads_per_s": None,
        "seed": seed,
        "entries": entries,
        "misreads": misreads,
        "look_alikes": innocents,
        "model": {"p": p, "letter_letter": letter_letter, "countries": sorted(SHAPES), "formats": sorted(FORMATS)},
    }
    for name, c in counts.items():
        out[f"{name}_recall"] = round(c["tp"] / misreads, 4)
        out[f"{name}_false_hits"] = c["fp"]
        out[f"{name}_precision"] = round(c["tp"] / (c["tp"] + c["fp"]), 4) if c["tp"] + c["fp"] else None
    out["false_hits_ratio"] = (
        round(counts["format"]["fp"] / counts["classes"]["fp"], 4) if counts["classes"]["fp"] else None
    )
    return out
