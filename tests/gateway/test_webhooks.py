"""A desk's webhook against a receiver on loopback that refuses, is slow and restarts: every change arrives,
in order, each verified by its signature; one that never gets through is kept for replay, with the reason."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from feblam.config import WebhookSettings, settings_from_dict
from feblam.errors import FeblamError
from gateway.journal import Journal
from gateway.store import Store
from gateway.webhooks import Webhook, load_secret, signature, verify
from tests.gateway.test_journal import DESKS, change
from tests.support.gateway import gateway_doc

SECRET = b"a-webhook-secret-of-32-bytes-or-more!"


class Receiver:
    """A desk's system on loopback: verifies each delivery; refuses every ``refuse_every``-th, sleeps on ``slow``."""

    def __init__(self, refuse_every: int = 0, slow: frozenset[int] = frozenset(), port: int = 0) -> None:
        self.refuse_every, self.slow = refuse_every, slow
        self.calls = 0
        self.taken: list[int] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.calls += 1
                n = receiver.calls
                if n in receiver.slow:
                    time.sleep(1.5)  # past the webhook's timeout
                if not verify(SECRET, self.headers["feblam-timestamp"], self.headers["feblam-signature"], body):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                elif receiver.refuse_every and n % receiver.refuse_every == 0:
                    self.send_response(503)
                else:
                    seq = orjson.loads(body)["seq"]
                    assert self.headers["feblam-event-id"].endswith(f":{seq}")
                    if not receiver.taken or seq > receiver.taken[-1]:  # a receiver ignores a seq it has
                        receiver.taken.append(seq)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def hook(port: int, **kw: Any) -> WebhookSettings:
    return WebhookSettings(
        url=f"http://127.0.0.1:{port}/feblam",
        secret_env="X",  # noqa: S106 - the name of a variable, not a secret
        timeout_seconds=1.0,
        backoff_seconds=0.05,
        **kw,
    )


def run_webhook(tmp: Path, port: int, kept: list[Any], **kw: Any) -> tuple[Webhook, Journal, threading.Event]:
    store = Store(tmp)
    journal = Journal(store, DESKS, 72).load()
    stop = threading.Event()
    w = Webhook("brussels", hook(port, **kw), SECRET, journal, store, lambda v, k: kept.append((v, k)), stop)
    w.start()
    return w, journal, stop


