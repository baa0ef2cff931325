from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

from feblam.config import Rule, Settings, SinkSettings, replace
from feblam.model import DeadLetter, Hit, PayloadBatch
from flows.pipeline import FlowStats, build_flow, hit_id
from matchers.build import build_index
from matchers.index import IndexHolder
from matchers.snapshot import load_hotlists
from tests.support.hotlists import EXAMPLES, entry, write_snapshot


def canonical(read_id: str, plate: str, ts: str, country: str | None = "BE", camera: str = "CAM-BXL-1") -> PayloadBatch:
    doc = {"read_id": read_id, "camera_id": camera, "ts": ts, "plate_raw": plate, "country_raw": country}
    return PayloadBatch("canonical", "test", None, [orjson.dumps(doc)], [1], by_line=True)


@pytest.fixture(scope="module")
def sample_holder() -> IndexHolder:
    return IndexHolder(build_index(load_hotlists(EXAMPLES / "hotlists")))


def run_flow(items: list, holder: IndexHolder, settings: Settings | None = None, batch_size: int = 10):
    hits: list[Hit] = []
    dead: list[DeadLetter] = []
    stats = FlowStats()
    flow = build_flow(
        settings or Settings(),
        TestingSource(items, batch_size=batch_size),
        TestingSink(hits),
        deadletter=TestingSink(dead),
        holder=holder,
        stats=stats,
    )
    run_main(flow)
    return hits, dead, stats


def test_one_hit_carries_every_matching_entry_sorted(sample_holder: IndexHolder) -> None:
    hits, dead, stats = run_flow([canonical("r1", "1-abc-123", "2026-11-28T12:00:00Z")], sample_holder)
    assert dead == []
    (hit,) = hits
    assert [(m.list_id, m.entry_id, m.priority) for m in hit.matches] == [("BE-STOLEN", "S-1", 1), ("WANTED", "W-1", 2)]
    assert hit.priority == 1
    assert hit.plate == "1ABC123" and hit.country == "BE"
    assert hit.index_version == sample_holder.current.version
    assert hit.hit_id == hit_id("r1", hit.matches)
    assert stats.reads == 1 and stats.hits == 1


def test_hit_id_is_deterministic_across_runs(sample_holder: IndexHolder) -> None:
    items = [canonical("r1", "1-abc-123", "2026-11-28T12:00:00Z")]
    a, _, _ = run_flow(items, sample_holder)
    b, _, _ = run_flow(items, sample_holder)
    assert a[0].hit_id == b[0].hit_id
    assert a[0].emitted_at <= b[0].emitted_at


def test_bad_input_goes_to_deadletter_and_the_flow_goes_on(sample_holder: IndexHolder) -> None:
    items = [
        PayloadBatch("vendor-a", "topic-a", 0, [b"{not json"], [17]),
        PayloadBatch("vendor-zz", "topic-z", 1, [b"{}"], [3]),
        PayloadBatch("vendor-c", "file.txt", None, [b"\xff\xfe"], [9], by_line=True),
        canonical("r2", "1-NEW-001", "2026-11-28T12:00:00Z"),
    ]
    hits, dead, stats = run_flow(items, sample_holder)
    assert [h.read.read_id for h in hits] == ["r2"]
    assert [(d.source, d.partition, d.offset, d.line) for d in dead] == [
        ("topic-a", 0, 17, None),
        ("topic-z", 1, 3, None),
        ("file.txt", None, None, 9),
    ]
    assert "not valid JSON" in dead[0].error
    assert "unknown vendor" in dead[1].error
    assert dead[2].payload == b"\xff\xfe"
    assert stats.deadletters == 3 and stats.reads == 4


def test_duplicates_within_window_are_suppressed(sample_holder: IndexHolder) -> None:
    items = [
        canonical("r1", "1ABC123", "2026-11-28T12:00:00Z"),
        canonical("r2", "1ABC123", "2026-11-28T12:04:59Z"),
        canonical("r3", "1ABC123", "2026-11-28T12:05:00Z"),
        canonical("r4", "1NEW001", "2026-11-28T12:01:00Z"),
    ]
    hits, _, stats = run_flow(items, sample_holder, batch_size=1)
    assert sorted(h.read.read_id for h in hits) == ["r1", "r3", "r4"]
    assert stats.suppressed == 2  # r2's two matches
    hits0, _, _ = run_flow(items, sample_holder, Settings().without_dedup())
    assert len(hits0) == 4


