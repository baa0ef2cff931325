"""Retro-hits against the real broker (DESIGN section 10)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from sources.broker import EmbeddedBroker
from tests.support.hotlists import entry, sample_hotlists, write_snapshot
from tests.support.kafka import hits_of, read_topic
from tests.support.processes import FEBLAM, clean_env, start, wait_log

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def config(tmp: Path, broker: EmbeddedBroker, p: str, hot: Path, *, changes: bool = False, sinks: str = "") -> Path:
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
{'changes_topic = "' + p + '.changes"' if changes else ""}
[dedup]
window_seconds = 0
[deadletter]
topic = "{p}.deadletter"
[[sinks]]
name = "hits"
topic = "{p}.hits"
{sinks}
[retro]
window_minutes = 60
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


def publish_reads(broker: EmbeddedBroker, topic: str, reads: list[tuple[str, str, datetime]]) -> None:
    """Reads of (read_id, plate, capture time), each appended at its capture time."""
    prod = Producer({"bootstrap.servers": broker.address})
    for read_id, plate, ts in reads:
        value = orjson.dumps({"read_id": read_id, "camera_id": "CAM-R", "ts": ts.isoformat(), "plate_raw": plate})
        prod.produce(topic, value=value, timestamp=int(ts.timestamp() * 1000))
    assert prod.flush(15) == 0


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    return subprocess.run([FEBLAM, *args], capture_output=True, text=True, timeout=120, check=False, env=env)


def test_retro_command_finds_the_reads_in_the_window(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    p = topic_prefix
    hot = tmp_path / "hot"
    now = datetime.now(UTC)
    write_snapshot(
        hot,
        "STOLEN",
        [
            entry("S-NEW", "7-NEW-777"),
            entry("S-LATE", "8-LAT-888", valid_from=(now - timedelta(minutes=10)).isoformat()),
            entry("S-OTHER", "9-OTH-999"),
        ],
    )
    retro_file = tmp_path / "retro.jsonl"
    live_file = tmp_path / "live.jsonl"
    sinks = (
        f'[[sinks]]\nname = "retro-desk"\npath = "{retro_file}"\nretro = true\n\n'
        f'[[sinks]]\nname = "live-only"\npath = "{live_file}"\nretro = false\n'
    )
    broker.create_topics([f"{p}.canonical", f"{p}.hits", f"{p}.deadletter"])
    publish_reads(
        broker,
        f"{p}.canonical",
        [
            ("r-old", "7-NEW-777", now - timedelta(hours=2)),  # outside the window
            ("r-in-1", "7-NEW-777", now - timedelta(minutes=30)),
            ("r-in-2", "7NEW777", now - timedelta(minutes=5)),
            ("r-late-before", "8-LAT-888", now - timedelta(minutes=20)),  # before the entry's validity
            ("r-late-after", "8-LAT-888", now - timedelta(minutes=2)),
            ("r-other", "9-OTH-999", now - timedelta(minutes=3)),  # an entry not asked for
            ("r-miss", "1-XXX-111", now - timedelta(minutes=3)),
        ],
    )
    cfg = config(tmp_path, broker, p, hot, sinks=sinks)
    first = run_cli(
        "retro", "--config", str(cfg), "--since", "1h", "--list", "STOLEN", "--entry", "S-NEW", "--entry", "S-LATE"
    )
    assert first.returncode == 0, first.stderr[-2000:]
    scanned, found = map(int, re.search(r"reads_scanned=(\d+) retro_hits=(\d+)", first.stdout).groups())  # type: ignore[union-attr]
    assert found == 3 and scanned >= 6  # the seek is by broker time; the window by capture time
    hits = hits_of(read_topic(broker.address, f"{p}.hits", expect=3, timeout=20))
    assert sorted(h["read"]["read_id"] for h in hits) == ["r-in-1", "r-in-2", "r-late-after"]
    assert all(h["retro"] is True and h["retro_of"] == h["index_version"] for h in hits)
    routed = [orjson.loads(x) for x in retro_file.read_bytes().splitlines()]
    assert sorted(h["hit_id"] for h in routed) == sorted(h["hit_id"] for h in hits), "the retro = true sink takes them"
    assert not live_file.exists() or not live_file.read_bytes(), "the retro = false sink does not"
    audit = [orjson.loads(x) for x in first.stderr.splitlines() if '"retro_scan"' in x]
    assert audit and audit[0]["entries"] == ["STOLEN/S-LATE", "STOLEN/S-NEW"] and audit[0]["hits"] == 3
    assert "7NEW777" not in first.stderr and "7-NEW-777" not in first.stderr, "ids in the audit event, never plates"
    again = run_cli(
        "retro", "--config", str(cfg), "--since", "1h", "--list", "STOLEN", "--entry", "S-NEW", "--entry", "S-LATE"
    )
    assert again.returncode == 0
    both = hits_of(read_topic(broker.address, f"{p}.hits", expect=6, timeout=20))
    assert sorted(h["hit_id"] for h in both[:3]) == sorted(h["hit_id"] for h in both[3:]), (
        "a repeated scan gives the same ids"
    )


def test_retro_command_mistakes_are_one_line(tmp_path: Path, broker: EmbeddedBroker, topic_prefix: str) -> None:
    hot = sample_hotlists(tmp_path)
    cfg = config(tmp_path, broker, topic_prefix, hot)
    bad = run_cli("retro", "--config", str(cfg), "--since", "yesterday")
    assert bad.returncode == 2 and "--since 'yesterday'" in bad.stderr and "Traceback" not in bad.stderr
    nolist = run_cli("retro", "--config", str(cfg), "--since", "1h", "--list", "NOPE")
    assert nolist.returncode == 2 and "--list 'NOPE'" in nolist.stderr


def test_an_added_entry_gets_retro_hits_for_reads_before_it(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    p = topic_prefix
    hot = sample_hotlists(tmp_path)
    broker.create_topics([f"{p}.canonical", f"{p}.hits", f"{p}.deadletter", f"{p}.changes"])
    now = datetime.now(UTC)
    publish_reads(
        broker,
        f"{p}.canonical",
        [
            ("r-before", "7-NEW-777", now - timedelta(minutes=14)),
            ("r-unchanged", "1-ABC-123", now - timedelta(minutes=13)),
        ],
    )
    env = clean_env()
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        [FEBLAM, "run", "--config", str(config(tmp_path, broker, p, hot, changes=True))],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        live = hits_of(read_topic(broker.address, f"{p}.hits", expect=1, timeout=60))  # r-unchanged, live
        assert [h["read"]["read_id"] for h in live] == ["r-unchanged"] and live[0]["retro"] is False
        change = {
            "list_id": "BE-STOLEN",
            "seq": 50,
            "op": "upsert",
            "entry_id": "S-LIVE",
            "plate": "7-NEW-777",
            "category": "stolen_vehicle",
            "priority": 1,
            "action": "intercept",
        }
        prod = Producer({"bootstrap.servers": broker.address})
        prod.produce(f"{p}.changes", value=orjson.dumps(change))
        prod.produce(
            f"{p}.changes", value=orjson.dumps({"list_id": "BE-STOLEN", "seq": 51, "op": "delete", "entry_id": "S-1"})
        )
        prod.flush(10)
        hits = hits_of(read_topic(broker.address, f"{p}.hits", expect=2, timeout=30))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    retro = [h for h in hits if h["retro"]]
    assert [h["read"]["read_id"] for h in retro] == ["r-before"], (
        "the deleted entry S-1 and the unchanged ones give none"
    )
    assert [m["entry_id"] for m in retro[0]["matches"]] == ["S-LIVE"]
    assert retro[0]["retro_of"] == retro[0]["index_version"]
    text = log.read_text()
    assert '"retro_scan"' in text and '"trigger": "swap"' in text


def test_a_delta_file_that_adds_an_entry_starts_a_scan(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    p = topic_prefix
    hot = sample_hotlists(tmp_path)
    broker.create_topics([f"{p}.canonical", f"{p}.hits", f"{p}.deadletter"])
    now = datetime.now(UTC)
    publish_reads(broker, f"{p}.canonical", [("r-before", "6-DEL-666", now - timedelta(minutes=9))])
    cfg = config(tmp_path, broker, p, hot)
    cfg.write_text(cfg.read_text().replace("shared_build = false", "shared_build = false\npoll_seconds = 0.3"))
    proc = start(cfg, tmp_path / "run.log")
    try:
        wait_log(tmp_path / "run.log", "partition_assigned")
        time.sleep(0.5)
        write_snapshot(hot, "BE-STOLEN", [{"op": "upsert", **entry("S-DELTA", "6-DEL-666")}], seq=9, kind="delta")
        hits = hits_of(read_topic(broker.address, f"{p}.hits", expect=1, timeout=60))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert [(h["read"]["read_id"], h["retro"]) for h in hits] == [("r-before", True)]


def test_a_crash_during_a_scan_loses_no_retro_hit(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    p = topic_prefix
    hot = sample_hotlists(tmp_path)
    broker.create_topics([f"{p}.canonical", f"{p}.hits", f"{p}.deadletter", f"{p}.changes"])
    now = datetime.now(UTC)
    publish_reads(broker, f"{p}.canonical", [(f"r{i}", "5-CRA-555", now - timedelta(minutes=20 - i)) for i in range(5)])
    cfg = config(tmp_path, broker, p, hot, changes=True)
    first = start(cfg, tmp_path / "run1.log")
    try:
        wait_log(tmp_path / "run1.log", "partition_assigned")
        prod = Producer({"bootstrap.servers": broker.address})
        prod.produce(
            f"{p}.changes",
            value=orjson.dumps(
                {
                    "list_id": "BE-STOLEN",
                    "seq": 70,
                    "op": "upsert",
                    "entry_id": "S-CRASH",
                    "plate": "5-CRA-555",
                    "category": "stolen_vehicle",
                    "priority": 1,
                    "action": "intercept",
                }
            ),
        )
        prod.flush(10)
        wait_log(tmp_path / "run1.log", "change_accepted")
    finally:
        first.kill()  # no clean stop: whatever the scan had not written is gone with the process
        first.wait(timeout=30)
    second = start(cfg, tmp_path / "run2.log")
    try:
        wait_log(tmp_path / "run2.log", '"retro_scan"')
        hits = hits_of(read_topic(broker.address, f"{p}.hits", expect=5, timeout=30))
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    retro = {h["read"]["read_id"]: h["hit_id"] for h in hits if h["retro"]}
    assert set(retro) == {f"r{i}" for i in range(5)}, (
        "the restart scans again (the change topic is read from its start)"
    )
    assert len({h["hit_id"] for h in hits if h["retro"]}) == 5, "the same ids, however often the scan ran"


def test_retro_on_demand_leaves_out_the_reads_whose_hit_was_emitted_live(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """``feblam retro --since 1h`` with no --list scans every entry: the reads the job already hit live are not
    re-emitted as retro hits (same ids, flagged retro); only an entry added since finds its earlier read."""
    p = topic_prefix
    hot = tmp_path / "hot"
    now = datetime.now(UTC)
    write_snapshot(hot, "STOLEN", [entry("S-LIVE", "7-LIV-777")])
    broker.create_topics([f"{p}.canonical", f"{p}.hits", f"{p}.deadletter"])
    publish_reads(
        broker,
        f"{p}.canonical",
        [("r-live", "7-LIV-777", now - timedelta(minutes=20)), ("r-later", "6-LAT-666", now - timedelta(minutes=10))],
    )
    cfg = config(tmp_path, broker, p, hot)
    log = tmp_path / "run.log"
    job = subprocess.Popen(
        [FEBLAM, "run", "--config", str(cfg)], stdout=log.open("ab"), stderr=subprocess.STDOUT, env=clean_env()
    )
    try:
        live = hits_of(read_topic(broker.address, f"{p}.hits", expect=1, timeout=60))
        assert [h["read"]["read_id"] for h in live] == ["r-live"] and live[0]["retro"] is False
    finally:
        job.send_signal(signal.SIGTERM)
        assert job.wait(timeout=30) == 0, log.read_text()[-2000:]
    write_snapshot(
        hot, "STOLEN", [{**entry("S-LATER", "6-LAT-666"), "op": "upsert"}], seq=2, kind="delta"
    )  # listed after its read

    scan = run_cli("retro", "--config", str(cfg), "--since", "1h")
    assert scan.returncode == 0, scan.stderr[-2000:]
    assert "retro_hits=1" in scan.stdout, scan.stdout
    assert '"retro_live_hits_left_out"' in scan.stderr
    hits = hits_of(read_topic(broker.address, f"{p}.hits", expect=2, timeout=20))
    assert [(h["read"]["read_id"], h["retro"]) for h in hits] == [("r-live", False), ("r-later", True)]
