"""Every operator mistake of issue #9: one clear line naming the thing, a non-zero status, no traceback, no hang.

Each row runs the real ``feblam`` command as an operator would (a subprocess).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from sources.broker import EmbeddedBroker, free_port
from tests.support.hotlists import EXAMPLES
from tests.support.processes import FEBLAM, assert_one_clear_line, canonical, clean_env, feblam, start, wait_for


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[kafka]\nstart = 'beginning'\n", "kafka.start"),
        ("[logging]\nlevel = 'verbose'\n", "logging.level"),
        ("[hotlists]\nbloom_backend = 'rbloomm'\n", "hotlists.bloom_backend"),
        ("[hotlists]\nbloom_fp_rate = 2\n", "hotlists.bloom_fp_rate"),
        ("[logging]\nformat = 'jsno'\n", "logging.format"),
        ("[hotlists]\nshards = 0\n", "hotlists.shards"),
    ],
)
@pytest.mark.parametrize("command", ["check", "run"])
def test_a_bad_value_is_named_by_config_check_and_run(tmp_path: Path, text: str, key: str, command: str) -> None:
    cfg = tmp_path / "feblam.toml"
    cfg.write_text(text)
    args = ["config", "check", "--config", str(cfg)] if command == "check" else ["run", "--config", str(cfg)]
    assert_one_clear_line(feblam(*args), key, str(cfg))


def test_a_misspelt_environment_variable_is_named() -> None:
    proc = feblam("config", "check", env={"FEBLAM_KAFKA_BROKER": "k:9092"})
    line = assert_one_clear_line(proc, "FEBLAM_KAFKA_BROKER")
    assert "did you mean FEBLAM_KAFKA_BROKERS" in line


def test_the_example_configuration_checks_and_version_prints() -> None:
    ok = feblam("config", "check", "--config", str(EXAMPLES / "feblam.toml"))
    assert ok.returncode == 0, ok.stderr
    v = feblam("--version")
    assert v.returncode == 0
    assert v.stdout.startswith("feblam ") and "bytewax 0.21" in v.stdout and "librdkafka " in v.stdout


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "feblam.toml"
    cfg.write_text(
        "[kafka]\nsecurity_protocol = 'sasl_ssl'\nsasl_mechanism = 'PLAIN'\nsasl_username = 'feblam'\nsasl_password = 'hunter2-secret'\n"
    )
    proc = feblam("config", "show", "--config", str(cfg), env={"FEBLAM_PRIVACY_HASH_KEY": "a-long-secret-key-0001"})
    assert proc.returncode == 0, proc.stderr
    shown = orjson.loads(proc.stdout)
    assert shown["kafka"]["sasl_password"] == "***"  # noqa: S105 - the mask
    assert shown["privacy"]["hash_key"] == "***"
    assert "hunter2" not in proc.stdout and "a-long-secret" not in proc.stdout


@pytest.mark.parametrize("command", [["run"], ["retro", "--since", "1h"], ["gateway"]])
def test_the_development_hash_key_is_refused(tmp_path: Path, command: list[str]) -> None:
    cfg = tmp_path / "feblam.toml"
    cfg.write_text('[logging]\nformat = "json"\n')  # no [privacy]: the development key
    proc = feblam(*command, "--config", str(cfg), timeout=20)
    line = assert_one_clear_line(proc, "privacy.hash_key", "development key", f"feblam {command[0]}")
    assert proc.returncode == 2, line


def test_probe_at_a_word_is_one_line() -> None:
    proc = feblam("index", "probe", "1ABC123", "--hotlists", str(EXAMPLES / "hotlists"), "--at", "yesterday")
    assert_one_clear_line(proc, "--at", "yesterday")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["-a", "127.0.0.1:7001;127.0.0.1:7002", "-i", "5"], "-i/--process-id 5"),
        (["-a", "127.0.0.1:7001;127.0.0.1:7002"], "without -i"),
        (["-i", "1"], "needs -a"),
        (["-a", "nonsense", "-i", "0"], "'nonsense' is not host:port"),
        (["-w", "0"], "-w/--workers 0"),
    ],
)
def test_bad_cluster_flags_end_at_once(flags: list[str], named: str) -> None:
    started = time.monotonic()
    proc = feblam("run", *flags, timeout=20, env={"FEBLAM_PRIVACY_HASH_KEY": "a-test-key-of-this-deployment"})
    assert_one_clear_line(proc, named)
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------- broker and topics


def run_config(tmp: Path, brokers: str, prefix: str, **extra: str) -> Path:
    text = f"""
