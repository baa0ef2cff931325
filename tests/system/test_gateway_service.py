"""``feblam gateway`` as a service on the bundled broker, tried as an attacker and as a crash would.

Malformed hits and actions of every shape reach the real topics of a running
gateway: the good hits are on their boards, each bad message is a dead letter
once, also across a restart over those offsets. A SIGKILL while hits arrive
loses none from the boards, and an event the restart repeats is the same event
(same ``event_id``, same times), never a case opened twice. An acknowledgement
appended before its deadline, while the gateway was down, wins over the
escalation the restart would otherwise decide by its own clock.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.actions import encode_action
from sources.broker import EmbeddedBroker, free_port
from tests.support.gateway import (
    HASH_KEY,
    ConsoleUser,
    desk_action,
    gateway_doc,
    hit_doc,
    produce_hits,
    replaced,
    start_gateway,
    write_config,
)
from tests.support.kafka import produce, read_topic
from tests.support.processes import stop, wait_for, wait_log

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
KEY = b"a-test-action-key-of-this-gateway-0123456789"


def malformed_hits() -> list[bytes]:
    """Every shape that once stopped the desks, and a few more."""
    docs = [
        replaced(hit_doc(), ("matches", 0), "SIS-II"),
        replaced(hit_doc(), ("read", "camera_id"), 42),
        replaced(hit_doc(), ("read", "lat"), "50.8"),
        replaced(hit_doc(), ("read", "plate"), "A" * 17),
        replaced(hit_doc(), ("emitted_at",), "yesterday"),
        replaced(hit_doc(), ("matches",), {"list_id": "X"}),
        replaced(hit_doc(), ("priority",), None),
    ]
    return [orjson.dumps(d) for d in docs] + [b"{not json", b"[1, 2, 3]", b"", b"x" * 300_000]


def malformed_actions(hit: dict[str, Any]) -> list[bytes]:
    at = datetime.now(UTC)
    close = desk_action(hit, "brussels", "close", at, "intercepted", hash_key=HASH_KEY)
    unsigned = orjson.loads(encode_action(close, KEY))
    unsigned["sig"] = "0" * 64
    stranger = desk_action(hit, "brussels", "close", at, "intercepted", user="mallory", hash_key=HASH_KEY)
    wrong_key = close
    return [
        orjson.dumps(unsigned),  # a signature that is not the key's
        encode_action(stranger, KEY),  # signed, but by no user of the desk
        encode_action(wrong_key, b"another-key-another-key-another-key"),
        b'{"kind": "explode"}',
        b"\xff\xfe",
    ]


class Gateway:
    def __init__(self, broker: EmbeddedBroker, p: str, tmp: Path, **gateway: Any) -> None:
        key_file = tmp / "action.key"
        key_file.write_bytes(KEY)
        self.port = free_port()
        doc = gateway_doc(broker.address, p, http_port=self.port, action_key_file=str(key_file), **gateway)
        doc["kafka"]["poll_timeout_ms"] = 20
        doc["recovery"] = {"dir": str(tmp / "state"), "snapshot_seconds": 0.5}
        self.cfg = write_config(tmp / "gateway.toml", doc)
        self.tmp, self.p, self.runs = tmp, p, 0
        self.proc: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gateway:
        self.runs += 1
        self.log = self.tmp / f"gateway{self.runs}.log"
        self.proc = start_gateway(self.cfg, self.log)
        wait_log(self.log, "console_listening", 60)
        wait_log(self.log, f'"topic": "{self.p}.hit-actions", "partition": 0', 60)
        return self

    def stop(self) -> None:
        assert stop(self.proc) == 0, self.log.read_text()[-3000:]
        self.check_log()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def check_log(self) -> None:
        text = self.log.read_text()
        assert "Traceback" not in text and "gateway_failed" not in text, text[-3000:]
        assert not re.search(r"[12]ABC1\d\d", text)  # no plate in any log line


@pytest.fixture
def topics(broker: EmbeddedBroker, topic_prefix: str) -> str:
    p = topic_prefix
    broker.create_topics([f"{p}.hits"], partitions=2)
    broker.create_topics(
        [f"{p}.hit-events", f"{p}.hit-actions", f"{p}.hit-access", f"{p}.list-quality", f"{p}.deadletter"]
    )
    return p


def events_of(broker: EmbeddedBroker, p: str) -> list[dict[str, Any]]:
    return [orjson.loads(m.value()) for m in read_topic(broker.address, f"{p}.hit-events", idle=1.5)]


def test_malformed_hits_and_actions_never_stop_the_desks_and_a_sigkill_loses_nothing(
    broker: EmbeddedBroker, topics: str, tmp_path: Path
) -> None:
    p = topics
    gw = Gateway(broker, p, tmp_path).start()
    good = [hit_doc(f"CAM-BXL-{i}", plate=f"1ABC12{i}") for i in range(5)]  # five vehicles: five cases
    bad_hits = malformed_hits()
    bad_actions = malformed_actions(good[0])
    produce_hits(broker.address, f"{p}.hits", good[:2])
    produce(broker.address, f"{p}.hits", bad_hits)
    produce(broker.address, f"{p}.hit-actions", bad_actions)
    produce_hits(broker.address, f"{p}.hits", good[2:])
    bad = len(bad_hits) + len(bad_actions)

    desk = ConsoleUser(gw.url, "brussels-1")
    assert wait_for(lambda: len(desk.board()) == len(good), 30), desk.board().keys()
    assert all(c["case"]["state"] == "new" for c in desk.board().values())  # no forged close took effect
    dead = read_topic(broker.address, f"{p}.deadletter", expect=bad)
    assert len(dead) == bad
    reasons = [orjson.loads(m.value())["error"] for m in dead]
    assert sum(r.startswith("hit: ") for r in reasons) == len(bad_hits)
    assert sum(r.startswith("action: ") for r in reasons) == len(bad_actions)
    security = [e for e in events_of(broker, p) if e["state"] == "security"]
    assert len(security) == 3 and {e["hit_id"] for e in security} == {good[0]["hit_id"]}

    # A restart over those offsets: nothing is dead-lettered again, the boards come back from the state.
    gw.stop()
    gw.start()
    desk = ConsoleUser(gw.url, "brussels-1")
    assert wait_for(lambda: len(desk.board()) == len(good), 30)
    time.sleep(2)
    assert len(read_topic(broker.address, f"{p}.deadletter", idle=1.0)) == bad

    # A SIGKILL while hits arrive: none lost from the boards, nothing opened twice.
    more = [hit_doc(f"CAM-BXL-{i}", plate=f"2ABC{i}") for i in range(100, 160)]
    writer = threading.Thread(
        target=lambda: [produce_hits(broker.address, f"{p}.hits", [h]) or time.sleep(0.02) for h in more]
    )
    writer.start()
    time.sleep(0.6)
    gw.kill()
    writer.join()
    gw.start()
    desk = ConsoleUser(gw.url, "brussels-1")
    want = {h["hit_id"] for h in good + more}
    assert wait_for(lambda: set(desk.board()) == want, 60), want - set(desk.board())
    gw.stop()

    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events_of(broker, p):
        by_id[e["event_id"]].append(e)
    assert all(all(e == same[0] for e in same) for same in by_id.values()), "a repeated event is the same event"
    opened = defaultdict(set)
    for eid, same in by_id.items():
        if same[0]["state"] == "new":
            opened[(same[0]["hit_id"], same[0]["desk"])].add(eid)
    assert set(h for h, _ in opened) == want
    assert all(len(ids) == 1 for ids in opened.values()), "a case opened twice"


def test_an_acknowledgement_written_while_the_gateway_was_down_wins_over_the_deadline(
    broker: EmbeddedBroker, topics: str, tmp_path: Path
) -> None:
    p = topics
    gw = Gateway(broker, p, tmp_path, escalate_after_seconds={"1": 6}).start()
    hit = hit_doc("CAM-BXL-7")
    produce_hits(broker.address, f"{p}.hits", [hit])
    desk = ConsoleUser(gw.url, "brussels-1")
    assert wait_for(lambda: hit["hit_id"] in desk.board(), 20)
    gw.kill()  # down before the deadline; the dispatcher's acknowledgement is appended meanwhile
    ack = desk_action(hit, "brussels", "acknowledge", datetime.now(UTC), hash_key=HASH_KEY)
    produce(broker.address, f"{p}.hit-actions", [encode_action(ack, KEY)])
    time.sleep(8)  # the deadline passes while the gateway is down
    gw.start()
    desk = ConsoleUser(gw.url, "brussels-1")
    assert wait_for(lambda: desk.board().get(hit["hit_id"], {}).get("case", {}).get("state") == "acknowledged", 20)
    time.sleep(2)
    gw.stop()
    states = [(e["desk"], e["state"]) for e in events_of(broker, p) if e["hit_id"] == hit["hit_id"]]
    assert ("brussels", "escalated") not in states and ("national", "new") not in states, states
    assert ("brussels", "acknowledged") in states
