"""What operators see of a running job, against the real bundled broker: metrics, health, lag, logs."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from feblam.config import SourceSettings
from sources.broker import EmbeddedBroker, free_port
from tests.support.hotlists import EXAMPLES
from tests.support.kafka import hits_of, produce, read_topic
from tests.support.processes import FEBLAM, canonical, clean_env, start, stop, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def config(tmp: Path, brokers: str, prefix: str, http_port: int, **kw: str) -> Path:
    text = f"""
[kafka]
brokers = "{brokers}"
poll_timeout_ms = 20
group_id = "{prefix}-group"
start_timeout_seconds = 5

[[sources]]
topic = "{prefix}.canonical"
vendor = "canonical"

[[sources]]
topic = "{prefix}.vendor-a"
vendor = "vendor-a"

[hotlists]
dir = "{EXAMPLES / "hotlists"}"
shared_build = false

[dedup]
window_seconds = 0

[deadletter]
topic = "{prefix}.deadletter"

[[sinks]]
name = "all-hits"
topic = "{prefix}.hits"

[recovery]
snapshot_seconds = 0.3

[http]
port = {http_port}
broker_timeout_seconds = {kw.get("broker_timeout", "10")}

[logging]
format = "json"
stats_seconds = 1

[privacy]
hash_key = "a-test-key-of-this-deployment"
"""
    path = tmp / "feblam.toml"
    path.write_text(text)
    return path


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:  # noqa: S310 - our own loopback
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def metrics(port: int) -> dict[str, float]:
    """``name{labels}`` -> value of every sample."""
    _, body = get(port, "/metrics")
    out: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_metrics_follow_the_data(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    p = topic_prefix
    broker.create_topics([f"{p}.canonical", f"{p}.vendor-a", f"{p}.hits", f"{p}.deadletter"])
    port = free_port()
    reads = [canonical(f"r{i}", "1-NEW-001") for i in range(5)] + [canonical("r9", "9-NOT-999")]
    produce(broker.address, f"{p}.canonical", reads)  # 5 priority-1 hits (BE-STOLEN S-5 ...), 1 miss
    produce(broker.address, f"{p}.vendor-a", [b"{not json", b"[]", b'{"id": "a"}'])  # 3 dead letters
    proc = start(config(tmp_path, broker.address, p, port), tmp_path / "run.log")
    try:
        assert wait_for(lambda: metrics(port).get('feblam_reads_total{vendor="canonical"}') == 6, 60), (
            tmp_path / "run.log"
        ).read_text()[-2000:]
        hits = hits_of(read_topic(broker.address, f"{p}.hits", expect=5, timeout=30))
        assert wait_for(
            lambda: metrics(port).get(f'feblam_consumer_lag{{partition="0",topic="{p}.canonical"}}') == 0, 20
        )
        m = metrics(port)
        assert get(port, "/ready")[0] == 200 and get(port, "/live")[0] == 200
    finally:
        assert stop(proc) == 0
    assert m['feblam_reads_total{vendor="vendor-a"}'] == 3
    by_priority: dict[str, int] = {}
    for h in hits:
        by_priority[str(h["priority"])] = by_priority.get(str(h["priority"]), 0) + 1
    for priority, n in by_priority.items():
        assert m[f'feblam_hits_total{{priority="{priority}"}}'] == n
    assert sum(v for k, v in m.items() if k.startswith("feblam_hits_total")) == len(hits) == 5
    assert sum(v for k, v in m.items() if k.startswith("feblam_deadletter_total{") and 'vendor="vendor-a"' in k) == 3
    assert m['feblam_deadletter_total{reason="bad_json",vendor="vendor-a"}'] == 1
    assert m["feblam_read_to_hit_seconds_count"] == 5 and m["feblam_append_to_hit_seconds_count"] == 5
    assert m['feblam_read_to_hit_seconds_bucket{le="0.001"}'] <= m['feblam_read_to_hit_seconds_bucket{le="30.0"}']
    assert (
        any(k.startswith("feblam_index_version_info{") for k in m)
        and m['feblam_index_entries{list_id="BE-STOLEN"}'] > 0
    )
    assert any(k.startswith("feblam_build_info{") for k in m)
    # each closed epoch's positions are in the consumer group, where lag tools look
    c = Consumer({"bootstrap.servers": broker.address, "group.id": f"{p}-group"})
    committed = c.committed([TopicPartition(f"{p}.canonical", 0), TopicPartition(f"{p}.vendor-a", 0)], timeout=10)
    c.close()
    assert [tp.offset for tp in committed] == [6, 3]
    log = (tmp_path / "run.log").read_text()
    stats = [orjson.loads(x) for x in log.splitlines() if x.startswith("{") and '"stats"' in x]
    assert stats and {
        "reads_per_s",
        "hits",
        "deadletters",
        "consumer_lag",
        "index_version",
        "index_age_seconds",
    } <= set(stats[-1])
    start_event = next(orjson.loads(x) for x in log.splitlines() if '"starting"' in x)
    assert (
        start_event["versions"]["bytewax"].startswith("0.21")
        and start_event["settings"]["privacy"]["hash_key"] == "***"
    )


def test_the_lag_is_what_was_produced_and_not_yet_read(broker: EmbeddedBroker, topic_prefix: str) -> None:
    from feblam.config import KafkaSettings
    from sources.kafka import KafkaReadSource, SourceMonitor

    topic = f"{topic_prefix}.lag"
    broker.create_topics([topic])
    produce(broker.address, topic, [canonical(f"r{i}", "1-NEW-001") for i in range(10)])
    settings = KafkaSettings(brokers=broker.address, batch_size=3)
    monitor = SourceMonitor(settings)
    source = KafkaReadSource(settings, [SourceSettings(topic, "canonical")], monitor=monitor)
    reader = source.build_part("in", f"{topic}#0", None)
    c = Consumer({**settings.client_config(), "group.id": "lag-test"})
    try:
        read = 0
        deadline = time.monotonic() + 20
        while read < 3 and time.monotonic() < deadline:
            read += sum(len(b) for b in reader.next_batch())
            time.sleep(0.05)
        assert read == 3
        monitor.check(c)
        assert monitor.lag[(topic, 0)] == 10 - 3
        assert monitor.broker_ok_at > 0 and monitor.broker_error is None
    finally:
        c.close()
        reader.close()
    assert monitor.partitions == 0, "a closed partition is no longer reported"


def test_ready_follows_the_broker_and_no_hit_is_lost_across_a_cut(tmp_path: Path) -> None:
    from tests.support.proxy import KafkaProxy

    p = "cut"
    port = free_port()
    with KafkaProxy() as proxy:
        proxy.broker.create_topics([f"{p}.canonical", f"{p}.vendor-a", f"{p}.hits", f"{p}.deadletter"])
        proc = start(config(tmp_path, proxy.address, p, port, broker_timeout="3"), tmp_path / "run.log")
        try:
            assert wait_for(lambda: get(port, "/ready")[0] == 200, 60), (tmp_path / "run.log").read_text()[-2000:]
            produce(proxy.address, f"{p}.canonical", [canonical(f"a{i}", "1-NEW-001") for i in range(3)])
            proxy.cut()
            cut_at = time.monotonic()
            assert wait_for(lambda: get(port, "/ready")[0] == 503, 10)
            assert time.monotonic() - cut_at <= 3 + 2 + 1, "503 within broker_timeout_seconds (+ one monitor round)"
            status, body = get(port, "/ready")
            assert status == 503 and "has not answered" in orjson.loads(body)["reason"]
            assert get(port, "/live")[0] == 200, "a broker cut is not a reason to restart the job"
            time.sleep(4)
            proxy.restore()
            restored_at = time.monotonic()
            assert wait_for(lambda: get(port, "/ready")[0] == 200, 15)
            assert time.monotonic() - restored_at <= 10
            produce(proxy.address, f"{p}.canonical", [canonical(f"b{i}", "1-NEW-001") for i in range(3)])
            hits = hits_of(read_topic(proxy.address, f"{p}.hits", expect=6, timeout=60))
        finally:
            code = stop(proc)
    assert code == 0
    assert {h["read"]["read_id"] for h in hits} == {"a0", "a1", "a2", "b0", "b1", "b2"}
    log = (tmp_path / "run.log").read_text()
    assert "%3|" not in log and "%6|" not in log, "no raw librdkafka lines in the JSON log"
    events = [e for x in log.splitlines() if x.startswith("{") and (e := orjson.loads(x))["event"] == "librdkafka"]
    assert events, "the cut is reported through the structured log"
    kinds = [e["message"].split(" ", 1)[0] for e in events]
    assert len(events) < 60 and max(kinds.count(k) for k in set(kinds)) <= 10, "rate-limited per kind"


def test_demo_serves_metrics_and_ready(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env()
    proc = subprocess.Popen(
        [FEBLAM, "demo", "--seconds", "25", "--http-port", str(port), "--out-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:

        def hits_and_lag() -> bool:
            m = metrics(port)
            return sum(v for k, v in m.items() if k.startswith("feblam_hits_total")) > 0 and any(
                k.startswith("feblam_consumer_lag{") for k in m
            )

        assert wait_for(hits_and_lag, 25)
        m = metrics(port)
        assert sum(v for k, v in m.items() if k.startswith("feblam_reads_total")) > 0
        assert any(k.startswith("feblam_read_to_hit_seconds_bucket") for k in m)
        assert any(k.startswith("feblam_consumer_lag{") for k in m)
        assert get(port, "/ready")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)  # what an operator does; the demo stops as at the end of its time
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert f"http://127.0.0.1:{port}/metrics" in out.decode()
