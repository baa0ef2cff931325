"""The job against the real bundled broker: feblam run as operators run it (a subprocess)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from feblam.cli import main
from sources.broker import EmbeddedBroker, free_port
from tests.support.hotlists import EXAMPLES, entry, sample_hotlists, write_snapshot
from tests.support.kafka import hits_of, produce, produce_file, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

FEBLAM = str(Path(sys.executable).with_name("feblam"))
VENDOR_FILES = {
    "vendor-a": "vendor-a.jsonl",
    "vendor-b": "vendor-b.jsonl",
    "vendor-c": "vendor-c.txt",
    "canonical": "canonical.jsonl",
}


def config(
    tmp: Path,
    broker: EmbeddedBroker,
    prefix: str,
    *,
    hotlists: Path = EXAMPLES / "hotlists",
    recovery: Path | None = None,
    extra_sinks: str = "",
    window: int = 0,
) -> Path:
    sources = "".join(f'[[sources]]\ntopic = "{prefix}.{v}"\nvendor = "{v}"\n\n' for v in VENDOR_FILES)
    text = f"""
[kafka]
brokers = "{broker.address}"
poll_timeout_ms = 20

{sources}
[hotlists]
dir = "{hotlists}"
poll_seconds = 0.3

[dedup]
window_seconds = {window}

[deadletter]
topic = "{prefix}.deadletter"

[[sinks]]
name = "all-hits"
topic = "{prefix}.hits"
{extra_sinks}
[recovery]
dir = "{recovery or ""}"
snapshot_seconds = 0.5

[logging]
format = "json"

[http]
port = 0

