"""The ``gateway`` row: the Hit Gateway with 20 desks, each with a console page connected.

``feblam gateway`` runs as an operator runs it (a subprocess, with a recovery
store) on a broker of its own. Twenty desks each take the hits of their own
camera prefix; one page per desk is signed in and follows its board's event
stream, as a browser does (the same ``/api/events`` stream the board page
reads). Two measurements:

- **latency**: hits offered at ``rate`` hits/s for ``seconds``, spread over the
  desks; for each, the time from producing it to the hits topic to its arrival
  on its desk's page (p50/p99; every hit must arrive).
- **throughput**: ``burst`` hits produced at once; hits/s from the first
  produced to the last one on a page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.data import BENCH_HASH_KEY
from feblam.children import die_with_parent

Figures = dict[str, Any]
DESKS = 20


class Page(threading.Thread):
    """One desk's console page: signs in, then records when each new hit arrives on its event stream."""

    def __init__(self, url: str, user: str, password: str) -> None:
        super().__init__(name=f"page-{user}", daemon=True)
        self.url, self.user, self.password = url, user, password
        self.seen: dict[str, float] = {}
        self.connected = threading.Event()
        self.stop_event = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        import httpx2

        try:
            with httpx2.Client(base_url=self.url, timeout=httpx2.Timeout(10.0, read=None)) as client:
                token = re.search(r"name=csrf value='([^']+)'", client.get("/login").text).group(1)  # type: ignore[union-attr]
                client.post("/login", data={"csrf": token, "user": self.user, "password": self.password})
                with client.stream("GET", "/api/events") as stream:
                    event = ""
                    for line in stream.iter_lines():
                        if line.startswith("event: "):
                            event = line[7:]
                        elif line.startswith("data: ") and event == "card":
                            now = time.time()
                            doc = orjson.loads(line[6:])
                            if doc.get("case"):  # a case opened or a sighting joined it: the card's newest hit
                                self.seen.setdefault(doc["hit"]["hit_id"], now)
                        elif line.startswith("data: ") and event == "snapshot":
                            self.connected.set()
                        if self.stop_event.is_set():
                            return
        except Exception as exc:  # reported in the row
            self.error = f"{type(exc).__name__}: {exc}"
            self.connected.set()


#: Hits of one vehicle in the bench: the first opens its case, the others join it as sightings.
SIGHTINGS = 4


def _hit(i: int) -> dict[str, Any]:
    """Hit ``i``: vehicle ``i // SIGHTINGS`` (one entry each), at a camera of one desk's region."""
    from feblam.serde import format_ts

    vehicle = i // SIGHTINGS
    desk = vehicle % DESKS

    hid = f"bench-{os.getpid()}-{i:08d}"
    ts = format_ts(datetime.now(UTC))
    return {
        "hit_id": hid,
        "index_version": "bench",
        "priority": 1 + vehicle % 3,
        "emitted_at": ts,
        "read": {
            "read_id": f"r-{hid}",
            "camera_id": f"CAM-D{desk:02d}-{i % 50:03d}",
            "vendor": "canonical",
            "ts": ts,
            "plate_raw": f"1-B{vehicle:07d}",
            "plate": f"1B{vehicle:07d}",
            "country": "BE",
            "lat": 50.85,
            "lon": 4.35,
            "image_ref": f"img://bench/{hid}.jpg",
        },
        "matches": [
            {
                "list_id": "BENCH",
                "entry_id": f"E-{vehicle}",
                "category": "stolen_vehicle",
                "priority": 1 + vehicle % 3,
                "action": "intercept",
                "match_kind": "exact",
                "owner": "bench",
                "note": "bench",
            }
        ],
        "routes": ["hits"],
        "retro": False,
        "retro_of": None,
    }


