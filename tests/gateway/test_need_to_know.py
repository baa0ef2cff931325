"""Need to know: a desk sees only the matches its rule selects, covert ones only where allowed, everywhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.testclient import TestClient

from feblam.config import settings_from_dict
from gateway.board import Board
from gateway.cases import VehicleCases, escalate_due, take_hit, vehicle_of
from gateway.console.app import create_app
from gateway.console.auth import Users
from gateway.settings import Desks
from tests.support.gateway import PASSWORD, PASSWORD_HASH, gateway_doc, hit_doc, opened

T0 = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
COVERT = {
    "list_id": "SIS",
    "entry_id": "SIS-9",
    "category": "sis_alert",
    "priority": 1,
    "action": "observe",
    "match_kind": "exact",
    "owner": "SIRENE",
    "note": "discreet check: do not stop",
}
LEZ = {
    "list_id": "LEZ-BXL",
    "entry_id": "L-1",
    "category": "lez",
    "priority": 5,
    "action": "inform",
    "match_kind": "exact",
    "owner": "bxl-lez",
    "note": "euro 3 diesel",
}


def settings() -> Any:
    doc = gateway_doc()
    doc["desks"] = [
        {"name": "brussels", "camera_prefixes": ["CAM-BXL"], "escalate_to": "national"},
        {"name": "lez-partner", "kind": "partner", "lists": ["LEZ-BXL"]},
        {"name": "lez-zone", "kind": "zone", "lists": ["LEZ-BXL"]},
        {"name": "customs", "kind": "partner", "covert": True, "lists": ["SIS"]},
        {"name": "partner-all", "kind": "partner", "lists": ["BE-STOLEN", "LEZ-BXL", "SIS"]},
        {"name": "national", "max_priority": 1, "lists": ["NONE"]},
    ]
    for d in doc["desks"]:
        d["users"] = [{"name": f"{d['name']}-1", "password_hash": PASSWORD_HASH}]
    return settings_from_dict(doc)


def vehicle() -> dict[str, Any]:
    hit = hit_doc("CAM-BXL-1", priority=1)
    hit["matches"] = [COVERT, *hit["matches"], LEZ]
    return hit


def seen(changes: list[Any]) -> dict[str, list[str]]:
    return {c.desk: [m["list_id"] for m in c.hit["matches"]] for c in changes}


def test_each_desk_gets_only_the_matches_its_rule_selects_and_covert_only_where_allowed() -> None:
    s = settings()
    desks = Desks(s.desks, s.gateway)
    hit = vehicle()
    _, changes = opened(hit, desks, T0)
    assert seen(changes) == {
        "brussels": ["SIS", "BE-STOLEN", "LEZ-BXL"],  # a dispatch desk: covert included
        "lez-partner": ["LEZ-BXL"],  # never the SIS entry of the same vehicle
        "lez-zone": ["LEZ-BXL"],
        "customs": ["SIS"],  # a partner allowed covert matches of its own list
        "partner-all": ["BE-STOLEN", "LEZ-BXL"],  # a partner's default: no covert match
    }
    by_desk = {c.desk: c.hit for c in changes}
    assert by_desk["lez-partner"]["priority"] == 5 and by_desk["brussels"]["priority"] == 1  # the card's own priority


def test_a_covert_only_hit_reaches_no_desk_that_may_not_see_it() -> None:
    s = settings()
    desks = Desks(s.desks, s.gateway)
    hit = hit_doc("CAM-BXL-1")
    hit["matches"] = [COVERT]
    assert desks.route(hit) == ["brussels", "customs"]


def test_an_escalated_case_shows_what_the_escalating_desk_saw() -> None:
    s = settings()
    desks = Desks(s.desks, s.gateway)
    hit = vehicle()
    hc = VehicleCases(vehicle_of(hit))
    take_hit(hc, hit, ["brussels"], desks, T0)
    later = escalate_due(hc, desks, T0.replace(hour=21))
    assert seen([c for c in later if c.desk == "national"]) == {"national": ["SIS", "BE-STOLEN", "LEZ-BXL"]}


def sign_in(client: TestClient, user: str) -> None:
    form = client.get("/login")
    token = re.search(r"name=csrf value='([^']+)'", form.text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"csrf": token, "user": user, "password": PASSWORD}, follow_redirects=False)


def test_no_route_of_the_console_shows_a_partner_another_lists_match() -> None:
    s = settings()
    desks = Desks(s.desks, s.gateway)
    board = Board(desks.names)
    hit = vehicle()
    _, changes = opened(hit, desks, T0)
    board.apply(changes)
    client = TestClient(create_app(s.gateway, board, Users(s.desks), lambda _a: None))
    sign_in(client, "lez-partner-1")
    texts = [
        client.get("/api/board").content,
        client.get(f"/api/hits/{hit['hit_id']}").content,
    ]
    with client.stream("GET", "/api/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                texts.append(line[6:].encode())
                break
    for text in texts:
        assert b"LEZ-BXL" in text
        assert b"SIS" not in text and b"discreet" not in text and b"BE-STOLEN" not in text, text
    card = orjson.loads(texts[1])
    assert [m["list_id"] for m in card["hit"]["matches"]] == ["LEZ-BXL"]