[kafka]
brokers = "{brokers}"
start_timeout_seconds = 3
poll_timeout_ms = 20
delivery_timeout_seconds = {extra.get("delivery", "30")}

[[sources]]
topic = "{prefix}.canonical"
vendor = "canonical"

[hotlists]
dir = "{EXAMPLES / "hotlists"}"
shared_build = false

[dedup]
window_seconds = 0

[deadletter]
topic = "{prefix}.deadletter"

[[sinks]]
name = "hits"
topic = "{extra.get("sink_topic", prefix + ".hits")}"
{extra.get("sinks", "")}
[recovery]
dir = "{extra.get("recovery", "")}"
snapshot_seconds = 0.3

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


def test_unreachable_broker_is_one_line_within_the_start_timeout(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    proc = feblam("run", "--config", str(run_config(tmp_path, dead, "t")))
    assert_one_clear_line(proc, dead, "kafka.brokers")
    assert time.monotonic() - started < 15
    assert proc.stderr.count("\n") < 10, "librdkafka's own lines do not flood the log"


@pytest.mark.kafka
def test_wrong_source_topic_is_named(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    broker.create_topics([f"{topic_prefix}.hits", f"{topic_prefix}.deadletter"])
    proc = feblam("run", "--config", str(run_config(tmp_path, broker.address, topic_prefix)))
    assert_one_clear_line(proc, f"{topic_prefix}.canonical", "source topic")


@pytest.mark.kafka
def test_missing_sink_topic_is_named_not_created(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    broker.create_topics([f"{topic_prefix}.canonical", f"{topic_prefix}.deadletter"])
    proc = feblam("run", "--config", str(run_config(tmp_path, broker.address, topic_prefix)))
    assert_one_clear_line(proc, f"{topic_prefix}.hits", "sink topic", "never auto-created")
    from confluent_kafka.admin import AdminClient

    assert (
        f"{topic_prefix}.hits" not in AdminClient({"bootstrap.servers": broker.address}).list_topics(timeout=5).topics
    )


def jsonl(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()] if path.exists() else []


@pytest.mark.kafka
def test_jsonl_sink_keeps_the_first_runs_hits_after_a_restart_without_recovery(
    broker: EmbeddedBroker,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    from tests.support.kafka import produce

    broker.create_topics([f"{topic_prefix}.{t}" for t in ("canonical", "hits", "deadletter")])
    out = tmp_path / "hits.jsonl"
    cfg = run_config(tmp_path, broker.address, topic_prefix, sinks=f'[[sinks]]\nname = "file"\npath = "{out}"\n')
    produce(broker.address, f"{topic_prefix}.canonical", [canonical("r1", "1-NEW-001")])
    first = start(cfg, tmp_path / "run1.log")
    try:
        assert wait_for(lambda: len(jsonl(out)) == 1, 60), (tmp_path / "run1.log").read_text()[-2000:]
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    produce(broker.address, f"{topic_prefix}.canonical", [canonical("r2", "1-NEW-001")])
    second = start(cfg, tmp_path / "run2.log")  # no recovery: reads from the start again, appends
    try:
        assert wait_for(lambda: {h["read"]["read_id"] for h in jsonl(out)} >= {"r1", "r2"}, 60)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    ids = [h["read"]["read_id"] for h in jsonl(out)]
    assert ids[0] == "r1", "the first run's hit is still the first line"
    assert set(ids) == {"r1", "r2"}


@pytest.mark.kafka
def test_a_second_job_on_the_same_recovery_directory_exits_at_once(
    broker: EmbeddedBroker,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    broker.create_topics([f"{topic_prefix}.{t}" for t in ("canonical", "hits", "deadletter")])
    state = tmp_path / "state"
    cfg = run_config(tmp_path, broker.address, topic_prefix, recovery=str(state))
    first = start(cfg, tmp_path / "run1.log")
    try:
        assert wait_for(lambda: "partition_assigned" in (tmp_path / "run1.log").read_text(), 60)
        started = time.monotonic()
        second = feblam("run", "--config", str(cfg), timeout=30)
        assert time.monotonic() - started < 5
        assert_one_clear_line(second, str(state), "in use")
        assert first.poll() is None, "the first job runs on"
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0


@pytest.mark.kafka
def test_sigterm_stops_a_process_waiting_for_its_cluster(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    broker.create_topics([f"{topic_prefix}.{t}" for t in ("canonical", "hits", "deadletter")])
    cfg = run_config(tmp_path, broker.address, topic_prefix)
    addresses = f"127.0.0.1:{free_port()};127.0.0.1:{free_port()}"  # the peer never comes
    proc = start(cfg, tmp_path / "run.log", "-i", "0", "-a", addresses)
    try:
        assert wait_for(lambda: "starting" in (tmp_path / "run.log").read_text(), 30)
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code != 0 or "stopping" in (tmp_path / "run.log").read_text()
    assert "Traceback" not in (tmp_path / "run.log").read_text()


@pytest.mark.kafka
def test_a_process_whose_peer_never_comes_names_it(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    broker.create_topics([f"{topic_prefix}.{t}" for t in ("canonical", "hits", "deadletter")])
    cfg = run_config(tmp_path, broker.address, topic_prefix)  # start timeout 3 s: the cluster must form in 9 s
    peer = f"127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [FEBLAM, "run", "--config", str(cfg), "-i", "0", "-a", f"127.0.0.1:{free_port()};{peer}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )
    line = assert_one_clear_line(proc, peer, "did not form")
    assert "peers not answering" in line


@pytest.mark.kafka
def test_a_lost_peer_is_named_by_the_survivor(broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path) -> None:
    from tests.support.kafka import produce

    broker.create_topics([f"{topic_prefix}.{t}" for t in ("canonical", "hits", "deadletter")], partitions=2)
    cfg = run_config(tmp_path, broker.address, topic_prefix)
    peers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    procs = [start(cfg, tmp_path / f"p{i}.log", "-i", str(i), "-a", ";".join(peers)) for i in range(2)]
    try:
        produce(broker.address, f"{topic_prefix}.canonical", [canonical(f"r{i}", "1-NEW-001") for i in range(10)])
        assert wait_for(lambda: all("partition_assigned" in (tmp_path / f"p{i}.log").read_text() for i in range(2)), 60)
        time.sleep(1)
        procs[1].kill()
        code = procs[0].wait(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    log = (tmp_path / "p0.log").read_text()
    assert code == 1, log[-3000:]
    assert "Traceback" not in log and "panicked" not in log, log[-3000:]
    errors = [line for line in log.splitlines() if line.startswith("feblam: error:")]
    assert len(errors) == 1 and peers[1] in errors[0], log[-3000:]
    assert '"job_failed"' in log


@pytest.mark.kafka
def test_a_sink_that_cannot_deliver_is_one_event_then_a_non_zero_exit(tmp_path: Path) -> None:
    from tests.support.kafka import produce
    from tests.support.proxy import KafkaProxy

    prefix = "cut"
    with KafkaProxy() as proxy:  # a broker of this test's own behind a proxy that stops confirming hits
        proxy.broker.create_topics([f"{prefix}.{t}" for t in ("canonical", "hits", "deadletter")])
        cfg = run_config(tmp_path, proxy.address, prefix, delivery="3")
        proc = start(cfg, tmp_path / "run.log")
        try:
            assert wait_for(lambda: "partition_assigned" in (tmp_path / "run.log").read_text(), 60)
            produce(proxy.address, f"{prefix}.canonical", [canonical("r1", "1-NEW-001")])
            proxy.mode = "drop_produce"  # the read is on the topic; the job's hit is never confirmed
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    log = (tmp_path / "run.log").read_text()
    assert code == 1, log[-3000:]
    assert "Traceback" not in log and "panicked" not in log, log[-3000:]
    errors = [line for line in log.splitlines() if line.startswith("feblam: error:")]
    assert len(errors) == 1 and f"{prefix}.hits" in errors[0], log[-3000:]
    assert '"job_failed"' in log


@pytest.mark.kafka
def test_the_example_configuration_runs_against_feblam_broker(tmp_path: Path) -> None:
    from tests.support.kafka import hits_of, produce_file, read_topic

    port = free_port()
    env = clean_env()
    broker = subprocess.Popen(
        [FEBLAM, "broker", "--config", str(EXAMPLES / "feblam.toml"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert broker.stdout is not None
        assert "topics: reads.vendor-a" in broker.stdout.readline()
        assert f"broker 127.0.0.1:{port}" in broker.stdout.readline()
        env |= {"FEBLAM_KAFKA_BROKERS": f"127.0.0.1:{port}", "FEBLAM_HOTLISTS_DIR": str(EXAMPLES / "hotlists")}
        job = subprocess.Popen(
            [FEBLAM, "run", "--config", str(EXAMPLES / "feblam.toml")],
            cwd=tmp_path,
            env=env,
            stdout=(tmp_path / "run.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            produce_file(f"127.0.0.1:{port}", "reads.canonical", EXAMPLES / "input" / "canonical.jsonl")
            hits = hits_of(read_topic(f"127.0.0.1:{port}", "hits", expect=1, timeout=60))
            assert hits and all(h["routes"] for h in hits)
        finally:
            job.send_signal(signal.SIGTERM)
            assert job.wait(timeout=30) == 0, (tmp_path / "run.log").read_text()[-2000:]
        assert (tmp_path / "example-out" / "audit").is_dir(), "the audit sink wrote its day folders at close"
        assert (tmp_path / "example-out" / "state").is_dir()
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(timeout=15) == 0


def test_a_file_output_without_room_is_one_line_before_start(tmp_path: Path) -> None:
    """A full disk (here: a floor no disk meets) is named with the sink and the folder at once, exit 2, so the
    supervisor does not restart the job in a loop (RestartPreventExitStatus=2)."""
    sink = f'[[sinks]]\nname = "hits-file"\npath = "{tmp_path / "out" / "hits.jsonl"}"\n'
    cfg = run_config(tmp_path, f"127.0.0.1:{free_port()}", "t", sinks=sink)
    proc = feblam("run", "--config", str(cfg), env={"FEBLAM_OUTPUTS_MIN_FREE_MB": "10000000"}, timeout=30)
    line = assert_one_clear_line(proc, "sinks 'hits-file'", "outputs.min_free_mb", str(tmp_path))
    assert proc.returncode == 2, line


@pytest.mark.kafka
def test_a_disk_full_while_running_is_one_line_naming_the_file(
    broker: EmbeddedBroker, topic_prefix: str, tmp_path: Path
) -> None:
    """/dev/full takes no byte (ENOSPC), like a disk that filled up after the start."""
    from tests.support.kafka import produce

    p = topic_prefix
    broker.create_topics([f"{p}.canonical", f"{p}.hits", f"{p}.deadletter"])
    sink = '[[sinks]]\nname = "hits-file"\npath = "/dev/full"\n'
    cfg = run_config(tmp_path, broker.address, p, sinks=sink)
    job = subprocess.Popen(
        [FEBLAM, "run", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env() | {"FEBLAM_OUTPUTS_MIN_FREE_MB": "0"},
    )
    time.sleep(3)
    produce(broker.address, f"{p}.canonical", [canonical("r-full", "1ABC123")])
    out, err = job.communicate(timeout=60)
    proc = subprocess.CompletedProcess(job.args, job.returncode, out, err)
    line = assert_one_clear_line(proc, "/dev/full", "No space left on device")
    assert proc.returncode == 2, line
    assert '"event": "job_failed"' in err
