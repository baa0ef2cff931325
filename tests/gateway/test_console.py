"""The console's HTTP layer: sign-in, sessions, CSRF, a desk's own hits only, throttled failures, headers.

The app runs in-process (Starlette's TestClient) over a real :class:`Board`;
``write_action`` records what would go to the actions topic (the Kafka path is
covered by the browser test against the broker).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from feblam.config import replace
from gateway.actions import DeskAction, decode_action, encode_action
from gateway.board import Board
from gateway.cases import vehicle_of
from gateway.console.app import create_app
from gateway.console.auth import Users
from gateway.settings import Desks
from tests.support.gateway import ACTION_KEY, PASSWORD, gateway_settings, hit_doc, opened


class Recorder:
    """The messages the console would produce to the actions topic (its one encoding, decoded as JSON)."""

    def __init__(self) -> None:
        self.actions: list[dict[str, Any]] = []

    def __call__(self, action: DeskAction) -> None:
        doc = orjson.loads(encode_action(action, ACTION_KEY))
        assert decode_action(encode_action(action, ACTION_KEY), ACTION_KEY).signed
        doc.pop("sig")
        self.actions.append(doc)


@pytest.fixture
def console() -> tuple[TestClient, Board, Recorder, dict[str, str]]:
    settings = gateway_settings(login_max_failures=3)
    board = Board([d.name for d in settings.desks])
    desks = Desks(settings.desks, settings.gateway)
    hits = {}
    for name, camera in (("bxl", "CAM-BXL-1"), ("ant", "CAM-ANT-1")):
        hit = hit_doc(camera, plate="1XYZ987")
        hc, changes = opened(hit, desks, datetime.now(UTC))
        board.apply(changes)
        hits[name] = hit["hit_id"]
    recorder = Recorder()
    client = TestClient(create_app(settings.gateway, board, Users(settings.desks), recorder))
    return client, board, recorder, hits


def sign_in(client: TestClient, user: str, password: str = PASSWORD) -> Any:
    form = client.get("/login")
    token = re.search(r"name=csrf value='([^']+)'", form.text).group(1)  # type: ignore[union-attr]
    return client.post("/login", data={"csrf": token, "user": user, "password": password}, follow_redirects=False)


def csrf_of(client: TestClient) -> str:
    return re.search(r"csrf-token content='([^']+)'", client.get("/").text).group(1)  # type: ignore[union-attr]


def test_nothing_without_a_session(console: Any) -> None:
    client, _, recorder, hits = console
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    for path in ("/api/board", "/api/events", f"/api/hits/{hits['bxl']}"):
        assert client.get(path).status_code == 401, path
    assert client.post(f"/api/hits/{hits['bxl']}/acknowledge", headers={"X-CSRF-Token": "x"}).status_code == 401
    assert recorder.actions == []


def test_sign_in_sets_a_protected_cookie_and_shows_the_desk(console: Any) -> None:
    client, _, _, hits = console
    resp = sign_in(client, "brussels-1")
    assert resp.status_code == 303
    cookie = resp.headers["set-cookie"]
    assert "feblam_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    board = client.get("/api/board").json()
    assert board["desk"] == "brussels" and [c["hit_id"] for c in board["cards"]] == [hits["bxl"]]
    page = client.get("/")
    assert "content-security-policy" in page.headers and page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script: the page's code is /static/board.js


def test_secure_cookies_by_default() -> None:
    settings = gateway_settings()
    g = replace(settings.gateway, secure_cookies=True)
    client = TestClient(
        create_app(g, Board(["brussels"]), Users(settings.desks), Recorder()), base_url="https://testserver"
    )
    assert "Secure" in sign_in(client, "brussels-1").headers["set-cookie"]


def test_a_desk_sees_and_acts_on_its_own_hits_only(console: Any) -> None:
    client, board, recorder, hits = console
    sign_in(client, "brussels-1")
    token = csrf_of(client)
    assert client.get(f"/api/hits/{hits['ant']}").status_code == 403
    assert client.post(f"/api/hits/{hits['ant']}/acknowledge", headers={"X-CSRF-Token": token}).status_code == 403
    assert (
        client.post(
            f"/api/hits/{hits['ant']}/close", headers={"X-CSRF-Token": token}, json={"outcome": "other"}
        ).status_code
        == 403
    )
    assert recorder.actions == []
    resp = client.post(f"/api/hits/{hits['bxl']}/acknowledge", headers={"X-CSRF-Token": token})
    assert resp.status_code == 202
    assert recorder.actions[0] | {"at": None} == {
        "hit_id": hits["bxl"],
        "desk": "brussels",
        "user": "brussels-1",
        "kind": "acknowledge",
        "outcome": None,
        "reason": None,
        "vehicle": vehicle_of(board.card("brussels", hits["bxl"])["hit"]),
        "at": None,
    }


def test_csrf_refused(console: Any) -> None:
    client, _, recorder, hits = console
    sign_in(client, "brussels-1")
    url = f"/api/hits/{hits['bxl']}/acknowledge"
    assert client.post(url).status_code == 403
    assert client.post(url, headers={"X-CSRF-Token": "forged"}).status_code == 403
    token = csrf_of(client)
    assert client.post(url, headers={"X-CSRF-Token": token, "Origin": "https://evil.example"}).status_code == 403
    assert client.post("/logout", data={"csrf": "forged"}, follow_redirects=False).status_code == 403
    assert recorder.actions == []
    # the login form too: a post without the form's token does not sign anyone in
    fresh = TestClient(client.app)
    resp = fresh.post("/login", data={"csrf": "x", "user": "brussels-1", "password": PASSWORD}, follow_redirects=False)
    assert resp.status_code == 403 and "feblam_session" not in resp.headers.get("set-cookie", "")


def test_close_needs_a_known_outcome_and_a_closed_hit_stays_closed(console: Any) -> None:
    client, board, recorder, hits = console
    sign_in(client, "brussels-1")
    token = csrf_of(client)
    url = f"/api/hits/{hits['bxl']}/close"
    assert client.post(url, headers={"X-CSRF-Token": token}, json={"outcome": "shrug"}).status_code == 400
    assert client.post(url, headers={"X-CSRF-Token": token}, content=b"not json").status_code == 400
    no_reason = client.post(url, headers={"X-CSRF-Token": token}, json={"outcome": "not_found"})
    assert no_reason.status_code == 400 and "needs a reason" in no_reason.json()["error"]
    long = {"outcome": "not_found", "reason": "x" * 501}
    assert client.post(url, headers={"X-CSRF-Token": token}, json=long).status_code == 400
    body = {"outcome": "not_found", "reason": "not at the address"}
    assert client.post(url, headers={"X-CSRF-Token": token}, json=body).status_code == 202
    assert client.post(f"/api/hits/{hits['bxl']}/explode", headers={"X-CSRF-Token": token}).status_code == 404
    assert [(a["outcome"], a["reason"]) for a in recorder.actions] == [("not_found", "not at the address")]


def test_failed_sign_ins_are_throttled_and_logged(console: Any, capsys: Any) -> None:
    client, _, _, _ = console
    for _ in range(3):
        assert sign_in(client, "brussels-1", "wrong password").status_code == 401
    blocked = sign_in(client, "brussels-1")  # the right password, but the name is blocked for the window
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert sign_in(client, "nobody", "x").status_code == 401  # another name from there is not (yet) blocked
    for i in range(26):  # an address trying many names: blocked at ten times the pair's limit (3 x 10)
        assert sign_in(client, f"name-{i}", "x").status_code == 401
    assert sign_in(client, "nobody-else", "x").status_code == 429
    err = capsys.readouterr()
    text = err.out + err.err
    assert text.count("console_login_failed") == 30 and "console_login_blocked" in text
    assert PASSWORD not in text and "wrong password" not in text


def test_no_plate_in_urls_or_logs(console: Any, capsys: Any) -> None:
    client, _, _, hits = console
    sign_in(client, "brussels-1")
    token = csrf_of(client)
    client.post(f"/api/hits/{hits['bxl']}/acknowledge", headers={"X-CSRF-Token": token})
    client.post(f"/api/hits/{hits['ant']}/acknowledge", headers={"X-CSRF-Token": token})
    out = capsys.readouterr()
    assert "console_action" in out.out + out.err
    assert "1XYZ987" not in out.out + out.err


def test_signed_out_session_is_gone(console: Any) -> None:
    client, _, _, _ = console
    sign_in(client, "brussels-1")
    token = csrf_of(client)
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert client.get("/api/board").status_code == 401


def test_a_board_whose_page_loop_is_gone_does_not_stop_the_flow() -> None:
    import asyncio

    from gateway.cases import BoardChange

    board = Board(["brussels"])
    loop = asyncio.new_event_loop()
    sub = board.subscribe("brussels", loop)
    loop.close()  # the console's event loop has ended
    hit = hit_doc()
    board.apply([BoardChange(hit["hit_id"], "brussels", {"state": "new", "escalated_from": None}, hit, None)])
    assert sub.dropped and board.pages() == 0
    assert [c["hit_id"] for c in board.cards("brussels")] == [hit["hit_id"]]


def test_wrong_passwords_from_one_address_never_lock_the_user_out_from_another() -> None:
    settings = gateway_settings()  # login_max_failures = 5
    board = Board([d.name for d in settings.desks])
    app = create_app(settings.gateway, board, Users(settings.desks), Recorder())
    stranger = TestClient(app, client=("203.0.113.9", 50000))
    for _ in range(5):
        assert sign_in(stranger, "brussels-1", "guessing").status_code == 401
    assert sign_in(stranger, "brussels-1").status_code == 429  # that address, for that name: blocked
    dispatcher = TestClient(app, client=("10.1.2.3", 50000))
    assert sign_in(dispatcher, "brussels-1").status_code == 303  # the dispatcher's own desk: signed in


def test_a_request_body_over_the_limit_is_refused_with_413(console: Any) -> None:
    client, _, recorder, _ = console
    big = b"x" * (5 * 1024 * 1024)
    assert (
        client.post("/login", content=big, headers={"content-type": "application/x-www-form-urlencoded"}).status_code
        == 413
    )

    def chunks() -> Any:
        for _ in range(100):
            yield b"y" * 10_000  # no Content-Length: counted as it arrives

    assert (
        client.post(
            "/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
        ).status_code
        == 413
    )
    assert recorder.actions == []


def test_event_streams_are_capped_per_session_and_per_desk() -> None:
    from gateway.console.app import StreamCounts

    counts = StreamCounts(per_session=8, per_desk=10)
    opened = [counts.open("s1", "brussels") for _ in range(40)]
    assert opened[:8] == [None] * 8 and all(r and "max_streams_per_session" in r for r in opened[8:])
    assert counts.open("s2", "brussels") is None and counts.open("s2", "brussels") is None
    assert "max_streams_per_desk" in (counts.open("s3", "brussels") or "")
    counts.close("s1", "brussels")
    assert counts.open("s3", "brussels") is None  # a stream that ends frees its place


def test_the_40th_stream_of_a_session_is_refused_with_429(console: Any) -> None:
    import http.client

    from flows.operations import HttpServer

    client, _, _, _ = console
    sign_in(client, "brussels-1")
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    server = HttpServer("127.0.0.1", 0, "test").start(client.app)
    connections, statuses = [], []
    try:
        for _ in range(40):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", "/api/events", headers={"cookie": cookie})
            statuses.append(conn.getresponse().status)  # the status line; a stream's body never ends
            connections.append(conn)
    finally:
        for conn in connections:
            conn.close()
        server.stop()
    assert statuses[:8] == [200] * 8 and statuses[8:] == [429] * 32


def test_every_access_is_on_the_access_trail_without_a_plate() -> None:
    settings = gateway_settings(login_max_failures=3)
    desks = Desks(settings.desks, settings.gateway)
    board = Board(desks.names)
    hits = {}
    for name, camera in (("bxl", "CAM-BXL-1"), ("ant", "CAM-ANT-1")):
        hit = hit_doc(camera, plate="1XYZ987")
        hc, changes = opened(hit, desks, datetime.now(UTC))
        board.apply(changes)
        hits[name] = hit["hit_id"]
    trail: list[dict[str, Any]] = []
    client = TestClient(create_app(settings.gateway, board, Users(settings.desks), Recorder(), audit=trail.append))
    sign_in(client, "brussels-1", "wrong password")
    sign_in(client, "brussels-1")
    client.get("/api/board")
    client.get(f"/api/hits/{hits['bxl']}")
    client.get(f"/api/hits/{hits['ant']}")  # another desk's hit: refused
    client.post("/logout", data={"csrf": csrf_of(client)}, follow_redirects=False)
    client.get("/api/board")  # signed out: refused
    kinds = [(e["kind"], e["user"], e["hit_ids"]) for e in trail]
    assert kinds == [
        ("signin_failed", "brussels-1", []),
        ("signin", "brussels-1", []),
        ("shown", "brussels-1", [hits["bxl"]]),
        ("shown", "brussels-1", [hits["bxl"]]),
        ("refused", "brussels-1", [hits["ant"]]),
        ("signout", "brussels-1", []),
        ("refused", None, []),
    ]
    signed_in = {e["session"] for e in trail if e["kind"] in ("signin", "shown", "signout")}
    assert len(signed_in) == 1 and "" not in signed_in  # one session reference, never its token
    assert all(e["client"] == "testclient" and e["at"].endswith("Z") for e in trail)
    text = orjson.dumps(trail)
    assert b"1XYZ987" not in text and client.cookies.get("feblam_session", "x") not in text.decode()


def test_forwarded_addresses_are_believed_only_from_a_trusted_proxy() -> None:
    settings = gateway_settings(trusted_proxies=["10.9.0.0/16"])
    board = Board([d.name for d in settings.desks])
    trail: list[dict[str, Any]] = []
    app = create_app(settings.gateway, board, Users(settings.desks), Recorder(), audit=trail.append)
    forwarded = {"x-forwarded-for": "198.51.100.7, 10.9.0.3"}
    TestClient(app, client=("10.9.0.2", 1)).get("/api/board", headers=forwarded)  # through the proxies
    TestClient(app, client=("127.0.0.1", 1)).get("/api/board", headers=forwarded)  # localhost is not a proxy
    TestClient(app, client=("203.0.113.5", 1)).get("/api/board", headers=forwarded)  # a forged header
    assert [e["client"] for e in trail] == ["198.51.100.7", "127.0.0.1", "203.0.113.5"]


def test_a_secure_session_cookie_has_the_host_prefix() -> None:
    settings = gateway_settings(secure_cookies=True)
    board = Board([d.name for d in settings.desks])
    client = TestClient(
        create_app(settings.gateway, board, Users(settings.desks), Recorder()), base_url="https://testserver"
    )
    resp = sign_in(client, "brussels-1")
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("__Host-feblam_session=") and "Secure" in cookie and "Path=/" in cookie
    assert client.get("/api/board").status_code == 200


def test_insecure_cookies_off_loopback_are_refused() -> None:
    from feblam.config import check_config
    from tests.support.gateway import gateway_doc

    doc = gateway_doc()
    doc["gateway"] |= {"secure_cookies": False, "http_host": "0.0.0.0"}  # noqa: S104 - the mistake under test
    _, problems = check_config(doc, "t", {})
    assert any("gateway.secure_cookies = false with http_host 0.0.0.0" in p for p in problems)
    doc["gateway"] |= {"http_host": "127.0.0.1", "trusted_proxies": ["not-a-net"]}
    _, problems = check_config(doc, "t", {})
    assert problems == ["t: gateway.trusted_proxies: 'not-a-net' is not an address or a network (CIDR)"]


def test_with_a_public_url_only_that_host_and_origin_are_served() -> None:
    settings = gateway_settings(public_url="https://gateway.police.example")
    board = Board([d.name for d in settings.desks])
    app = create_app(settings.gateway, board, Users(settings.desks), Recorder())
    rebound = TestClient(app, base_url="http://attacker.example")
    assert rebound.get("/login").status_code == 421
    assert rebound.get("/live").status_code == 200  # the operations paths: any name on the internal network
    client = TestClient(app, base_url="https://gateway.police.example")
    assert client.get("/login").status_code == 200
    sign_in(client, "brussels-1")
    wrong = client.post(
        "/api/hits/x/acknowledge", headers={"x-csrf-token": csrf_of(client), "origin": "https://evil.example"}
    )
    assert wrong.status_code == 403
