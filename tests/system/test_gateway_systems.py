"""The gateway across systems, on the bundled broker: a dispatch system's client (``examples/dispatch_client.py``)
killed and restarted, a webhook receiver that refuses and restarts, a standby that takes over from a SIGKILL.

- The client streams through the API, is SIGKILLed and reconnects with ``Last-Event-ID``: it has every case
  change once, in order per case; its acknowledgements are on the desk's board, in the events trail and the
  access trail under the client's name.
- Antwerp's webhook receiver refuses every third delivery and restarts once: it gets every change, each
  verified by its signature, none lost; it acknowledges through the API.
- Two gateways on one recovery directory: the second is a standby (``/ready`` says so); SIGKILL the first
  while hits arrive and the second serves the boards and the API within 10 s, no case lost or repeated, and a
  dispatcher's session of the first still works.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.store import token_hash
from sources.broker import EmbeddedBroker, free_port
from tests.gateway.test_webhooks import SECRET, Receiver
from tests.support.gateway import ConsoleUser, gateway_doc, hit_doc, produce_hits, write_config
from tests.support.kafka import read_topic
from tests.support.processes import FEBLAM, clean_env, stop, wait_for, wait_log

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cad-brussels-token-" + "q" * 30
ANT_TOKEN = "cad-antwerp-token-" + "w" * 30
KEY = b"a-test-action-key-of-this-gateway-0123456789"


@pytest.fixture
def topics(broker: EmbeddedBroker, topic_prefix: str) -> str:
    p = topic_prefix
    broker.create_topics([f"{p}.hits"], partitions=2)
    broker.create_topics(
        [
            f"{p}.hit-events",
            f"{p}.hit-actions",
            f"{p}.hit-access",
            f"{p}.list-quality",
            f"{p}.deadletter",
            f"{p}.webhook-deadletter",
        ]
    )
    return p


def config(broker: EmbeddedBroker, p: str, tmp: Path, receiver: int | None = None) -> Path:
    key_file = tmp / "action.key"
    key_file.write_bytes(KEY)
    doc = gateway_doc(
        broker.address,
        p,
        action_key_file=str(key_file),
        webhook_deadletter_topic=f"{p}.webhook-deadletter",
        escalate_after_seconds={},
    )
    doc["kafka"]["poll_timeout_ms"] = 20
    doc["recovery"] = {"dir": str(tmp / "state"), "snapshot_seconds": 0.5}
    doc["desks"][0]["clients"] = [{"name": "cad-brussels", "token_sha256": token_hash(TOKEN)}]
    doc["desks"][1]["clients"] = [{"name": "cad-antwerp", "token_sha256": token_hash(ANT_TOKEN)}]
    if receiver is not None:
        doc["desks"][1]["webhook"] = {
            "url": f"http://127.0.0.1:{receiver}/feblam",
            "secret_env": "ANTWERP_WEBHOOK_SECRET",
            "backoff_seconds": 0.2,
            "max_attempts": 30,
            "timeout_seconds": 2,
        }
    return write_config(tmp / "gateway.toml", doc)


class Gateway:
    def __init__(self, cfg: Path, tmp: Path, name: str) -> None:
        self.port = free_port()
        self.log = tmp / f"{name}.log"
        env = {**clean_env(), "ANTWERP_WEBHOOK_SECRET": SECRET.decode()}
        self.proc = subprocess.Popen(
            [FEBLAM, "gateway", "--config", str(cfg), "--http-port", str(self.port)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> Any:
        import httpx2

        try:
            return httpx2.get(self.url + "/ready", timeout=2)
        except httpx2.TransportError:
            return None

    def check_log(self) -> None:
        text = self.log.read_text()
        assert "Traceback" not in text and "gateway_failed" not in text, text[-3000:]
        assert "1ABC" not in text and TOKEN not in text  # no plate, no token in any line


def api(url: str, token: str = TOKEN) -> Any:
    import httpx2

    return httpx2.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=10)


def start_client(url: str, out: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "examples" / "dispatch_client.py"),
            "--url",
            url,
            "--out",
            str(out),
            "--acknowledge",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**clean_env(), "FEBLAM_API_TOKEN": TOKEN},
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x] if path.exists() else []


def test_a_system_client_and_a_webhook_get_every_change_once_through_a_kill_and_a_restart(
    broker: EmbeddedBroker, topics: str, tmp_path: Path
) -> None:
    p = topics
    receiver = Receiver(refuse_every=3)
    # antwerp's webhook receiver checks each signature and keeps the changes in order
    taken: list[dict[str, Any]] = []
    original = receiver.taken
    gw = Gateway(config(broker, p, tmp_path, receiver.port), tmp_path, "gateway")
    wait_log(gw.log, "console_listening", 60)
    wait_log(gw.log, f'"topic": "{p}.hit-actions", "partition": 0', 60)
    out, clog = tmp_path / "changes.jsonl", tmp_path / "client.log"
    client = start_client(gw.url, out, clog)
    bxl = [hit_doc(f"CAM-BXL-{i}", plate=f"1ABC{i:03d}") for i in range(12)]
    ant = [hit_doc(f"CAM-ANT-{i}", plate=f"1ABC{i + 500:03d}") for i in range(9)]
    produce_hits(broker.address, f"{p}.hits", bxl[:6] + ant[:5])
    assert wait_for(lambda: len(lines(out)) >= 4, 30), clog.read_text()[-2000:]
    client.send_signal(signal.SIGKILL)  # mid-stream
    client.wait(10)
    receiver.stop()  # the desk's system restarts too
    produce_hits(broker.address, f"{p}.hits", bxl[6:] + ant[5:])
    time.sleep(1.0)
    receiver = Receiver(refuse_every=3, port=receiver.port)
    client = start_client(gw.url, out, clog)
    want = {h["hit_id"] for h in bxl}
    # each brussels case: new, then acknowledged by the client
    assert wait_for(lambda: len(lines(out)) == 2 * len(bxl), 60), (len(lines(out)), clog.read_text()[-2000:])
    assert wait_for(lambda: len(original) + len(receiver.taken) >= len(ant), 60)
    # antwerp's system acknowledges one case through the API; the webhook brings that change too
    with api(gw.url, ANT_TOKEN) as http:
        resp = http.post(f"/api/v1/cases/{ant[0]['hit_id']}/acknowledge", headers={"idempotency-key": "a-1"})
        assert resp.status_code == 202, resp.text
    assert wait_for(lambda: len(original) + len(receiver.taken) == len(ant) + 1, 30)
    time.sleep(1.0)
    os.kill(client.pid, signal.SIGTERM)
    client.wait(30)

    got = lines(out)
    seqs = [g["seq"] for g in got]
    assert seqs == list(range(1, len(got) + 1)), "a change missed or twice"
    per_case: dict[str, list[str]] = defaultdict(list)
    for g in got:
        per_case[g["case_id"]].append(g["state"])
    assert set(per_case) == want and all(states == ["new", "acknowledged"] for states in per_case.values())
    assert original + receiver.taken == list(range(1, len(ant) + 2)) and receiver.bad_signatures == 0
    taken += original + receiver.taken

    # the acknowledgements are the client's: on the board, in the events trail, in the access trail
    desk = ConsoleUser(gw.url, "brussels-1")
    board = desk.board()
    assert {board[h]["case"]["acknowledged_by"] for h in want} == {"cad-brussels"}
    events = [orjson.loads(m.value()) for m in read_topic(broker.address, f"{p}.hit-events", idle=1.5)]
    acks = [e for e in events if e["state"] == "acknowledged" and e["desk"] == "brussels"]
    assert {e["hit_id"] for e in acks} == want and {e["user"] for e in acks} == {"cad-brussels"}
    access = [orjson.loads(m.value()) for m in read_topic(broker.address, f"{p}.hit-access", idle=1.5)]
    api_shown = [a for a in access if a["via"] == "api" and a["kind"] == "shown" and a["user"] == "cad-brussels"]
    assert want <= {h for a in api_shown for h in a["hit_ids"]}
    assert not {h["hit_id"] for h in ant} & {h for a in api_shown for h in a["hit_ids"]}  # need to know
    assert stop(gw.proc) == 0
    gw.check_log()
    receiver.stop()


def test_a_standby_takes_over_within_10_s_of_a_sigkill_with_no_case_lost(
    broker: EmbeddedBroker, topics: str, tmp_path: Path
) -> None:
    p = topics
    cfg = config(broker, p, tmp_path)
    first = Gateway(cfg, tmp_path, "first")
    wait_log(first.log, f'"topic": "{p}.hit-actions", "partition": 0', 60)
    second = Gateway(cfg, tmp_path, "second")
    wait_log(second.log, "gateway_standby", 60)
    assert wait_for(lambda: (r := second.ready()) is not None and r.status_code == 503, 30)
    assert second.ready().json()["status"] == "standby"
    assert first.ready().status_code == 200
    with api(second.url) as http:
        assert http.get("/api/v1/cases").status_code == 503  # a standby serves nobody yet
    desk = ConsoleUser(first.url, "brussels-1")  # a dispatcher signed in at the first
    # a third told not to wait says why in one line; a standby stopped while it waits exits cleanly
    refused = subprocess.run(
        [FEBLAM, "gateway", "--config", str(cfg), "--http-port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean_env(), "FEBLAM_GATEWAY_STANDBY": "false"},
    )
    assert refused.returncode == 2 and "recovery directory is in use by feblam gateway pid" in refused.stderr
    third = Gateway(cfg, tmp_path, "third")
    wait_log(third.log, "gateway_standby", 60)
    assert stop(third.proc) == 0
    third.check_log()

    hits = [hit_doc(f"CAM-BXL-{i}", plate=f"1ABC{i:03d}") for i in range(40)]
    produce_hits(broker.address, f"{p}.hits", hits[:10])
    assert wait_for(lambda: len(desk.board()) == 10, 30)
    writer = threading.Thread(
        target=lambda: [produce_hits(broker.address, f"{p}.hits", [h]) or time.sleep(0.05) for h in hits[10:]]
    )
    writer.start()
    time.sleep(0.5)
    first.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    first.proc.wait(10)
    desk.url = second.url  # the same session cookie, now at the standby: no sign-in again

    def serving() -> bool:  # the board as it stood, rebuilt from the state, and the API
        if (r := second.ready()) is None or r.status_code != 200:
            return False
        with api(second.url) as http:
            listed = http.get("/api/v1/cases", params={"limit": 200})
        return listed.status_code == 200 and len(listed.json()["cases"]) >= 10 and len(desk.board()) >= 10

    assert wait_for(serving, 15), second.log.read_text()[-3000:]
    took = time.monotonic() - killed
    assert took <= 10.0, f"the standby took {took:.1f} s"
    writer.join()
    want = {h["hit_id"] for h in hits}
    assert wait_for(lambda: set(desk.board()) == want, 30), want - set(desk.board())
    with api(second.url) as http:
        listed = http.get("/api/v1/cases", params={"limit": 200}).json()
        assert {c["case_id"] for c in listed["cases"]} == want
        assert listed["last_event_id"] == len(want)  # the desk's feed: one change per case, none twice
        resp = http.post(f"/api/v1/cases/{hits[0]['hit_id']}/acknowledge", headers={"idempotency-key": "k"})
        assert resp.status_code == 202
    assert wait_for(lambda: desk.board()[hits[0]["hit_id"]]["case"]["state"] == "acknowledged", 20)
    text = second.log.read_text()
    assert "gateway_taking_over" in text
    print(f"standby took over in {took:.1f} s")
    assert stop(second.proc) == 0
    second.check_log()