[privacy]
hash_key = "a-test-key-of-this-deployment"
"""
    path = tmp / "feblam.toml"
    path.write_text(text)
    return path


def make_topics(broker: EmbeddedBroker, prefix: str, partitions: int = 2) -> None:
    broker.create_topics(
        [f"{prefix}.{v}" for v in VENDOR_FILES] + [f"{prefix}.hits", f"{prefix}.p1", f"{prefix}.deadletter"],
        partitions=partitions,
    )


def publish_samples(broker: EmbeddedBroker, prefix: str) -> None:
    for vendor, name in VENDOR_FILES.items():
        produce_file(broker.address, f"{prefix}.{vendor}", EXAMPLES / "input" / name)


def start(cfg: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [FEBLAM, "run", "--config", str(cfg), *args], stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def replay_hits(tmp: Path) -> tuple[list[dict], list[dict]]:
    args = [
        "replay",
        "--hotlists",
        str(EXAMPLES / "hotlists"),
        "--dedup-window",
        "0",
        "--quiet",
        "--out",
        str(tmp / "replay.jsonl"),
        "--dlq",
        str(tmp / "replay-dlq.jsonl"),
    ]
    for vendor, name in VENDOR_FILES.items():
        args += ["--input", f"{vendor}={EXAMPLES / 'input' / name}"]
    assert main(args) == 0
    read = lambda p: [orjson.loads(x) for x in p.read_bytes().splitlines()]  # noqa: E731
    return read(tmp / "replay.jsonl"), read(tmp / "replay-dlq.jsonl")


def essence(hits: list[dict]) -> list[tuple]:
    return sorted((h["hit_id"], h["priority"], h["read"]["read_id"], orjson.dumps(h["matches"])) for h in hits)


def test_run_gives_exactly_the_hits_of_replay(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    expected, expected_dead = replay_hits(tmp_path)
    make_topics(broker, topic_prefix)
    publish_samples(broker, topic_prefix)
    proc = start(config(tmp_path, broker, topic_prefix), tmp_path / "run.log")
    try:
        hits = hits_of(read_topic(broker.address, f"{topic_prefix}.hits", expect=len(expected), timeout=60))
        dead = hits_of(read_topic(broker.address, f"{topic_prefix}.deadletter", expect=len(expected_dead), timeout=20))
    finally:
        assert stop(proc) == 0, (tmp_path / "run.log").read_text()[-3000:]
    assert essence(hits) == essence(expected)
    assert sorted((d["payload"], d["error"]) for d in dead) == sorted((d["payload"], d["error"]) for d in expected_dead)
    assert all(d["source"].startswith(topic_prefix) and "partition" in d and "offset" in d for d in dead)


def test_hits_are_keyed_by_a_hash_and_routed_by_rules(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    make_topics(broker, topic_prefix)
    publish_samples(broker, topic_prefix)
    liege = tmp_path / "liege.jsonl"
    sinks = (
        f'[[sinks]]\nname = "p1"\ntopic = "{topic_prefix}.p1"\nmax_priority = 1\n\n'
        f'[[sinks]]\nname = "liege"\npath = "{liege}"\ncamera_prefixes = ["CAM-LIE-"]\n'
    )
    proc = start(config(tmp_path, broker, topic_prefix, extra_sinks=sinks), tmp_path / "run.log")
    try:
        msgs = read_topic(broker.address, f"{topic_prefix}.p1", expect=7, timeout=60)
        all_hits = read_topic(broker.address, f"{topic_prefix}.hits", expect=17, timeout=20)
    finally:
        assert stop(proc) == 0
    p1 = hits_of(msgs)
    assert p1 and all(h["priority"] == 1 and "p1" in h["routes"] for h in p1)
    assert len(p1) == sum(1 for h in hits_of(all_hits) if h["priority"] == 1)
    for m in msgs:
        plate = orjson.loads(m.value())["read"]["plate"]
        assert m.key() and plate.encode() not in m.key()
    # one vehicle, one partition
    by_key: dict[bytes, set[int]] = {}
    for m in all_hits:
        by_key.setdefault(m.key(), set()).add(m.partition())
    assert all(len(parts) == 1 for parts in by_key.values())
    lie = [orjson.loads(x) for x in liege.read_bytes().splitlines()]
    assert lie and all(h["read"]["camera_id"].startswith("CAM-LIE-") for h in lie)


def test_hotlist_change_while_running(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    hot = sample_hotlists(tmp_path)
    make_topics(broker, topic_prefix, partitions=1)
    proc = start(config(tmp_path, broker, topic_prefix, hotlists=hot), tmp_path / "run.log")
    topic = f"{topic_prefix}.canonical"

    def read(read_id: str, plate: str) -> bytes:
        return orjson.dumps(
            {"read_id": read_id, "camera_id": "CAM-X", "ts": "2026-11-28T12:00:00Z", "plate_raw": plate}
        )

    try:
        produce(broker.address, topic, [read("r1", "7-NEW-777"), read("r2", "1-NEW-001")])
        first = hits_of(read_topic(broker.address, f"{topic_prefix}.hits", expect=1, timeout=60))
        assert [h["read"]["read_id"] for h in first] == ["r2"]
        old_version = first[0]["index_version"]
        # a bad snapshot is rejected; the live index stays
        write_snapshot(
            hot, "BE-STOLEN", [{"op": "upsert", **entry("S-9", "7-NEW-777", priority=0)}], seq=8, kind="delta"
        )
        time.sleep(1.5)
        produce(broker.address, topic, [read("r3", "1-NEW-001")])
        second = hits_of(read_topic(broker.address, f"{topic_prefix}.hits", expect=2, timeout=30))
        assert second[-1]["read"]["read_id"] == "r3" and second[-1]["index_version"] == old_version
        # a good delta goes live without a restart
        (hot / "BE-STOLEN" / "000008-delta.csv").unlink()
        write_snapshot(hot, "BE-STOLEN", [{"op": "upsert", **entry("S-9", "7-NEW-777")}], seq=9, kind="delta")
        deadline = time.monotonic() + 30
        hits: list[dict] = second
        n = 0
        while time.monotonic() < deadline and not any(h["read"]["read_id"].startswith("r4") for h in hits):
            n += 1
            produce(broker.address, topic, [read(f"r4-{n}", "7-NEW-777")])
            time.sleep(0.5)
            hits = hits_of(read_topic(broker.address, f"{topic_prefix}.hits", idle=0.5, timeout=5))
        new = [h for h in hits if h["read"]["read_id"].startswith("r4")]
        assert new and new[0]["matches"][0]["entry_id"] == "S-9"
        assert new[0]["index_version"] != old_version
    finally:
        assert stop(proc) == 0
    log = (tmp_path / "run.log").read_text()
    assert "snapshot_rejected" in log and "index_swapped" in log
    assert "7NEW777" not in log and "7-NEW-777" not in log


def test_two_process_cluster_emits_each_hit_once(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    expected, _ = replay_hits(tmp_path)
    make_topics(broker, topic_prefix, partitions=4)
    publish_samples(broker, topic_prefix)
    cfg = config(tmp_path, broker, topic_prefix)
    addresses = f"127.0.0.1:{free_port()};127.0.0.1:{free_port()}"
    procs = [start(cfg, tmp_path / f"p{i}.log", "-i", str(i), "-a", addresses) for i in range(2)]
    try:
        hits = hits_of(read_topic(broker.address, f"{topic_prefix}.hits", expect=len(expected), timeout=90))
    finally:
        for p in procs:  # a cluster stops when every process has been told to
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=30) for p in procs]
    assert codes == [0, 0]
    assert essence(hits) == essence(expected)
    assert len({h["hit_id"] for h in hits}) == len(hits)
    logs = [(tmp_path / f"p{i}.log").read_text() for i in range(2)]
    assert all("partition_assigned" in text for text in logs), "both processes read partitions"


def test_restart_on_the_same_recovery_dir_loses_no_hit(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    expected, _ = replay_hits(tmp_path)
    make_topics(broker, topic_prefix, partitions=1)
    state = tmp_path / "state"
    cfg = config(tmp_path, broker, topic_prefix, recovery=state)
    # first half of every input, then stop
    halves: dict[str, list[bytes]] = {}
    for vendor, name in VENDOR_FILES.items():
        lines = [x for x in (EXAMPLES / "input" / name).read_bytes().splitlines() if x.strip()]
        halves[vendor] = lines
        produce(broker.address, f"{topic_prefix}.{vendor}", lines[: len(lines) // 2])
    proc = start(cfg, tmp_path / "run1.log")
    try:
        read_topic(broker.address, f"{topic_prefix}.hits", idle=3.0, timeout=60)
        time.sleep(1.5)  # let a snapshot be taken
    finally:
        assert stop(proc) == 0
    for vendor, lines in halves.items():
        produce(broker.address, f"{topic_prefix}.{vendor}", lines[len(lines) // 2 :])
    proc = start(cfg, tmp_path / "run2.log")
    try:
        hits = hits_of(read_topic(broker.address, f"{topic_prefix}.hits", expect=len(expected), timeout=60))
    finally:
        assert stop(proc) == 0
    assert {h["hit_id"] for h in hits} == {h["hit_id"] for h in expected}
    run2 = (tmp_path / "run2.log").read_text()
    assert run2.count('"resume_offset": ') == len(VENDOR_FILES)
    assert '"resume_offset": null' not in run2, "the second run resumes from the stored offsets"
    assert any(p.name.startswith("part-") for p in state.iterdir())