def gateway(cache: Path, *, rate: float = 100.0, seconds: float = 20.0, burst: int = 10_000) -> Figures:
    """The ``gateway`` row (see the module's docstring)."""
    import psutil
    from confluent_kafka import Producer

    from feblam.config import settings_from_dict, settings_toml
    from gateway.console.auth import hash_password
    from sources.broker import EmbeddedBroker, free_port

    broker = EmbeddedBroker().start()
    proc = None
    pages: list[Page] = []
    work = cache / f"gateway-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        p = f"gw{os.getpid()}"
        broker.create_topics([f"{p}.hits"], partitions=2)
        broker.create_topics(
            [f"{p}.hit-events", f"{p}.hit-actions", f"{p}.hit-access", f"{p}.list-quality", f"{p}.dlq"]
        )
        password = "bench-password-0123"  # noqa: S105 - the bench's own throwaway desks
        hashed = hash_password(password)
        port = free_port()
        settings = settings_from_dict(
            {
                "kafka": {"brokers": broker.address, "poll_timeout_ms": 5, "fetch_wait_ms": 5, "linger_ms": 1},
                "deadletter": {"topic": f"{p}.dlq"},
                "recovery": {"dir": str(work / "state"), "snapshot_seconds": 2.0},
                "logging": {"level": "warning", "format": "json"},
                "privacy": {"hash_key": BENCH_HASH_KEY},
                "gateway": {
                    "hits_topics": [f"{p}.hits"],
                    "events_topic": f"{p}.hit-events",
                    "actions_topic": f"{p}.hit-actions",
                    "access_topic": f"{p}.hit-access",
                    "quality_topic": f"{p}.list-quality",
                    "http_port": port,
                    "secure_cookies": False,
                    "login_max_failures": 1000,
                },
                "desks": [
                    {
                        "name": f"desk-{d:02d}",
                        "camera_prefixes": [f"CAM-D{d:02d}-"],
                        "users": [{"name": f"user-{d:02d}", "password_hash": hashed}],
                    }
                    for d in range(DESKS)
                ],
            }
        )
        cfg = work / "gateway.toml"
        cfg.write_text(settings_toml(settings))
        log = work / "gateway.log"
        proc = subprocess.Popen(  # noqa: S603 - our CLI
            [sys.executable, "-m", "feblam.cli", "gateway", "--config", str(cfg)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                import httpx2

                if httpx2.get(url + "/ready", timeout=1).status_code == 200:
                    break
            except Exception:  # noqa: S110 - not listening yet
                pass
            if proc.poll() is not None:
                msg = f"feblam gateway exited: {log.read_text()[-500:]}"
                raise RuntimeError(msg)
            time.sleep(0.2)
        pages = [Page(url, f"user-{d:02d}", password) for d in range(DESKS)]
        for page in pages:
            page.start()
        for page in pages:
            page.connected.wait(30)
        errors = [pg.error for pg in pages if pg.error]
        if errors:
            raise RuntimeError(errors[0])
        producer = Producer({"bootstrap.servers": broker.address, "linger.ms": 1})

        def arrived(ids: list[str]) -> dict[str, float]:
            out: dict[str, float] = {}
            for page in pages:
                out.update({h: t for h, t in list(page.seen.items()) if h in ids})
            return out

        # Latency at the offered rate.
        sent: dict[str, float] = {}
        n = int(rate * seconds)
        t0 = time.perf_counter()
        for i in range(n):
            due = t0 + i / rate
            while (wait := due - time.perf_counter()) > 0:
                time.sleep(min(wait, 0.005))
            hit = _hit(i)
            producer.produce(
                f"{p}.hits", orjson.dumps(hit), key=hit["read"]["plate"].encode()
            )  # a vehicle in order, as the job keys it
            producer.poll(0)
            sent[hit["hit_id"]] = time.time()
        producer.flush(10)
        ids = list(sent)
        deadline = time.monotonic() + 30
        while len(arrived(ids)) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        got = arrived(ids)
        lat = sorted((got[h] - sent[h]) * 1000 for h in got)

        # Throughput: a burst.
        cpu0 = psutil.Process(proc.pid).cpu_times()
        burst_hits = [_hit(n + i) for i in range(burst)]
        b0 = time.time()
        for hit in burst_hits:
            while True:
                try:
                    producer.produce(
                        f"{p}.hits", orjson.dumps(hit), key=hit["read"]["plate"].encode()
                    )  # a vehicle in order, as the job keys it
                    break
                except BufferError:
                    producer.poll(0.01)
        producer.flush(30)
        burst_ids = [h["hit_id"] for h in burst_hits]
        deadline = time.monotonic() + 120
        while len(arrived(burst_ids)) < burst and time.monotonic() < deadline:
            time.sleep(0.05)
        done = arrived(burst_ids)
        cpu1 = psutil.Process(proc.pid).cpu_times()
        burst_seconds = (max(done.values()) - b0) if done else float("nan")

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None

        return {
            "name": "gateway",
            "reads": None,
            "seconds": round(burst_seconds, 2),
            "reads_per_s": None,
            "cpu_seconds": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2),
            "p50_ms": pct(0.5),
            "p99_ms": pct(0.99),
            "hits_per_s": round(len(done) / burst_seconds, 1) if done else None,
            "offered_hits_per_s": rate,
            "latency_hits": n,
            "latency_hits_lost": n - len(got),
            "burst_hits": burst,
            "burst_hits_lost": burst - len(done),
            "desks": DESKS,
            "sightings_per_case": SIGHTINGS,
            "pages": len(pages),
            "max_ms": round(lat[-1], 1) if lat else None,
        }
    finally:
        for page in pages:
            page.stop_event.set()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.stop()
