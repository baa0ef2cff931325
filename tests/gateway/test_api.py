"""The machine API: a desk's systems with bearer tokens, their desk's cases only, paged; a stream that resumes
with Last-Event-ID; idempotent actions in the client's name; audit of every case shown and every refusal.

The app runs over a real :class:`Board`, :class:`Journal` and store; the stream is read from a real uvicorn
server on loopback (the Kafka path of the actions is covered by the system test against the broker).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from feblam.config import replace, settings_from_dict
from flows.operations import HttpServer
from gateway.board import Board, BoardSink
from gateway.cases import VehicleCases, apply_action, take_hit
from gateway.console.app import create_app
from gateway.console.auth import Users
from gateway.journal import Journal
from gateway.openapi import document, markdown
from gateway.settings import Desks
from gateway.store import Store, token_hash
from tests.gateway.test_console import Recorder
from tests.support.gateway import PASSWORD_HASH, desk_action, gateway_doc, hit_doc

TOKENS = {
    "cad-brussels": "t-brussels-" + "x" * 30,
    "cad-antwerp": "t-antwerp-" + "y" * 30,
    "lez-operator": "t-lez" + "z" * 30,
}
ROOT = Path(__file__).resolve().parents[2]


def settings(**gateway: Any) -> Any:
    doc = gateway_doc(**gateway)
    doc["desks"][0]["clients"] = [{"name": "cad-brussels", "token_sha256": token_hash(TOKENS["cad-brussels"])}]
    doc["desks"][1]["clients"] = [{"name": "cad-antwerp", "token_sha256": token_hash(TOKENS["cad-antwerp"])}]
    doc["desks"].append(
        {
            "name": "lez",
            "kind": "partner",
            "lists": ["LEZ-BXL", "BE-STOLEN"],
            "users": [{"name": "lez-1", "password_hash": PASSWORD_HASH}],
            "clients": [{"name": "lez-operator", "token_sha256": token_hash(TOKENS["lez-operator"])}],
        }
    )
    return settings_from_dict(doc)


class Gateway:
    """The console's app with the API over a board, a journal and a store; ``hit`` feeds it as the flow would."""

    def __init__(self, tmp: Path, **gateway: Any) -> None:
        self.settings = settings(**gateway)
        self.desks = Desks(self.settings.desks, self.settings.gateway)
        names = [d.name for d in self.settings.desks]
        self.board = Board(names)
        self.store = Store(tmp)
        self.journal = Journal(self.store, names, 72).load()
        self.sink = BoardSink(self.board, self.journal).build("board", 0, 1)
        self.recorder = Recorder()
        self.audit: list[dict[str, Any]] = []
        self.active = True
        self.vehicles: dict[str, VehicleCases] = {}
        from gateway.api import Clients

        self.app = create_app(
            self.settings.gateway,
            self.board,
            Users(self.settings.desks),
            self.recorder,
            audit=self.audit.append,
            journal=self.journal,
            store=self.store,
            clients=Clients(self.settings.desks),
            active=lambda: self.active,
        )

    def hit(self, hit: dict[str, Any]) -> dict[str, Any]:
        vc = VehicleCases(hit["hit_id"])
        self.vehicles[hit["hit_id"]] = vc
        self.sink.write_batch(take_hit(vc, hit, self.desks.route(hit), self.desks, datetime.now(UTC)))
        return hit

    def act(self, hit: dict[str, Any], desk: str, kind: str, outcome: str | None = None) -> None:
        changes, refused = apply_action(
            self.vehicles[hit["hit_id"]], desk_action(hit, desk, kind, datetime.now(UTC), outcome)
        )
        assert refused is None
        self.sink.write_batch(changes)


def bearer(client: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[client]}"}


@pytest.fixture
def gw(tmp_path: Path) -> Gateway:
    return Gateway(tmp_path)


