"""The operator's first day, as the README walks it (issue #20): only FEBLAM's own commands, the example files.

``feblam broker``, ``feblam topics create``, ``feblam run``, ``feblam gateway``,
``feblam produce`` of every sample input: hits on the boards, every sample hit
at some desk of ``examples/gateway.toml``; ``feblam change … upsert`` makes a
plate hit without a restart.
"""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from sources.broker import free_port
from tests.support.gateway import ConsoleUser
from tests.support.hotlists import EXAMPLES
from tests.support.kafka import read_topic
from tests.support.processes import FEBLAM, clean_env, wait_for, wait_log

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
JOB, GATEWAY = str(EXAMPLES / "feblam.toml"), str(EXAMPLES / "gateway.toml")
#: The sample hits of examples/input (the replay test of DESIGN 7 counts the same).
SAMPLE_HITS = 15


def test_the_first_day_by_hand(tmp_path: Path) -> None:
    port, console = free_port(), free_port()
    brokers = f"127.0.0.1:{port}"
    env = clean_env() | {
        "FEBLAM_KAFKA_BROKERS": brokers,
        "FEBLAM_HOTLISTS_DIR": str(EXAMPLES / "hotlists"),
        "FEBLAM_HTTP_PORT": "0",
        "FEBLAM_GATEWAY_HTTP_PORT": str(console),
    }

    def feblam(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FEBLAM, *args], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False
        )

    def background(name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("ab")
        return subprocess.Popen([FEBLAM, *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)

    broker = background("broker", "broker", "--port", str(port))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        wait_log(tmp_path / "broker.log", "in memory", 30)
        created = feblam("topics", "create", "--config", JOB, "--config", GATEWAY)
        assert created.returncode == 0, created.stderr
        assert "hotlist.changes: created (6 partitions, compacted)" in created.stdout
        again = feblam("topics", "create", "--config", JOB, "--config", GATEWAY)
        assert again.returncode == 0 and again.stdout.splitlines()[-1].startswith("0 created, 12 already there")
        procs += [background("run", "run", "--config", JOB), background("gateway", "gateway", "--config", GATEWAY)]
        assert wait_for(lambda: (tmp_path / "run.log").read_text().count('"partition_assigned"') == 4 * 6, 60)
        wait_log(tmp_path / "gateway.log", "console_listening", 60)
        wait_log(tmp_path / "gateway.log", '"topic": "hit-actions", "partition": 5', 60)

        for vendor, name in (
            ("vendor-a", "vendor-a.jsonl"),
            ("vendor-b", "vendor-b.jsonl"),
            ("vendor-c", "vendor-c.txt"),
            ("canonical", "canonical.jsonl"),
        ):
            sent = feblam("produce", "--config", JOB, "--vendor", vendor, str(EXAMPLES / "input" / name))
            assert sent.returncode == 0, sent.stderr
            assert sent.stdout.startswith("produced ") and f"to reads.{vendor}" in sent.stdout
        hits = [orjson.loads(m.value()) for m in read_topic(brokers, "hits", expect=SAMPLE_HITS, timeout=60)]
        assert len(hits) == SAMPLE_HITS

        url = f"http://127.0.0.1:{console}"
        users = [
            ConsoleUser(url, u, "change-me-before-use") for u in ("dispatcher-bxl", "dispatcher-ant", "dispatcher-nat")
        ]

        def at_some_desk() -> set[str]:
            return {hit_id for u in users for hit_id in u.board()}

        assert wait_for(lambda: at_some_desk() == {h["hit_id"] for h in hits}, 30), "every sample hit at a desk"

        # A plate nobody lists, listed with one command: its next read is a hit, no restart.
        changed = feblam(
            "change", "--config", JOB, "--list", "BE-STOLEN", "upsert", "--entry", "S-BY-HAND",
            "--plate", "1-HND-001", "--category", "stolen_vehicle", "--priority", "1", "--action", "intercept",
        )  # fmt: skip
        assert changed.returncode == 0, changed.stderr
        assert "BE-STOLEN/S-BY-HAND: upsert seq" in changed.stdout and "hotlist.changes" in changed.stdout
        wait_log(tmp_path / "run.log", '"event": "changes_live"', 10)
        published = time.monotonic()
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        read = orjson.dumps({"read_id": "r-by-hand", "camera_id": "CAM-BXL-77", "ts": ts, "plate_raw": "1HND001"})
        stdin = subprocess.run(
            [FEBLAM, "produce", "--config", JOB, "--vendor", "canonical", "-"],
            input=read + b"\n", capture_output=True, timeout=60, env=env, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert stdin.returncode == 0, stdin.stderr
        new = [orjson.loads(m.value()) for m in read_topic(brokers, "hits", expect=SAMPLE_HITS + 1, timeout=30)]
        mine = [h for h in new if h["read"]["read_id"] == "r-by-hand"]
        assert mine and mine[0]["matches"][0]["entry_id"] == "S-BY-HAND"
        assert time.monotonic() - published < 10

        upsert_seq = int(changed.stdout.split(" seq ")[1].split()[0])
        deleted = feblam("change", "--config", JOB, "--list", "BE-STOLEN", "delete", "--entry", "S-BY-HAND")
        assert deleted.returncode == 0, deleted.stderr
        assert f"delete seq {upsert_seq + 1} published" in deleted.stdout  # the next one, read from the topic

        refused = feblam(
            "change", "--config", JOB, "--list", "BE-STOLEN", "upsert", "--entry", "S-BAD", "--priority", "9"
        )
        assert refused.returncode == 2 and "column" in refused.stderr and "Traceback" not in refused.stderr
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(timeout=30) == 0, [(tmp_path / f).read_text()[-2000:] for f in ("run.log", "gateway.log")]
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=15)
    for name in ("run.log", "gateway.log"):
        assert "Traceback" not in (tmp_path / name).read_text()
