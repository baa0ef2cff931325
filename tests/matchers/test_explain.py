"""Why a hit matched (matchers.explain, feblam explain): the index's own matches, explained from the hit alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from feblam.model import Read
from feblam.serde import hit_to_dict, match_to_dict
from matchers.build import build_index
from matchers.explain import explain_hit, explain_match, explanation_text, pattern_parts
from matchers.normalize import OCR_CLASSES, fuzzy_key
from matchers.snapshot import load_hotlists
from tests.support.hotlists import entry, write_snapshot
from tests.support.processes import assert_one_clear_line, feblam
from tests.support.strategies import keys

NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)


def index_of(tmp: Path, rows: list[dict]):
    write_snapshot(tmp, "BE-STOLEN", rows, fmt="jsonl", toml="fuzzy = true\n")
    return build_index(load_hotlists(tmp))


def read_doc(key: str, country: str | None = "BE") -> dict:
    return {
        "read_id": "r1",
        "camera_id": "CAM-BXL-1",
        "ts": "2026-11-28T12:00:00.000Z",
        "plate": key,
        "country": country,
    }


def test_a_match_carries_the_entry_plate_country_and_validity(tmp_path: Path) -> None:
    idx = index_of(
        tmp_path,
        [entry("S-1", "1-ABC-O03", country="BE", valid_from="2026-11-01T00:00:00Z"), entry("P-1", "2-XY?-*")],
    )
    (ocr,) = idx.probe("1ABC003", "BE", NOON)
    doc = match_to_dict(ocr)
    assert (doc["entry_plate"], doc["entry_country"]) == ("1-ABC-O03", "BE")
    assert (doc["valid_from"], doc["valid_until"]) == ("2026-11-01T00:00:00.000Z", None)
    (pattern,) = idx.probe("2XYZ99", None, NOON)
    assert (pattern.match_kind, pattern.entry_plate, pattern.entry_country) == ("pattern", "2-XY?-*", None)


def test_explain_marks_the_ocr_substituted_characters_of_an_index_match(tmp_path: Path) -> None:
    idx = index_of(tmp_path, [entry("S-1", "1-ABC-O03", country="BE")])
    (m,) = idx.probe("1ABC0O3", "BE", NOON)
    assert m.match_kind == "ocr_equivalent"
    why = explain_match(read_doc("1ABC0O3"), match_to_dict(m))
    assert [(c["at"], c["read"], c["entry"]) for c in why["substituted"]] == [(5, "0", "O"), (6, "O", "0")]
    assert why["country"] == {"read": "BE", "entry": "BE", "agree": True}
    assert why["validity"]["inside"] is True
    text = explanation_text(
        explain_hit({"hit_id": "h", "index_version": "v1", "read": read_doc("1ABC0O3"), "matches": [match_to_dict(m)]})
    )
    assert "position 5: read 0 taken for O (OCR-equivalent)" in text
    assert "         " + "        ^ ^" in text  # the marks stand under the 5th and 6th characters


def test_pattern_parts_name_what_each_wildcard_stood_for() -> None:
    assert pattern_parts("1ABC123", "1AB?*3") == [
        {"pattern": "1AB", "read": "1AB"},
        {"pattern": "?", "read": "C"},
        {"pattern": "*", "read": "12"},
        {"pattern": "3", "read": "3"},
    ]
    assert pattern_parts("9ABC123", "1AB?*3") is None


def test_country_disagreement_and_a_window_missed_are_said() -> None:
    m = {"match_kind": "exact", "entry_plate": "AB12", "entry_country": "NL", "valid_until": "2026-11-01T00:00:00Z"}
    why = explain_match(read_doc("AB12", "BE"), m)
    assert why["country"]["agree"] is False and why["validity"]["inside"] is False


@given(keys, st.data())
def test_ocr_substitutions_are_exactly_the_differing_positions_of_one_class(key: str, data: st.DataObject) -> None:
    # an entry made from the read by swapping characters within their OCR class
    classes = {ch: cls for cls in OCR_CLASSES for ch in cls}
    entry_key = "".join(data.draw(st.sampled_from(classes[ch])) if ch in classes else ch for ch in key)
    why = explain_match(read_doc(key), {"match_kind": "ocr_equivalent", "entry_plate": entry_key})
    assert fuzzy_key(entry_key) == fuzzy_key(key)
    assert [c["at"] for c in why["substituted"]] == [
        i + 1 for i, (a, b) in enumerate(zip(key, entry_key, strict=False)) if a != b
    ]
    assert all(c["how"] != "differ" for c in why["characters"])


def test_feblam_explain_reads_a_file_of_hits_and_names_a_bad_line(tmp_path: Path) -> None:
    idx = index_of(tmp_path / "lists", [entry("S-1", "1-ABC-O03", country="BE")])
    from feblam.model import Hit

    read = Read("r1", "CAM-BXL-1", "canonical", NOON, "1-ABC-0O3", "B")
    hit = Hit("h1", "v1", 2, NOON, read, "1ABC0O3", "BE", tuple(idx.probe("1ABC0O3", "BE", NOON)))
    hits = tmp_path / "hits.jsonl"
    hits.write_bytes(orjson.dumps(hit_to_dict(hit)) + b"\n")
    out = feblam("explain", str(hits))
    assert out.returncode == 0, out.stderr
    assert "position 6: read O taken for 0 (OCR-equivalent)" in out.stdout
    hits.write_bytes(orjson.dumps(hit_to_dict(hit)) + b"\n{not json\n")
    assert_one_clear_line(feblam("explain", str(hits)), f"{hits}:2")