def test_nothing_without_a_clients_token_and_each_refusal_is_audited(gw: Gateway) -> None:
    http = TestClient(gw.app)
    h = gw.hit(hit_doc("CAM-BXL-1"))
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "Basic abc"}):
        for path in ("/api/v1/cases", "/api/v1/events", f"/api/v1/cases/{h['hit_id']}", "/api/v1/me"):
            resp = http.get(path, headers=headers)
            assert resp.status_code == 401, (path, headers)
            assert resp.headers["www-authenticate"].startswith("Bearer")
    assert http.post(f"/api/v1/cases/{h['hit_id']}/acknowledge", headers={"idempotency-key": "k"}).status_code == 401
    assert gw.recorder.actions == []
    refused = [e for e in gw.audit if e["kind"] == "refused"]
    assert refused and all(e["via"] == "api" and e["user"] is None for e in refused)
    # a session cookie of the console is no API credential, and an API token no console session
    assert http.get("/api/board", headers=bearer("cad-brussels")).status_code == 401
    assert http.get("/api/v1/me", headers=bearer("cad-brussels")).json() == {
        "client": "cad-brussels",
        "desk": "brussels",
        "kind": "dispatch",
    }


def test_refused_tokens_are_throttled_per_address(tmp_path: Path) -> None:
    gw = Gateway(tmp_path, login_max_failures=2)
    http = TestClient(gw.app)
    codes = [http.get("/api/v1/cases", headers={"authorization": "Bearer wrong"}).status_code for _ in range(22)]
    assert codes[:20] == [401] * 20 and codes[20:] == [429, 429]  # ten times login_max_failures an address
    assert http.get("/api/v1/cases", headers=bearer("cad-brussels")).status_code == 429
    assert int(http.get("/api/v1/me", headers=bearer("cad-brussels")).headers["retry-after"]) > 0


def test_a_client_lists_its_own_desks_cases_paged_with_the_feed_number_to_follow_from(gw: Gateway) -> None:
    http = TestClient(gw.app)
    mine = [gw.hit(hit_doc("CAM-BXL-1")) for _ in range(5)]
    other = gw.hit(hit_doc("CAM-ANT-1"))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        doc = http.get("/api/v1/cases", params=params, headers=bearer("cad-brussels")).json()
        assert doc["desk"] == "brussels" and doc["last_event_id"] == 5
        seen += [c["case_id"] for c in doc["cases"]]
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and sorted(seen) == sorted(h["hit_id"] for h in mine) and len(set(seen)) == 5
    assert other["hit_id"] not in seen
    assert http.get(f"/api/v1/cases/{other['hit_id']}", headers=bearer("cad-brussels")).status_code == 404
    one = http.get(f"/api/v1/cases/{mine[0]['hit_id']}", headers=bearer("cad-brussels")).json()
    assert one["case"]["state"] == "new" and one["hit"]["hit_id"] == mine[0]["hit_id"]
    # filters
    gw.act(mine[0], "brussels", "acknowledge")
    acked = http.get("/api/v1/cases", params={"state": "acknowledged"}, headers=bearer("cad-brussels")).json()
    assert [c["case_id"] for c in acked["cases"]] == [mine[0]["hit_id"]]
    later = http.get("/api/v1/cases", params={"since": acked["cases"][0]["case"]["at"]}, headers=bearer("cad-brussels"))
    assert [c["case_id"] for c in later.json()["cases"]] == [mine[0]["hit_id"]]
    for bad in ({"state": "lost"}, {"limit": "0"}, {"limit": "9999"}, {"since": "yesterday"}, {"cursor": "!!"}):
        resp = http.get("/api/v1/cases", params=bad, headers=bearer("cad-brussels"))
        assert resp.status_code == 400 and resp.json()["error"].split(":")[0] in bad, bad
    shown = [e for e in gw.audit if e["kind"] == "shown"]
    assert shown and all(e["user"] == "cad-brussels" and e["via"] == "api" and e["desk"] == "brussels" for e in shown)
    assert other["hit_id"] not in {i for e in shown for i in e["hit_ids"]}


