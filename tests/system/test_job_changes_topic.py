"""The change topic against the real broker: feblam run applies single changes live (DESIGN section 5.2)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from sources.broker import EmbeddedBroker
from tests.support.hotlists import sample_hotlists
from tests.support.kafka import hits_of, produce, read_topic
from tests.support.processes import canonical, start, stop, wait_log

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def config(tmp: Path, broker: EmbeddedBroker, p: str, hot: Path) -> Path:
    path = tmp / "feblam.toml"
    path.write_text(f"""
[kafka]
brokers = "{broker.address}"
poll_timeout_ms = 20
[[sources]]
topic = "{p}.canonical"
vendor = "canonical"
[hotlists]
dir = "{hot}"
shared_build = false
poll_seconds = 0.3
changes_topic = "{p}.changes"
[dedup]
window_seconds = 0
[deadletter]
topic = "{p}.deadletter"
[[sinks]]
name = "hits"
topic = "{p}.hits"
[recovery]
snapshot_seconds = 0.3
[http]
port = 0
[logging]
format = "json"
[privacy]
hash_key = "a-test-key-of-this-deployment"
""")
    return path


def change(**kw: object) -> bytes:
    return orjson.dumps({"category": "stolen_vehicle", "priority": 1, "action": "intercept", **kw})


def test_changes_go_live_within_a_second_and_survive_a_restart(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    p = topic_prefix
    hot = sample_hotlists(tmp_path)  # BE-STOLEN's latest file has sequence 3
    broker.create_topics([f"{p}.canonical", f"{p}.hits", f"{p}.deadletter", f"{p}.changes"])
    cfg = config(tmp_path, broker, p, hot)
    proc = start(cfg, tmp_path / "run1.log")
    try:
        wait_log(tmp_path / "run1.log", "partition_assigned")
        produce(
            broker.address,
            f"{p}.changes",
            [
                change(
                    list_id="BE-STOLEN",
                    seq=10,
                    op="upsert",
                    entry_id="S-LIVE",
                    plate="7-NEW-777",
                    note="reported 14:05",
                ),
                change(list_id="BE-STOLEN", seq=11, op="delete", entry_id="S-1"),  # 1-ABC-123 in the files
                change(
                    list_id="BE-STOLEN", seq=2, op="upsert", entry_id="S-OLD", plate="5-OLD-555"
                ),  # the files hold seq 3
                change(list_id="NO-SUCH-LIST", seq=12, op="upsert", entry_id="X", plate="9-XXX-999"),
                change(list_id="BE-STOLEN", seq=13, op="upsert", entry_id="S-BAD", plate="6-BAD-666", priority=9),
            ],
        )
        published = time.monotonic()
        time.sleep(1.0)  # live within one second of being published
        produce(
            broker.address,
            f"{p}.canonical",
            [
                canonical("r1", "7-NEW-777"),
                canonical("r2", "1-ABC-123"),
                canonical("r3", "5-OLD-555"),
                canonical("r4", "6-BAD-666"),
            ],
        )
        hits = hits_of(read_topic(broker.address, f"{p}.hits", expect=2, timeout=30))
        dead = hits_of(read_topic(broker.address, f"{p}.deadletter", expect=2, timeout=20))
    finally:
        assert stop(proc) == 0
    by_read = {h["read"]["read_id"]: h for h in hits}
    assert set(by_read) == {"r1", "r2"}, "r3: a change the files already hold; r4: a bad change"
    assert [m["entry_id"] for m in by_read["r1"]["matches"]] == ["S-LIVE"]
    assert "S-1" not in [m["entry_id"] for m in by_read["r2"]["matches"]], "deleted live"
    assert by_read["r1"]["index_version"] == by_read["r2"]["index_version"]
    assert published > 0
    reasons = sorted(d["error"] for d in dead)
    assert "NO-SUCH-LIST" in reasons[0] + reasons[1] and any("priority" in r for r in reasons)
    assert all(d["source"] == f"{p}.changes" and d["offset"] is not None for d in dead)
    log = (tmp_path / "run1.log").read_text()
    assert "7NEW777" not in log and "7-NEW-777" not in log, "no plate in a log line"
    # a restart reads the topic from its beginning: the change is still live
    proc = start(cfg, tmp_path / "run2.log")
    try:
        wait_log(tmp_path / "run2.log", "changes_caught_up")
        produce(broker.address, f"{p}.canonical", [canonical("r5", "7-NEW-777")])
        hits = hits_of(
            read_topic(broker.address, f"{p}.hits", expect=2 + 2 + 1, timeout=30)
        )  # the first run's two hits, the same two again (the reads are read again), and r5
    finally:
        assert stop(proc) == 0
    assert "r5" in {h["read"]["read_id"] for h in hits}
    assert [m["entry_id"] for h in hits if h["read"]["read_id"] == "r5" for m in h["matches"]] == ["S-LIVE"]


def test_a_new_snapshot_file_takes_over_the_changes_it_holds(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    from tests.support.hotlists import entry, write_snapshot

    p = topic_prefix
    hot = sample_hotlists(tmp_path)
    broker.create_topics([f"{p}.canonical", f"{p}.hits", f"{p}.deadletter", f"{p}.changes"])
    proc = start(config(tmp_path, broker, p, hot), tmp_path / "run.log")
    try:
        wait_log(tmp_path / "run.log", "partition_assigned")
        produce(
            broker.address,
            f"{p}.changes",
            [change(list_id="WANTED", seq=5, op="upsert", entry_id="W-LIVE", plate="4-LIV-444")],
        )
        wait_log(tmp_path / "run.log", "changes_live")
        # the source's next full file holds every change up to seq 6, and no longer lists W-LIVE
        write_snapshot(
            hot,
            "WANTED",
            [
                entry("W-1", "1-ABC-123"),
                entry("W-2", "2-DEF-456"),
                entry("W-3", "3-GHI-789"),
                entry("W-4", "4-JKL-012"),
            ],
            seq=6,
        )
        wait_log(tmp_path / "run.log", "index_swapped")
        produce(broker.address, f"{p}.canonical", [canonical("r1", "4-LIV-444"), canonical("r2", "2-DEF-456")])
        hits = hits_of(read_topic(broker.address, f"{p}.hits", expect=1, timeout=30))
    finally:
        assert stop(proc) == 0
    assert [h["read"]["read_id"] for h in hits] == ["r2"]
