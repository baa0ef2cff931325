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


def board_of(url: str, user: str, password: str) -> list[dict]:
    """A desk's board through the console, signed in as the demo prints."""
    import httpx2

    with httpx2.Client(base_url=url, timeout=10) as client:
        form = client.get("/login").text
        token = re.search(r"name=csrf value='([^']+)'", form).group(1)  # type: ignore[union-attr]
        signed_in = client.post("/login", data={"csrf": token, "user": user, "password": password})
        assert signed_in.status_code in (200, 303), signed_in.text[:300]
        return client.get("/api/board").json()["cards"]


def test_demo_runs_and_stops_its_broker(tmp_path: Path) -> None:
    from sources.broker import free_port
    from tests.support.processes import clean_env, wait_for

    before = tansu_processes()
    exe = str(Path(sys.executable).with_name("feblam"))
    port = free_port()
    proc = subprocess.Popen(
        [exe, "demo", "--seconds", "16", "--out-dir", str(tmp_path / "d"), "--rate", "3000", "--http-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean_env(), "FEBLAM_GATEWAY_HTTP_PORT": str(port)},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while not any("Hit Gateway" in x for x in lines):
        line = proc.stdout.readline()
        assert line, "the demo ended without a console line"
        lines.append(line)
    console = lines[-1]
    m = re.search(r"console: (http://\S+) - sign in as (demo-brussels) .* with password (\S+)", console)
    assert m, console
    url, user, password = m.groups()
    assert url == f"http://127.0.0.1:{port}/"
    national: list[dict] = []
    assert wait_for(lambda: national.extend(board_of(url, "demo-national", password)) or national, 30), (
        "no hit on the board"
    )
    assert all(c["hit"]["priority"] == 1 or c["case"]["escalated_from"] for c in national)
    assert isinstance(board_of(url, user, password), list)  # the printed login works for the regional desk too

    # the demo's story: the stolen car at four Brussels cameras and two Antwerp ones is one case per desk
    def theft(desk_user: str) -> list[dict]:
        return [
            c
            for c in board_of(url, desk_user, password)
            if any(m["entry_id"] == "S-DEMO-THEFT" for m in c["hit"]["matches"])
        ]

    assert wait_for(lambda: [c["case"]["seen"] for c in theft("demo-brussels")] == [4], 20), theft("demo-brussels")
    assert wait_for(lambda: [c["case"]["seen"] for c in theft("demo-antwerp")] == [2], 10), theft("demo-antwerp")
    (ant,) = theft("demo-antwerp")
    assert [o["desk"] for o in ant["case"]["also_open"]] == ["sicad-brussels"] or "sicad-national" in [
        o["desk"] for o in ant["case"]["also_open"]
    ]
    (national_case,) = theft("demo-national")  # the national desk sees every P1: one case with all six
    assert national_case["case"]["seen"] == 6
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    out = subprocess.CompletedProcess(proc.args, 0, "".join(lines) + rest, err)
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
