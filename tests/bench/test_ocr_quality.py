"""The ocr-quality row measures what it says: every misread is an OCR case, every look-alike a valid plate."""

from __future__ import annotations

from bench.ocr_quality import ocr_quality


def test_the_row_compares_both_rules_on_one_seeded_set() -> None:
    a, b = ocr_quality(entries=300, seed=3), ocr_quality(entries=300, seed=3)
    assert a == b  # seeded: the same set, the same figures
    assert a["misreads"] == 300 and a["look_alikes"] > 0
    assert a["classes_recall"] == 1.0  # every misread is OCR-equivalent to its plate by construction
    assert a["classes_false_hits"] == a["look_alikes"]  # and so is every look-alike
    assert a["format_false_hits"] <= a["classes_false_hits"] and 0 < a["format_recall"] <= 1.0
    assert a["model"]["p"] == 0.08 and a["seed"] == 3