def test_a_partners_system_sees_no_covert_match_and_no_other_list(gw: Gateway) -> None:
    http = TestClient(gw.app)
    hit = hit_doc("CAM-BXL-1")
    hit["matches"][0]["action"] = "observe"  # covert: a police matter
    lez = {**hit["matches"][0], "list_id": "LEZ-BXL", "entry_id": "L-1", "action": "inform", "priority": 5}
    sis = {**hit["matches"][0], "list_id": "SIS", "entry_id": "Q-1", "action": "intercept"}
    hit["matches"] += [lez, sis]
    gw.hit(hit)
    cards = http.get("/api/v1/cases", headers=bearer("lez-operator")).json()["cases"]
    assert len(cards) == 1
    assert [m["list_id"] for m in cards[0]["hit"]["matches"]] == ["LEZ-BXL"]
    assert cards[0]["hit"]["priority"] == 5
    assert orjson.dumps(cards).count(b"SIS") == 0 and b"observe" not in orjson.dumps(cards)
    # brussels' system sees every match of its rule, the covert one included
    bxl = http.get("/api/v1/cases", headers=bearer("cad-brussels")).json()["cases"]
    assert {m["list_id"] for m in bxl[0]["hit"]["matches"]} == {"BE-STOLEN", "LEZ-BXL", "SIS"}


def test_actions_are_idempotent_signed_in_the_clients_name_and_checked_as_the_consoles(gw: Gateway) -> None:
    http = TestClient(gw.app)
    h = gw.hit(hit_doc("CAM-BXL-1"))
    ant = gw.hit(hit_doc("CAM-ANT-1"))
    url = f"/api/v1/cases/{h['hit_id']}"
    key = {"idempotency-key": "3f1c-ack-1"}
    assert http.post(f"{url}/acknowledge", headers=bearer("cad-brussels")).status_code == 400  # no key
    first = http.post(f"{url}/acknowledge", headers={**bearer("cad-brussels"), **key})
    assert first.status_code == 202 and first.json() == {
        "status": "accepted",
        "case_id": h["hit_id"],
        "action": "acknowledge",
    }
    again = http.post(f"{url}/acknowledge", headers={**bearer("cad-brussels"), **key})
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert len(gw.recorder.actions) == 1  # the retry made no second action
    action = gw.recorder.actions[0]
    assert (action["user"], action["desk"], action["kind"], action["hit_id"]) == (
        "cad-brussels",
        "brussels",
        "acknowledge",
        h["hit_id"],
    )
    assert gw.desks.users["brussels"] >= {"cad-brussels", "brussels-1"}  # the flow takes the client's actions
    # the same key for another request, another desk's case, a state that forbids it, a missing reason
    assert (
        http.post(f"{url}/close", json={"outcome": "arrested"}, headers={**bearer("cad-brussels"), **key}).status_code
        == 422
    )
    other = http.post(
        f"/api/v1/cases/{ant['hit_id']}/acknowledge", headers={**bearer("cad-brussels"), "idempotency-key": "k2"}
    )
    assert other.status_code == 404
    gw.act(h, "brussels", "acknowledge")
    conflict = http.post(f"{url}/acknowledge", headers={**bearer("cad-brussels"), "idempotency-key": "k3"})
    assert conflict.status_code == 409
    no_reason = http.post(
        f"{url}/close", json={"outcome": "false_read"}, headers={**bearer("cad-brussels"), "idempotency-key": "k4"}
    )
    assert no_reason.status_code == 400 and "needs a reason" in no_reason.json()["error"]
    for body in (b"[1]", b"{", b'{"outcome": "arrested", "plate": "1ABC123"}', b'{"outcome": 3}'):
        resp = http.post(
            f"{url}/close", content=body, headers={**bearer("cad-brussels"), "idempotency-key": f"b{body!r}"}
        )
        assert resp.status_code == 400, body
    closed = http.post(
        f"{url}/close",
        json={"outcome": "not_found", "reason": "gone before the patrol came"},
        headers={**bearer("cad-brussels"), "idempotency-key": "k5"},
    )
    assert closed.status_code == 202
    assert [a["kind"] for a in gw.recorder.actions] == ["acknowledge", "close"]
    assert gw.recorder.actions[1]["reason"] == "gone before the patrol came"


