"""The list-quality count takes every entry of a case closed as false_read, not only those of its newest hit."""

from __future__ import annotations

from gateway.cases import BoardChange
from gateway.quality import false_reads
from tests.support.gateway import hit_doc


def test_a_false_read_counts_for_every_entry_of_the_case_with_the_owner_where_known() -> None:
    hit = hit_doc()
    event = {
        "state": "closed",
        "outcome": "false_read",
        "at": "2026-11-29T20:00:00.000Z",
        "entries": [["BE-STOLEN", "S-1"], ["LEZ", "L-9"]],  # L-9 came with an earlier sighting
        "reason": "O for 0",
    }
    got = false_reads(BoardChange("c1", "brussels", {}, hit, event))
    assert [(k, fr.owner, fr.case_id) for k, fr in got] == [
        ("BE-STOLEN/S-1", "police-be", "c1"),
        ("LEZ/L-9", None, "c1"),
    ]
    assert false_reads(BoardChange("c1", "brussels", {}, hit, {**event, "outcome": "intercepted"})) == []
