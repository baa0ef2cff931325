from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def tansu_processes() -> set[str]:
    out = subprocess.run(["pgrep", "-f", "tansu.*broker"], capture_output=True, text=True)
    return set(out.stdout.split())


def test_demo_runs_and_stops_its_broker(tmp_path: Path) -> None:
    before = tansu_processes()
    exe = str(Path(sys.executable).with_name("feblam"))
    out = subprocess.run([exe, "demo", "--seconds", "9", "--out-dir", str(tmp_path / "d"), "--rate", "3000", "--http-port", "0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"reads=(\d+) hits=(\d+) deadletter=(\d+) reads_per_s=(\d+)", last)
    assert m, last
    reads, hits, dead, _rate = map(int, m.groups())
    assert reads > 1000 and hits > 0 and dead > 0
    hit_lines = (tmp_path / "d" / "hits.jsonl").read_bytes().splitlines()
    assert len(hit_lines) == hits
    assert all(orjson.loads(x)["matches"] for x in hit_lines)
    assert len((tmp_path / "d" / "deadletter.jsonl").read_bytes().splitlines()) == dead
    assert tansu_processes() <= before, "the demo left a broker running"
    # a theft reported on the change topic during the demo, and the hit that follows
    assert "theft reported: BE-STOLEN/S-DEMO-THEFT" in out.stdout
    assert "hit on the reported theft" in out.stdout
    assert any(b"S-DEMO-THEFT" in x for x in hit_lines)