def test_routes_follow_the_rules(sample_holder: IndexHolder) -> None:
    settings = replace(
        Settings(),
        sinks=(
            SinkSettings("all", path="x"),
            SinkSettings("p1", path="x", rule=Rule(max_priority=1)),
            SinkSettings("liege", path="x", rule=Rule(camera_prefixes=("CAM-LIE-",))),
            SinkSettings("observe", path="x", rule=Rule(actions=("observe",))),
            SinkSettings("sis", path="x", rule=Rule(lists=("SIS",), owners=("SIRENE",))),
        ),
    )
    items = [
        canonical("r1", "1ABC123", "2026-11-28T12:00:00Z"),
        canonical("r2", "1-LIE-042", "2026-11-28T12:00:00Z", camera="CAM-LIE-0042"),
        canonical("r3", "GZ123K", "2026-11-28T12:00:00Z", country="NL"),
    ]
    hits, _, _ = run_flow(items, sample_holder, settings)
    routes = {h.read.read_id: h.routes for h in hits}
    assert routes == {"r1": ("all", "p1"), "r2": ("all", "liege", "observe"), "r3": ("all", "p1", "sis")}


def test_named_sinks_receive_only_their_routes(sample_holder: IndexHolder) -> None:
    settings = replace(
        Settings(), sinks=(SinkSettings("all", path="x"), SinkSettings("p1", path="x", rule=Rule(max_priority=1)))
    )
    out_all: list[Hit] = []
    out_p1: list[Hit] = []
    items = [canonical("r1", "1ABC123", "2026-11-28T12:00:00Z"), canonical("r2", "1-LIE-042", "2026-11-28T12:00:00Z")]
    flow = build_flow(
        settings,
        TestingSource(items),
        sinks={"all": TestingSink(out_all), "p1": TestingSink(out_p1)},
        deadletter=TestingSink([]),
        holder=sample_holder,
    )
    run_main(flow)
    assert sorted(h.read.read_id for h in out_all) == ["r1", "r2"]
    assert [h.read.read_id for h in out_p1] == ["r1"]


def test_a_batch_is_matched_against_one_index_version(tmp_path: Path) -> None:
    write_snapshot(tmp_path / "a", "L", [entry("E1", "AB12")])
    write_snapshot(tmp_path / "b", "L", [entry("E1", "AB12"), entry("E2", "CD34")])
    one = build_index(load_hotlists(tmp_path / "a"))
    two = build_index(load_hotlists(tmp_path / "b"))
    holder = IndexHolder(one)

    import dataclasses

    from flows import pipeline
    from sources.vendors import VENDORS

    original = VENDORS["canonical"].parse
    calls = {"n": 0}

    def parse_and_swap(payload: bytes):
        calls["n"] += 1
        if calls["n"] == 2:
            holder.swap(two)
        return original(payload)

    items = [
        canonical("r1", "AB12", "2026-11-28T12:00:00Z", None),
        canonical("r2", "CD34", "2026-11-28T12:00:00Z", None),
        canonical("r3", "AB12", "2026-11-28T13:00:00Z", None),
    ]
    swapping = dataclasses.replace(VENDORS["canonical"], parse=parse_and_swap)
    pipeline.VENDORS = {**VENDORS, "canonical": swapping}  # swaps the index while a batch is processed
    try:
        hits, _, _ = run_flow(items, holder, batch_size=3)
    finally:
        pipeline.VENDORS = VENDORS
    # r2 (CD34) is only in version two, but its batch started on version one
    assert sorted((h.read.read_id, h.index_version) for h in hits) == [("r1", one.version), ("r3", one.version)]
    hits2, _, _ = run_flow(items, holder, batch_size=3)
    assert {h.index_version for h in hits2} == {two.version}


def test_a_covert_match_is_counted_without_naming_its_list(sample_holder: IndexHolder) -> None:
    from feblam.metrics import COVERT_LABEL, REGISTRY

    def count(list_id: str) -> float:
        value = REGISTRY.get_sample_value("feblam_matches_total", {"list_id": list_id, "match_kind": "exact"})
        return value or 0.0

    before_covert, before_sis = count(COVERT_LABEL), count("SIS")
    hits, _, _ = run_flow([canonical("covert-1", "AB-123-CD", "2026-11-28T12:00:00Z", "FR")], sample_holder)
    assert [m.action for h in hits for m in h.matches] == ["observe"]  # SIS-FR-1: discreet check
    assert count(COVERT_LABEL) == before_covert + 1 and count("SIS") == before_sis


def test_a_plate_key_longer_than_any_country_issues_is_a_dead_letter(sample_holder: IndexHolder) -> None:
    hits, dead, _ = run_flow(
        [
            canonical("long-1", "A" * 17, "2026-11-28T12:00:00Z"),
            canonical("long-2", "1-ABC-123" * 200, "2026-11-28T12:00:00Z"),
        ],
        sample_holder,
    )
    assert hits == [] and len(dead) == 2
    assert all("no country issues plates over 16" in d.error for d in dead)
