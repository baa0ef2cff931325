"""Routing rules (DESIGN 6 and 8): which hit sinks, and which desks, a hit goes to."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from feblam.config import Rule, SinkSettings
from feblam.model import Match
from sinks.routing import Router, rule_matches

STOLEN = Match("BE-STOLEN", "S-1", "stolen_vehicle", 1, "intercept", "exact", "police-be")
LEZ = Match("LEZ-BXL", "L-1", "lez", 5, "inform", "exact", "bxl-lez")
COVERT = Match("SIS", "SIS-9", "sis_alert", 2, "observe", "ocr_equivalent", "SIRENE")


def test_an_empty_rule_takes_every_hit() -> None:
    assert rule_matches(Rule(), [LEZ], "ANY-CAM")


def test_the_camera_prefix_decides_before_any_match() -> None:
    rule = Rule(camera_prefixes=("CAM-BXL", "E40-KM"))
    assert rule_matches(rule, [STOLEN], "CAM-BXL-0001")
    assert rule_matches(rule, [STOLEN], "E40-KM12-N")
    assert not rule_matches(rule, [STOLEN], "CAM-ANT-0001")


def test_every_match_condition_must_hold_for_one_and_the_same_match() -> None:
    # priority 1 comes from STOLEN, category lez from LEZ: no single match meets both.
    rule = Rule(max_priority=2, categories=("lez",))
    assert not rule_matches(rule, [STOLEN, LEZ], "CAM-BXL-1")
    assert rule_matches(Rule(max_priority=5, categories=("lez",)), [STOLEN, LEZ], "CAM-BXL-1")


def test_each_condition_alone() -> None:
    assert not rule_matches(Rule(max_priority=4), [LEZ], "c")
    assert rule_matches(Rule(actions=("observe",)), [STOLEN, COVERT], "c")
    assert not rule_matches(Rule(actions=("observe",)), [STOLEN, LEZ], "c")
    assert rule_matches(Rule(lists=("SIS",)), [COVERT], "c")
    assert not rule_matches(Rule(lists=("SIS",)), [STOLEN], "c")
    assert rule_matches(Rule(owners=("bxl-lez",)), [LEZ], "c")
    assert not rule_matches(Rule(owners=("bxl-lez",)), [STOLEN, COVERT], "c")


def test_a_hit_without_matches_goes_nowhere() -> None:
    assert not rule_matches(Rule(), [], "CAM-BXL-1")


def test_the_router_names_every_sink_in_order_and_tells_retro_from_live() -> None:
    router = Router(
        (
            SinkSettings("all", topic="hits"),
            SinkSettings("urgent", topic="hits.p1", rule=Rule(max_priority=1)),
            SinkSettings("retro-only", topic="hits.retro", rule=Rule(retro=True)),
            SinkSettings("live-only", topic="hits.live", rule=Rule(retro=False)),
        )
    )
    assert router.routes([STOLEN], "CAM-BXL-1") == ("all", "urgent", "live-only")
    assert router.routes([STOLEN], "CAM-BXL-1", retro=True) == ("all", "urgent", "retro-only")
    assert router.routes([LEZ], "CAM-BXL-1") == ("all", "live-only")


matches = st.lists(st.sampled_from([STOLEN, LEZ, COVERT]), max_size=3)
rules = st.builds(
    Rule,
    max_priority=st.integers(1, 5),
    categories=st.lists(st.sampled_from(["stolen_vehicle", "lez", "sis_alert"]), max_size=2).map(tuple),
    lists=st.lists(st.sampled_from(["BE-STOLEN", "LEZ-BXL", "SIS"]), max_size=2).map(tuple),
)


@given(rules, matches)
def test_a_rule_takes_a_hit_exactly_when_it_takes_one_of_its_matches(rule: Rule, ms: list[Match]) -> None:
    assert rule_matches(rule, ms, "CAM-1") == any(rule_matches(rule, [m], "CAM-1") for m in ms)