def test_a_standby_serves_only_its_health(gw: Gateway) -> None:
    http = TestClient(gw.app)
    gw.active = False
    for path in ("/api/v1/cases", "/", "/login", "/api/board"):
        resp = http.get(path, headers=bearer("cad-brussels"))
        assert resp.status_code == 503 and "standby" in resp.json()["error"], path
    assert http.get("/live").status_code == 200
    gw.active = True
    assert http.get("/api/v1/cases", headers=bearer("cad-brussels")).status_code == 200


# ---------------------------------------------------------------- the stream, over a real server


@pytest.fixture
def served(gw: Gateway) -> Iterator[tuple[Gateway, str]]:
    server = HttpServer("127.0.0.1", 0, "gateway.http_port").start(gw.app)
    try:
        yield gw, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def read_changes(url: str, client: str, want: int, last: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """``want`` changes of the stream (from ``last``), as (id, data); a reset as (-1, data)."""
    import httpx2

    got: list[tuple[int, dict[str, Any]]] = []
    headers = bearer(client) | ({"last-event-id": last} if last is not None else {})
    with (
        httpx2.Client(timeout=httpx2.Timeout(10.0)) as http,
        http.stream("GET", f"{url}/api/v1/events", headers=headers) as resp,
    ):
        assert resp.status_code == 200, resp.read()
        ident, event = None, None
        for line in resp.iter_lines():
            if line.startswith("id: "):
                ident = int(line[4:])
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                doc = orjson.loads(line[6:])
                got.append((-1 if event == "reset" else ident, doc))  # type: ignore[arg-type]
                if event == "reset" or len(got) == want:
                    return got
    return got


def test_a_client_that_reconnects_with_last_event_id_misses_nothing_and_gets_nothing_twice(served: Any) -> None:
    gw, url = served
    hits = [gw.hit(hit_doc("CAM-BXL-1")) for _ in range(3)]
    first = read_changes(url, "cad-brussels", 3, last="0")
    assert [i for i, _ in first] == [1, 2, 3]
    assert [d["case_id"] for _, d in first] == [h["hit_id"] for h in hits]
    assert all(d["event"]["state"] == "new" and d["seq"] == i for i, d in first)
    # while the client is away: two more changes
    gw.act(hits[0], "brussels", "acknowledge")
    gw.hit(hit_doc("CAM-BXL-1"))
    rest = read_changes(url, "cad-brussels", 2, last=str(first[-1][0]))
    assert [i for i, _ in rest] == [4, 5]
    assert rest[0][1]["event"]["state"] == "acknowledged" and rest[0][1]["case_id"] == hits[0]["hit_id"]
    # live: a change made while the stream is open arrives on it
    box: list[Any] = []
    reader = threading.Thread(target=lambda: box.extend(read_changes(url, "cad-brussels", 1, last="5")))
    reader.start()
    import time

    time.sleep(0.3)
    gw.act(hits[1], "brussels", "acknowledge")
    reader.join(10)
    assert [i for i, _ in box] == [6] and box[0][1]["case_id"] == hits[1]["hit_id"]
    # antwerp's system follows its own feed: none of brussels' changes
    gw.hit(hit_doc("CAM-ANT-1"))
    assert [i for i, _ in read_changes(url, "cad-antwerp", 1, last="0")] == [1]
    # a number beyond the feed: reset, list again
    reset = read_changes(url, "cad-brussels", 1, last="999")
    assert reset[0][0] == -1 and reset[0][1]["last_event_id"] == 6
    import httpx2

    assert (
        httpx2.get(f"{url}/api/v1/events", headers={**bearer("cad-brussels"), "last-event-id": "x1"}).status_code == 400
    )


def test_the_openapi_document_is_served_and_rendered_in_docs(gw: Gateway) -> None:
    http = TestClient(gw.app)
    doc = http.get("/api/v1/openapi.json").json()
    assert doc == orjson.loads(orjson.dumps(document()))
    assert doc["openapi"].startswith("3.1") and "/api/v1/events" in doc["paths"]
    for route in gw.app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/api/v1/"):
            documented = path.replace("{kind:str}", "acknowledge")
            assert documented in doc["paths"], path
    assert (ROOT / "docs" / "api.md").read_text() == markdown() + "\n", (
        "run: feblam gateway openapi --markdown > docs/api.md"
    )
    assert orjson.loads((ROOT / "docs" / "openapi.json").read_bytes()) == doc


def test_a_client_certificates_subject_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    import httpx2

    from gateway.api import Clients

    doc = gateway_doc(client_cert_header="X-SSL-Client-S-DN", trusted_proxies=["127.0.0.1"])
    doc["desks"][0]["clients"] = [{"name": "cad-brussels", "cert_subject": "CN=cad.brussels.police.example,O=PolBel"}]
    s = settings_from_dict(doc)
    board = Board([d.name for d in s.desks])
    store = Store(tmp_path)
    journal = Journal(store, [d.name for d in s.desks], 72).load()
    audit: list[dict[str, Any]] = []
    app = create_app(
        s.gateway,
        board,
        Users(s.desks),
        Recorder(),
        audit=audit.append,
        journal=journal,
        store=store,
        clients=Clients(s.desks),
    )
    subject = {"x-ssl-client-s-dn": "CN=cad.brussels.police.example,O=PolBel"}
    server = HttpServer("127.0.0.1", 0, "gateway.http_port").start(app)
    try:
        url = f"http://127.0.0.1:{server.port}"
        me = httpx2.get(f"{url}/api/v1/me", headers=subject, timeout=5)
        assert me.status_code == 200 and me.json()["client"] == "cad-brussels"  # the proxy (loopback) is trusted
        other = httpx2.get(f"{url}/api/v1/me", headers={"x-ssl-client-s-dn": "CN=mallory"}, timeout=5)
        assert other.status_code == 401
    finally:
        server.stop()
    # the same header from a peer that is no trusted proxy is not believed
    untrusted = TestClient(
        create_app(
            replace(s.gateway, trusted_proxies=()),
            board,
            Users(s.desks),
            Recorder(),
            journal=journal,
            store=store,
            clients=Clients(s.desks),
        )
    )
    assert untrusted.get("/api/v1/me", headers=subject).status_code == 401


def test_oversized_and_overlong_requests_are_refused_before_they_reach_a_case(tmp_path: Path) -> None:
    gw = Gateway(tmp_path, max_request_bytes=2048)
    http = TestClient(gw.app)
    h = gw.hit(hit_doc("CAM-BXL-1"))
    url = f"/api/v1/cases/{h['hit_id']}"
    big = http.post(
        f"{url}/close",
        content=b'{"outcome": "other", "reason": "' + b"x" * 5000 + b'"}',
        headers={**bearer("cad-brussels"), "idempotency-key": "big-1", "content-type": "application/json"},
    )
    assert big.status_code == 413
    long_key = http.post(f"{url}/acknowledge", headers={**bearer("cad-brussels"), "idempotency-key": "k" * 129})
    assert long_key.status_code == 400 and "Idempotency-Key" in long_key.json()["error"]
    long_reason = http.post(
        f"{url}/close",
        json={"outcome": "other", "reason": "r" * 501},
        headers={**bearer("cad-brussels"), "idempotency-key": "k-r"},
    )
    assert long_reason.status_code == 400 and "at most 500" in long_reason.json()["error"]
    far = http.get("/api/v1/events", headers={**bearer("cad-brussels"), "last-event-id": "9" * 30})
    assert far.status_code == 400
    huge_id = http.get(f"/api/v1/cases/{'z' * 5000}", headers=bearer("cad-brussels"))
    assert huge_id.status_code == 404 and "z" * 200 not in huge_id.text
    refused = [e for e in gw.audit if e["kind"] == "refused"]
    assert refused and all(len(i) <= 128 for e in refused for i in e["hit_ids"])  # the trail keeps no long input
    assert http.get("/api/v1/cases", headers={"authorization": "Bearer " + "t" * 10_000}).status_code == 401
    assert gw.recorder.actions == []