def wait_for(what: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_every_change_arrives_in_order_through_refusals_a_slow_answer_and_a_restart(tmp_path: Path) -> None:
    receiver = Receiver(refuse_every=3, slow=frozenset({4}))
    kept: list[Any] = []
    w, journal, stop = run_webhook(tmp_path, receiver.port, kept, max_attempts=20)
    journal.append([change("brussels", n) for n in range(10)])
    journal.append([change("antwerp", 1)])  # another desk's feed is not this webhook's
    wait_for(lambda: len(receiver.taken) >= 5)
    receiver.stop()  # the desk's system restarts
    journal.append([change("brussels", n) for n in range(10, 15)])
    time.sleep(0.5)
    receiver = Receiver(refuse_every=3, port=receiver.port)
    wait_for(lambda: len(receiver.taken) and receiver.taken[-1] == 15)
    stop.set()
    w.join(5)
    assert receiver.bad_signatures == 0 and kept == []
    assert w.store.cursor("brussels") == 15


def test_a_restarted_webhook_resumes_after_the_last_change_it_delivered(tmp_path: Path) -> None:
    receiver = Receiver()
    kept: list[Any] = []
    w, journal, stop = run_webhook(tmp_path, receiver.port, kept)
    journal.append([change("brussels", n) for n in range(3)])
    wait_for(lambda: receiver.taken == [1, 2, 3])
    stop.set()
    w.join(5)
    journal.append([change("brussels", n) for n in range(3, 5)])
    w2, _, stop2 = run_webhook(tmp_path, receiver.port, kept)  # a restart, or the standby taking over
    wait_for(lambda: receiver.taken == [1, 2, 3, 4, 5])
    stop2.set()
    w2.join(5)
    assert receiver.calls == 5  # nothing delivered twice


def test_a_change_that_never_gets_through_is_kept_for_replay_and_the_next_goes_on(tmp_path: Path) -> None:
    receiver = Receiver(refuse_every=1)  # refuses everything
    kept: list[Any] = []
    w, journal, stop = run_webhook(tmp_path, receiver.port, kept, max_attempts=3)
    journal.append([change("brussels", 1), change("brussels", 2)])
    wait_for(lambda: len(kept) == 2)
    stop.set()
    w.join(5)
    assert receiver.calls == 6
    doc = orjson.loads(kept[0][0])
    assert (doc["desk"], doc["seq"], doc["attempts"], doc["error"]) == ("brussels", 1, 3, "HTTP 503")
    assert doc["change"]["event"]["event_id"] == "e-brussels-1" and doc["change"]["seq"] == 1
    assert kept[0][1] == b"brussels:c1"
    assert w.store.cursor("brussels") == 2


def test_signatures_cover_time_and_body_and_refuse_replays() -> None:
    now = int(time.time())
    sig = signature(SECRET, now, b'{"seq":1}')
    assert verify(SECRET, str(now), sig, b'{"seq":1}')
    assert not verify(SECRET, str(now), sig, b'{"seq":2}')
    assert not verify(SECRET, str(now + 1), sig, b'{"seq":1}')
    assert not verify(b"another-secret-of-thirty-two-bytes!!", str(now), sig, b'{"seq":1}')
    assert not verify(SECRET, str(now - 3600), signature(SECRET, now - 3600, b"{}"), b"{}")  # an old one replayed
    assert not verify(SECRET, "soon", sig, b"{}")


def test_webhook_settings_mistakes_are_one_line_each(tmp_path: Path) -> None:
    doc = gateway_doc()
    doc["desks"][0]["webhook"] = {"url": "http://cad.police.example/hook", "secret_env": "CAD_SECRET"}
    doc["desks"][1]["webhook"] = {"url": "https://cad.example/h", "secret_env": "A", "secret_file": "/f"}
    with pytest.raises(FeblamError) as err:
        settings_from_dict(doc)
    lines = str(err.value).splitlines()
    assert any("desks[0] (brussels).webhook.url" in x and "plain http only to a loopback" in x for x in lines)
    assert any("desks[1] (antwerp).webhook: give one of secret_env or secret_file" in x for x in lines)
    doc["desks"][0]["webhook"] = {"url": "https://cad.police.example/hook", "secret_env": "CAD_SECRET"}
    del doc["desks"][1]["webhook"]
    s = settings_from_dict(doc)
    with pytest.raises(FeblamError, match=r"desks \(brussels\).webhook.secret_env: CAD_SECRET is not set"):
        load_secret(s.desks[0], {})
    with pytest.raises(FeblamError, match="it needs 32 or more"):
        load_secret(s.desks[0], {"CAD_SECRET": "short"})
    assert load_secret(s.desks[0], {"CAD_SECRET": SECRET.decode()}) == SECRET
    from feblam.topics import gateway_topics

    assert "gateway-webhook-deadletter" in {t.name for t in gateway_topics(s)}


def test_partner_and_client_mistakes_are_one_line_each() -> None:
    doc = gateway_doc()
    doc["desks"].append({"name": "lez", "kind": "partner"})
    doc["desks"][0]["escalate_to"] = "lez"
    doc["desks"][0]["clients"] = [{"name": "brussels-1", "token_sha256": "a" * 64}]
    doc["desks"][1]["clients"] = [{"name": "cad", "token_sha256": "a" * 64, "cert_subject": "CN=cad"}]
    with pytest.raises(FeblamError) as err:
        settings_from_dict(doc)
    text = str(err.value)
    assert "desks[3] (lez): a partner takes its own lists only" in text
    assert "desks[0] (brussels).escalate_to = 'lez': that desk is a partner" in text
    assert "client 'brussels-1' is listed twice or is also a user" in text
    assert "desks[1] (antwerp).clients[0] (cad): give one of token_sha256 or cert_subject" in text
    doc = gateway_doc()
    doc["desks"][0]["clients"] = [{"name": "cad", "token_sha256": "not-a-hash"}]
    with pytest.raises(FeblamError, match="token_sha256"):
        settings_from_dict(doc)
